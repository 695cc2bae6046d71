// Offline weight quantization: `gemma-local quantize IN OUT --type T` writes a quantized copy of a
// GGUF checkpoint that llama.cpp and gemma-local both load. Types are named as llama.cpp names its
// mixes (q4_k_m keeps some attn_v / ffn_down layers and the tied embedding at higher precision);
// the per-tensor policy is documented with the implementation (src/model/quantize.h).
#pragma once

#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

// The accepted type names, canonical spelling ("f16", "q8_0", "q4_k_m", ...), in table order.
std::vector<std::string> QuantizeTypeNames();

// The canonical name of `type`: case-insensitive, with the aliases q4_k = 4bit = int4 = q4_k_m,
// q5_k = q5_k_m, q3_k = q3_k_m, 8bit = int8 = q8_0. kInvalidArgument listing the accepted names
// otherwise.
Result<std::string> CanonicalQuantizeType(const std::string& type);

// Reads the GGUF checkpoint at `in_path` and writes it to `out_path` with its weights quantized
// to `type` (any name CanonicalQuantizeType accepts); all metadata is copied, plus
// general.file_type. `threads`: 0 = all cores. `out_path` is overwritten if it exists. Errors name
// the type, the file or the tensor.
Status QuantizeGgufFile(const std::string& in_path, const std::string& out_path,
                        const std::string& type, int threads);

}  // namespace gemma_local
