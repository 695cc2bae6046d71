// Weight quantization of a Gemma checkpoint: the per-tensor type policy (the mixes people know
// from llama.cpp: q4_k_m keeps attn_v/ffn_down of some layers in q6_K, the tied embedding/LM head
// in q6_K or q8_0, ...), quantization into memory at load time, and writing a quantized GGUF.
//
// Which tensors are quantized: 2-D+ projections and embedding tables (TensorRole kMatrix and
// kEmbedding), except the MoE router (ffn_gate_inp), which stays as stored as llama.cpp keeps it.
// Norms, scales and rope_freqs keep their type. A tensor whose rows are not a multiple of the
// target's block falls back as llama.cpp's quantizer does (q4_K -> q5_0, q5_K -> q5_1, q6_K ->
// q8_0, q2_K/q3_K -> q4_0; then f16 if even 32 does not divide the row).
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"
#include "gemma_local/status.h"
#include "model/checkpoint.h"

namespace gemma_local {

enum class QuantMix {
  kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1,
  kQ2_K, kQ3_K_M, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M, kQ6_K,
};

// "q4_k_m", "Q4_K_M", "q4_k" (= q4_k_m), "4bit" (the config's quantization: 4bit = q4_k_m),
// "8bit" (= q8_0) ... Errors list the accepted names.
Result<QuantMix> ParseQuantMix(const std::string& name);
std::string QuantMixName(QuantMix mix);
std::vector<std::string> QuantMixNames();

// The dtype tensor `name` (dims `ne`, innermost first) gets under `mix`, or its current dtype
// when it is not quantized.
DType QuantizedTensorType(const Checkpoint& ck, const WeightTensor& t, QuantMix mix);

// Replaces the weights of `ck` in memory by their quantized form under `mix` (threads: 0 = all
// cores). Tensors already in the target type are kept as they are (no re-quantization).
Status QuantizeCheckpointInMemory(Checkpoint& ck, QuantMix mix, int threads);

// Writes `ck` (a GGUF checkpoint) to `out_path` with its weights quantized under `mix`; all
// metadata is copied, plus general.file_type. Errors name the tensor or file.
Status WriteQuantizedGguf(const Checkpoint& ck, QuantMix mix, const std::string& out_path, int threads);

}  // namespace gemma_local
