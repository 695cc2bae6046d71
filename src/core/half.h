// IEEE fp16 and bfloat16 <-> fp32 conversions (scalar, round-to-nearest-even). The reference
// for every SIMD conversion; also used by writers.
#pragma once

#include <cstdint>
#include <cstring>

namespace gemma_local {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float Bf16ToF32(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays NaN (quiet).
inline uint16_t F32ToBf16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float F16ToF32(uint16_t h);
// Round to nearest even; overflow becomes +-inf, NaN stays NaN.
uint16_t F32ToF16(float f);

}  // namespace gemma_local
