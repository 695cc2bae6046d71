// What a checkpoint is and what it will cost, computed from metadata and tensor headers only
// (no weights are read): `gemma-local inspect`.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

// Memory estimates in bytes. Weights at a target type: tensors with 2+ dims at that type (rows
// whose length is not a multiple of the block size stay f16), 1-D tensors (norms, scales) at f32,
// as llama.cpp's quantizer stores them. KV cache at f16 (llama.cpp's default cache type, and the
// engine's: EngineOptions::kv_type; its pool holds these bytes per position, in whole blocks):
//   kv_bytes(ctx) = kv_bytes_per_token * ctx + kv_bytes_per_token_sliding * min(ctx, window)
// kv_bytes_per_token counts the full-attention layers that own a cache (the part that grows with
// context); sliding-window layers keep only the last `window` positions; KV-shared layers
// (Gemma 4 E2B/E4B) read another layer's cache and cost nothing.
struct MemoryEstimate {
  uint64_t weights_as_stored = 0;
  uint64_t weights_f16 = 0;
  uint64_t weights_q8_0 = 0;
  uint64_t weights_q4_0 = 0;
  uint64_t kv_bytes_per_token = 0;
  uint64_t kv_bytes_per_token_sliding = 0;
  int64_t kv_sliding_window = 0;
  uint64_t kv_bytes_at_context_length = 0;
};

// Geometry of one layer type (Gemma 4 has different head dims / KV heads on full layers).
struct LayerGroupInfo {
  std::string layer_type;  // "sliding" or "full"
  int64_t n_layers = 0;
  int64_t n_kv_layers = 0;  // layers that own a KV cache (not KV-shared)
  int64_t head_dim = 0;
  int64_t n_kv_heads = 0;
};

struct ModelInfo {
  std::string path;
  std::string format;        // "gguf" or "safetensors"
  std::string architecture;  // "gemma3" or "gemma4"
  std::string variant;       // e.g. "gemma3-1b" from the layer count, or "unknown"
  int64_t n_layers = 0;
  int64_t hidden_size = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;    // sliding layers' value where they differ (see layer_groups)
  int64_t head_dim = 0;      // sliding layers' value where they differ
  int64_t ffn_size = 0;      // layer 0's; ffn_size_per_layer when it varies
  std::vector<int64_t> ffn_size_per_layer;
  int64_t vocab_size = 0;
  int64_t sliding_window = 0;
  int64_t context_length = 0;
  int64_t n_kv_shared_layers = 0;
  int64_t per_layer_input_size = 0;
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  int64_t expert_ffn_size = 0;
  double attention_scale = 0;
  double rope_theta_full = 0;
  double rope_theta_sliding = 0;
  double rope_linear_factor = 1;
  double rope_partial_rotary_factor = 1;
  double final_logit_softcap = 0;  // 0 = none
  std::vector<LayerGroupInfo> layer_groups;
  uint64_t n_params = 0;
  std::map<std::string, int64_t> tensor_types;  // dtype name -> tensor count
  uint64_t file_bytes = 0;
  bool has_tokenizer = false;
  bool has_chat_template = false;
  MemoryEstimate memory;

  std::string ToJson() const;  // pretty-printed, stable key order
  std::string ToText() const;  // for people
};

// Opens `path` (GGUF file or HF checkpoint directory) and describes it.
Result<ModelInfo> InspectModel(const std::string& path);

// Weight bytes one decode step reads (`gemma-local bench`'s bytes/token): every decoder tensor as
// stored, except the token-embedding table (one row is gathered) unless the LM head is tied to it
// (then the whole table is the LM head, read every token), and the Gemma 4 per-layer embedding
// table (row gathers too); MoE expert tensors count n_experts_used / n_experts of their size. The
// KV cache and activations are not counted, so this is a lower bound on the traffic. Reads
// metadata and tensor headers of `path` (GGUF file or HF checkpoint directory) only.
Result<uint64_t> DecodeBytesPerToken(const std::string& path);

// SHA-256 (lower-case hex) of a model: a file's bytes, or for a checkpoint directory its regular
// files' names and bytes in name order (the audit log's and `extract`'s model_sha256). Reads the
// whole model; returns kCancelled as soon as `stop` (if given) becomes true.
Result<std::string> ModelSha256(const std::string& path, const std::atomic<bool>* stop = nullptr);

}  // namespace gemma_local
