// Deterministic random-weight Gemma checkpoints for tests, written in BOTH layouts from the same
// weights: a GGUF exactly as llama.cpp's converter writes it (canonical tensor names, metadata
// keys, +1 folded into Gemma 3 norm weights, 1-D tensors in f32, generated rope_freqs for Gemma 4)
// and a Hugging Face directory (config.json, model.safetensors or shards, tokenizer files).
//
// Every tensor's values depend only on (seed, canonical name, shape), never on layout, dtype or
// write order, so the two layouts describe the same function. Scales keep logits well separated
// (tied embedding std 0.5 -> logit spread of several nats) so greedy choices are not decided by
// rounding noise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gemma_local/status.h"
#include "model/hf_config.h"
#include "model/hparams.h"

namespace gemma_local::testgen {

enum class TokenizerSource {
  kSynthetic,    // a small SentencePiece-style vocab built here (vocab_size entries)
  kGemma3Files,  // the real Gemma 3 tokenizer.json + tokenizer_config.json from a directory
};

struct TestModelOptions {
  HParams hparams;
  DType dtype = DType::kF32;  // f32, f16 or bf16 for weights (GGUF 1-D tensors are always f32)
  uint64_t seed = 1;
  TokenizerSource tokenizer = TokenizerSource::kSynthetic;
  std::string tokenizer_dir;  // for kGemma3Files
  bool write_gguf = true;
  bool write_hf = true;
  HfConfigLayout hf_layout = HfConfigLayout::kCausalLm;
  uint64_t hf_shard_bytes = 0;  // 0 = one model.safetensors; else shards of at most this size
};

struct WrittenModel {
  std::string gguf_path;  // <out>/model.gguf (empty when not written)
  std::string hf_dir;     // <out>/hf (empty when not written)
};

// Named shapes (few layers, small dims) that keep each size class's structure:
//   "tiny"        gemma3, 2 layers, all pattern rules still exercised at 6 layers in others
//   "1b-like"     head_dim 256, 1 KV head, window 512, 5:1 pattern
//   "4b-like"     8 heads, 4 KV heads, RoPE linear factor 8 on full layers
//   "27b-like"    head_dim 128, query_pre_attn_scalar 168 (hidden/heads), 62 layers so llama.cpp
//                 applies the same scale
//   "all-global"  no sliding window
//   "g4-e2b-like" Gemma 4: period-5 layers, KV sharing, per-layer embeddings, double-wide MLP
//   "g4-31b-like" Gemma 4: K=V full layers with their own KV-head count
//   "g4-26b-like" Gemma 4: as 31b-like plus MoE (8 experts, top 2)
// `vocab_size` is set to the tokenizer size by WriteTestModel.
Result<HParams> PresetShape(const std::string& name);
std::vector<std::string> PresetNames();

// Writes the model under `out_dir` (created if needed).
Result<WrittenModel> WriteTestModel(const TestModelOptions& options, const std::string& out_dir);

}  // namespace gemma_local::testgen
