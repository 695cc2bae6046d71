#include "ops/kv_view.h"

#include <cstring>

#include "ops/reference/quant_ref.h"

namespace gemma_local {

DType KvDType(KvType type) {
  switch (type) {
    case KvType::kF16:
      return DType::kF16;
    case KvType::kQ8_0:
      return DType::kQ8_0;
    case KvType::kF32:
      break;
  }
  return DType::kF32;
}

const char* KvTypeName(KvType type) { return DTypeName(KvDType(type)); }

std::optional<KvType> KvTypeFromName(std::string_view name) {
  for (KvType t : {KvType::kF16, KvType::kQ8_0, KvType::kF32}) {
    if (name == KvTypeName(t)) return t;
  }
  return std::nullopt;
}

const char* KvTypeNames() { return "f16, q8_0, f32"; }

void StoreKvRow(KvType type, const float* src, int64_t n, uint8_t* dst) {
  // Rows never leave the process: f32 is stored in host order.
  if (type == KvType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  // f16 rounds each element to nearest even; q8_0 is GGML's reference quantizer (d = amax / 127
  // stored as f16, q = round(x / d) half away from zero).
  ref::QuantizeBlocks(KvDType(type), src, n, dst);
}

void LoadKvRow(KvType type, const uint8_t* src, int64_t n, float* dst) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  ref::DequantizeBlocks(KvDType(type), src, n, dst);
}

}  // namespace gemma_local
