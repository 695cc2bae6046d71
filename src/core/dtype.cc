#include "core/dtype.h"

#include <array>
#include <cctype>

#include "core/checked_math.h"

namespace gemma_local {
namespace {

// clang-format off
constexpr std::array<DTypeTraits, static_cast<size_t>(DType::kCount)> kDTypeTable = {{
  // dtype                 name        ggml  safetensors  elems bytes removed
  {DType::kF32,            "f32",       0,   "F32",       1,   4,   false},
  {DType::kF16,            "f16",       1,   "F16",       1,   2,   false},
  {DType::kBF16,           "bf16",     30,   "BF16",      1,   2,   false},
  {DType::kF64,            "f64",      28,   "F64",       1,   8,   false},
  {DType::kI8,             "i8",       24,   "I8",        1,   1,   false},
  {DType::kI16,            "i16",      25,   "I16",       1,   2,   false},
  {DType::kI32,            "i32",      26,   "I32",       1,   4,   false},
  {DType::kI64,            "i64",      27,   "I64",       1,   8,   false},
  {DType::kU8,             "u8",       -1,   "U8",        1,   1,   false},
  {DType::kU16,            "u16",      -1,   "U16",       1,   2,   false},
  {DType::kU32,            "u32",      -1,   "U32",       1,   4,   false},
  {DType::kU64,            "u64",      -1,   "U64",       1,   8,   false},
  {DType::kBool,           "bool",     -1,   "BOOL",      1,   1,   false},
  {DType::kF8E4M3,         "f8_e4m3",  -1,   "F8_E4M3",   1,   1,   false},
  {DType::kF8E5M2,         "f8_e5m2",  -1,   "F8_E5M2",   1,   1,   false},
  {DType::kF8E8M0,         "f8_e8m0",  -1,   "F8_E8M0",   1,   1,   false},
  {DType::kQ4_0,           "q4_0",      2,   nullptr,    32,  18,   false},
  {DType::kQ4_1,           "q4_1",      3,   nullptr,    32,  20,   false},
  {DType::kQ5_0,           "q5_0",      6,   nullptr,    32,  22,   false},
  {DType::kQ5_1,           "q5_1",      7,   nullptr,    32,  24,   false},
  {DType::kQ8_0,           "q8_0",      8,   nullptr,    32,  34,   false},
  {DType::kQ8_1,           "q8_1",      9,   nullptr,    32,  36,   false},
  {DType::kQ2_K,           "q2_k",     10,   nullptr,   256,  84,   false},
  {DType::kQ3_K,           "q3_k",     11,   nullptr,   256, 110,   false},
  {DType::kQ4_K,           "q4_k",     12,   nullptr,   256, 144,   false},
  {DType::kQ5_K,           "q5_k",     13,   nullptr,   256, 176,   false},
  {DType::kQ6_K,           "q6_k",     14,   nullptr,   256, 210,   false},
  {DType::kQ8_K,           "q8_k",     15,   nullptr,   256, 292,   false},
  {DType::kIQ2_XXS,        "iq2_xxs",  16,   nullptr,   256,  66,   false},
  {DType::kIQ2_XS,         "iq2_xs",   17,   nullptr,   256,  74,   false},
  {DType::kIQ3_XXS,        "iq3_xxs",  18,   nullptr,   256,  98,   false},
  {DType::kIQ1_S,          "iq1_s",    19,   nullptr,   256,  50,   false},
  {DType::kIQ4_NL,         "iq4_nl",   20,   nullptr,    32,  18,   false},
  {DType::kIQ3_S,          "iq3_s",    21,   nullptr,   256, 110,   false},
  {DType::kIQ2_S,          "iq2_s",    22,   nullptr,   256,  82,   false},
  {DType::kIQ4_XS,         "iq4_xs",   23,   nullptr,   256, 136,   false},
  {DType::kIQ1_M,          "iq1_m",    29,   nullptr,   256,  56,   false},
  {DType::kTQ1_0,          "tq1_0",    34,   nullptr,   256,  54,   false},
  {DType::kTQ2_0,          "tq2_0",    35,   nullptr,   256,  66,   false},
  {DType::kMXFP4,          "mxfp4",    39,   nullptr,    32,  17,   false},
  {DType::kNVFP4,          "nvfp4",    40,   nullptr,    64,  36,   false},
  {DType::kQ1_0,           "q1_0",     41,   nullptr,   128,  18,   false},
  {DType::kQ2_0,           "q2_0",     42,   nullptr,    64,  18,   false},
  {DType::kRemovedQ4_2,    "q4_2",      4,   nullptr,     0,   0,   true},
  {DType::kRemovedQ4_3,    "q4_3",      5,   nullptr,     0,   0,   true},
  {DType::kRemovedQ4_0_4_4,"q4_0_4_4", 31,   nullptr,     0,   0,   true},
  {DType::kRemovedQ4_0_4_8,"q4_0_4_8", 32,   nullptr,     0,   0,   true},
  {DType::kRemovedQ4_0_8_8,"q4_0_8_8", 33,   nullptr,     0,   0,   true},
  {DType::kRemovedIQ4_NL_4_4,"iq4_nl_4_4", 36, nullptr,   0,   0,   true},
  {DType::kRemovedIQ4_NL_4_8,"iq4_nl_4_8", 37, nullptr,   0,   0,   true},
  {DType::kRemovedIQ4_NL_8_8,"iq4_nl_8_8", 38, nullptr,   0,   0,   true},
}};
// clang-format on

constexpr bool TableIsIndexedByEnum() {
  for (size_t i = 0; i < kDTypeTable.size(); ++i) {
    if (static_cast<size_t>(kDTypeTable[i].dtype) != i) return false;
  }
  return true;
}
static_assert(TableIsIndexedByEnum(), "kDTypeTable rows must follow the DType enum order");

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

const DTypeTraits& Traits(DType dtype) { return kDTypeTable[static_cast<size_t>(dtype)]; }
const char* DTypeName(DType dtype) { return Traits(dtype).name; }

std::optional<DType> DTypeFromGgmlId(uint32_t id) {
  for (const auto& t : kDTypeTable) {
    if (t.ggml_id >= 0 && static_cast<uint32_t>(t.ggml_id) == id) return t.dtype;
  }
  return std::nullopt;
}

std::optional<DType> DTypeFromSafetensorsName(std::string_view name) {
  for (const auto& t : kDTypeTable) {
    if (t.safetensors_name != nullptr && name == t.safetensors_name) return t.dtype;
  }
  return std::nullopt;
}

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& t : kDTypeTable) {
    if (EqualsIgnoreCase(name, t.name)) return t.dtype;
  }
  return std::nullopt;
}

Result<uint64_t> DTypeByteSize(DType dtype, uint64_t n_elems) {
  const DTypeTraits& t = Traits(dtype);
  if (t.removed) {
    return UnsupportedError(std::string("tensor type ") + t.name + " (ggml id " +
                            std::to_string(t.ggml_id) + ") was removed from ggml; requantize the model");
  }
  if (n_elems % t.block_elems != 0) {
    return CorruptDataError(std::to_string(n_elems) + " elements is not a whole number of " + t.name +
                            " blocks of " + std::to_string(t.block_elems));
  }
  auto bytes = CheckedMul(n_elems / t.block_elems, t.block_bytes);
  if (!bytes) return CorruptDataError("tensor byte size overflows 64 bits");
  return *bytes;
}

bool IsPlainFloat(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

}  // namespace gemma_local
