// The one table of element types. Every name, id, block size and byte size in the project comes
// from kDTypeTable in dtype.cc; nothing is maintained in parallel.
//
// Covers every GGML tensor type (ids as in ggml.h of llama.cpp v0.4.0, including ids that ggml has
// removed, so a file using them gets a precise error) and every safetensors dtype.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gemma_local/status.h"

namespace gemma_local {

enum class DType : uint8_t {
  kF32, kF16, kBF16, kF64,
  kI8, kI16, kI32, kI64,
  kU8, kU16, kU32, kU64, kBool,
  kF8E4M3, kF8E5M2, kF8E8M0,
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ8_1,
  kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kQ8_K,
  kIQ2_XXS, kIQ2_XS, kIQ3_XXS, kIQ1_S, kIQ4_NL, kIQ3_S, kIQ2_S, kIQ4_XS, kIQ1_M,
  kTQ1_0, kTQ2_0, kMXFP4, kNVFP4, kQ1_0, kQ2_0,
  // ggml ids that ggml itself has removed; recognized only to name them in errors.
  kRemovedQ4_2, kRemovedQ4_3, kRemovedQ4_0_4_4, kRemovedQ4_0_4_8, kRemovedQ4_0_8_8,
  kRemovedIQ4_NL_4_4, kRemovedIQ4_NL_4_8, kRemovedIQ4_NL_8_8,
  kCount,
};

struct DTypeTraits {
  DType dtype;
  const char* name;               // lower-case ggml-style name: "f32", "q4_0", "iq2_xxs"
  int ggml_id;                    // GGUF tensor type id, or -1 when GGUF has none
  const char* safetensors_name;   // safetensors "dtype" string, or nullptr
  uint32_t block_elems;           // elements per block (1 for plain types); 0 when removed
  uint32_t block_bytes;           // bytes per block; 0 when removed
  bool removed;                   // ggml dropped it: recognized, never loadable
};

const DTypeTraits& Traits(DType dtype);
const char* DTypeName(DType dtype);

std::optional<DType> DTypeFromGgmlId(uint32_t id);
std::optional<DType> DTypeFromSafetensorsName(std::string_view name);
// Accepts the names DTypeName returns (case-insensitive).
std::optional<DType> DTypeFromName(std::string_view name);

// Bytes that `n_elems` elements of `dtype` occupy. Errors when n_elems is not a whole number of
// blocks, the type was removed, or the size overflows uint64.
Result<uint64_t> DTypeByteSize(DType dtype, uint64_t n_elems);

// Plain floating point types our ops read directly (f32, f16, bf16).
bool IsPlainFloat(DType dtype);

}  // namespace gemma_local
