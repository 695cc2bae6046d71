// Scalar dequantization of every supported block format, quantization of the plain types and of
// the 32-element formats (q4_0, q4_1, q5_0, q5_1, q8_0) plus q8_K. The K-quant quantizers, which
// search for sub-block scales, live in quant_kquants_ref.cc.
//
// Bit-exactness contract (dequantization): every value is computed with the same f32 operations,
// in the same order, as llama.cpp's scalar dequantize_row_* functions: f16 fields are widened
// exactly (F16ToF32), integers are converted to float exactly, and each product / sum is rounded
// to f32 separately. The project compiles with -std=c++20 (no GNU extensions), under which GCC
// and Clang do not contract a*b+c into an FMA, so no fused rounding sneaks in.
//
// Quantization of the 32-element formats and q8_K follows llama.cpp's reference quantizers rule
// for rule (choice of scale, truncation vs rounding, clamping), so the bytes we write equal
// llama.cpp's for the same input.
#include "ops/reference/quant_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/half.h"

namespace gemma_local::ref {

// Defined in quant_kquants_ref.cc: the K-quant quantizers, one super-block (kQK_K values) each.
namespace kquant_internal {
void QuantizeQ2KBlock(const float* x, uint8_t* dst);
void QuantizeQ3KBlock(const float* x, uint8_t* dst);
void QuantizeQ4KBlock(const float* x, uint8_t* dst);
void QuantizeQ5KBlock(const float* x, uint8_t* dst);
void QuantizeQ6KBlock(const float* x, uint8_t* dst);
}  // namespace kquant_internal

namespace {

// All multi-byte fields in GGUF blocks are little-endian.
float LoadF16(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }
float LoadBf16(const uint8_t* p) { return Bf16ToF32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }
void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void StoreF16(uint8_t* p, float f) { StoreU16(p, F32ToF16(f)); }
float LoadF32(const uint8_t* p) {
  const uint32_t u = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                     (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  return BitsFloat(u);
}
void StoreF32(uint8_t* p, float f) {
  const uint32_t u = FloatBits(f);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(u >> (8 * i));
}
float F(int v) { return static_cast<float>(v); }

// The 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K super-block. The 12 bytes hold:
// bytes 0-3: low 6 bits = scale of j 0-3, top 2 bits = bits 4-5 of the scale of j 4-7;
// bytes 4-7: low 6 bits = min of j 0-3,   top 2 bits = bits 4-5 of the min of j 4-7;
// bytes 8-11: low nibble = bits 0-3 of the scale of j 4-7, high nibble = bits 0-3 of its min.
void ScaleMinK4(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// ---- Dequantization, one block each. ----

// q4_0 (18 bytes): f16 d; 16 bytes of nibbles. Element j < 16 is the low nibble of byte j,
// element j + 16 the high nibble. value = (q - 8) * d.
void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = F((qs[j] & 0xF) - 8) * d;
    y[j + 16] = F((qs[j] >> 4) - 8) * d;
  }
}

// q4_1 (20 bytes): f16 d, f16 m; nibbles as q4_0. value = q * d + m.
void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = F(qs[j] & 0xF) * d + m;
    y[j + 16] = F(qs[j] >> 4) * d + m;
  }
}

// The 5th bits of q5_0/q5_1: bit j of the little-endian u32 qh belongs to element j.
uint32_t LoadQh(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// q5_0 (22 bytes): f16 d; u32 qh; 16 bytes of low nibbles as q4_0. value = (q - 16) * d.
void DequantQ5_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint32_t qh = LoadQh(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int q0 = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = F(q0 - 16) * d;
    y[j + 16] = F(q1 - 16) * d;
  }
}

// q5_1 (24 bytes): f16 d, f16 m; u32 qh; nibbles. value = q * d + m.
void DequantQ5_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint32_t qh = LoadQh(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int q0 = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = F(q0) * d + m;
    y[j + 16] = F(q1) * d + m;
  }
}

// q8_0 (34 bytes): f16 d; 32 int8. value = q * d.
void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  for (int j = 0; j < 32; ++j) y[j] = F(static_cast<int8_t>(b[2 + j])) * d;
}

// q2_K (84 bytes): 16 scale bytes (low nibble: scale, high nibble: min, of sub-block j = e/16);
// 64 bytes of 2-bit quants; f16 d; f16 dmin. Element e: byte 32*(e/128) + e%32, bits
// 2*((e%128)/32). value = (d * scale) * q - (dmin * min).
void DequantQ2K(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = LoadF16(b + 80);
  const float dmin = LoadF16(b + 82);
  for (int e = 0; e < 256; ++e) {
    const uint8_t sc = scales[e / 16];
    const float dl = d * F(sc & 0xF);
    const float ml = dmin * F(sc >> 4);
    const int q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    y[e] = dl * F(q) - ml;
  }
}

// q3_K (110 bytes): hmask[32]; qs[64]; 12 bytes of 6-bit scales; f16 d. Element e: low 2 bits as
// q2_K; high bit = bit e/32 of hmask[e%32]; q3 = low2 - (high ? 0 : 4) in [-4, 3]. Sub-block
// j = e/16 has the 6-bit scale s (stored +32): bits 0-3 in byte j%8 (low nibble for j < 8, high
// nibble for j >= 8), bits 4-5 at bit 2*(j/4) of byte 8 + j%4. value = (d * (s - 32)) * q3.
void DequantQ3K(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = LoadF16(b + 108);
  for (int e = 0; e < 256; ++e) {
    const int j = e / 16;
    const int lo = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
    const int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    const float dl = d * F((lo | (hi << 4)) - 32);
    const int low2 = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const bool high = ((hmask[e % 32] >> (e / 32)) & 1) != 0;
    y[e] = dl * F(low2 - (high ? 0 : 4));
  }
}

// q4_K (144 bytes): f16 d; f16 dmin; 12 bytes of 6-bit scales/mins (ScaleMinK4); qs[128].
// Element e: byte 32*(e/64) + e%32, low nibble when (e%64) < 32 else high nibble; sub-block
// e/32. value = (d * scale) * q - (dmin * min).
void DequantQ4K(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int e = 0; e < 256; ++e) {
    int sc, m;
    ScaleMinK4(e / 32, scales, &sc, &m);
    const float dl = d * F(sc);
    const float ml = dmin * F(m);
    const uint8_t byte = qs[32 * (e / 64) + e % 32];
    const int q = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    y[e] = dl * F(q) - ml;
  }
}

// q5_K (176 bytes): as q4_K with qh[32] between the scales and qs; the 5th bit of element e is
// bit e/32 of qh[e%32].
void DequantQ5K(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int e = 0; e < 256; ++e) {
    int sc, m;
    ScaleMinK4(e / 32, scales, &sc, &m);
    const float dl = d * F(sc);
    const float ml = dmin * F(m);
    const uint8_t byte = qs[32 * (e / 64) + e % 32];
    const int low = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    const int q = low + (((qh[e % 32] >> (e / 32)) & 1) << 4);
    y[e] = dl * F(q) - ml;
  }
}

// q6_K (210 bytes): ql[128]; qh[64]; int8 scales[16]; f16 d. Element e, with h = e/128,
// g = (e%128)/32, l = e%32: low nibble from ql[64h + l + 32*(g&1)] (low nibble for g < 2, high
// for g >= 2); top 2 bits from qh[32h + l] bits 2g..2g+1. value = (d * scales[e/16]) * (q - 32).
void DequantQ6K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadF16(b + 208);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    const uint8_t lb = ql[64 * h + l + 32 * (g & 1)];
    const int low = g < 2 ? (lb & 0xF) : (lb >> 4);
    const int high = (qh[32 * h + l] >> (2 * g)) & 3;
    y[e] = d * F(scales[e / 16]) * F((low | (high << 4)) - 32);
  }
}

// q8_K (292 bytes): f32 d; int8 qs[256]; int16 bsums[16] (sums of 16 quants; unused here).
void DequantQ8K(const uint8_t* b, float* y) {
  const float d = LoadF32(b);
  for (int e = 0; e < 256; ++e) y[e] = d * F(static_cast<int8_t>(b[4 + e]));
}

using BlockDequant = void (*)(const uint8_t*, float*);

BlockDequant BlockDequantFor(DType t) {
  switch (t) {
    case DType::kQ4_0:
      return DequantQ4_0;
    case DType::kQ4_1:
      return DequantQ4_1;
    case DType::kQ5_0:
      return DequantQ5_0;
    case DType::kQ5_1:
      return DequantQ5_1;
    case DType::kQ8_0:
      return DequantQ8_0;
    case DType::kQ2_K:
      return DequantQ2K;
    case DType::kQ3_K:
      return DequantQ3K;
    case DType::kQ4_K:
      return DequantQ4K;
    case DType::kQ5_K:
      return DequantQ5K;
    case DType::kQ6_K:
      return DequantQ6K;
    case DType::kQ8_K:
      return DequantQ8K;
    default:
      return nullptr;
  }
}

// ---- Quantization of the 32-element formats (llama.cpp's reference rules). ----

// The first element of largest magnitude, with its sign.
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Truncation toward zero of a value known to be >= 0 (the "(int)(v + 0.5)" rounding llama.cpp
// uses for these formats), clamped to [0, hi] so out-of-range input cannot overflow.
int TruncClamp(float v, int hi) {
  if (!(v >= 0.0f)) return 0;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// d = max / -8, so the largest-magnitude element maps exactly to q = 0 (value -8 d); the other
// sign end saturates at q = 15.
void QuantQ4_0(const float* x, uint8_t* b) {
  const float d = SignedAbsMax(x, 32) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  StoreF16(b, d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = TruncClamp(x[j] * id + 8.5f, 15);
    const int q1 = TruncClamp(x[j + 16] * id + 8.5f, 15);
    b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void MinMax(const float* x, int n, float* mn, float* mx) {
  *mn = FLT_MAX;
  *mx = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *mn) *mn = x[j];
    if (x[j] > *mx) *mx = x[j];
  }
}

// d = (max - min) / 15, m = min; q = trunc((x - min) / d + 0.5).
void QuantQ4_1(const float* x, uint8_t* b) {
  float mn, mx;
  MinMax(x, 32, &mn, &mx);
  const float d = (mx - mn) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  StoreF16(b, d);
  StoreF16(b + 2, mn);
  for (int j = 0; j < 16; ++j) {
    const int q0 = TruncClamp((x[j] - mn) * id + 0.5f, 15);
    const int q1 = TruncClamp((x[j + 16] - mn) * id + 0.5f, 15);
    b[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void StoreQh(uint8_t* p, uint32_t qh) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(qh >> (8 * i));
}

// d = max / -16 (as q4_0, with 5 bits).
void QuantQ5_0(const float* x, uint8_t* b) {
  const float d = SignedAbsMax(x, 32) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  StoreF16(b, d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = TruncClamp(x[j] * id + 16.5f, 31);
    const int q1 = TruncClamp(x[j + 16] * id + 16.5f, 31);
    b[6 + j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  StoreQh(b + 2, qh);
}

// d = (max - min) / 31, m = min (as q4_1, with 5 bits).
void QuantQ5_1(const float* x, uint8_t* b) {
  float mn, mx;
  MinMax(x, 32, &mn, &mx);
  const float d = (mx - mn) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  StoreF16(b, d);
  StoreF16(b + 2, mn);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = TruncClamp((x[j] - mn) * id + 0.5f, 31);
    const int q1 = TruncClamp((x[j + 16] - mn) * id + 0.5f, 31);
    b[8 + j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  StoreQh(b + 4, qh);
}

// d = amax / 127; q = round-half-away-from-zero(x / d) (std::round, like C's roundf).
void QuantQ8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  StoreF16(b, d);
  for (int j = 0; j < 32; ++j) {
    const float q = std::clamp(std::round(x[j] * id), -127.0f, 127.0f);
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
  }
}

// Round to nearest, ties to even (what llama.cpp's K-quant helpers do with the 1.5 * 2^23
// trick), clamped to [lo, hi] before the conversion so it is always defined.
int RoundClamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// q8_K: f32 d = max / -127 (max = the signed largest-magnitude element), q = round(x / d) capped
// at 127, bsums = sums of each 16 quants. An all-zero block stores d = 0 and zero quants.
void QuantQ8K(const float* x, uint8_t* b) {
  std::memset(b, 0, 292);
  const float max = SignedAbsMax(x, 256);
  if (max == 0.0f) return;
  const float iscale = -127.0f / max;
  for (int e = 0; e < 256; ++e) {
    b[4 + e] = static_cast<uint8_t>(static_cast<int8_t>(RoundClamp(iscale * x[e], -128, 127)));
  }
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += static_cast<int8_t>(b[4 + 16 * j + i]);
    StoreU16(b + 260 + 2 * j, static_cast<uint16_t>(static_cast<int16_t>(sum)));
  }
  StoreF32(b, 1.0f / iscale);
}

using BlockQuant = void (*)(const float*, uint8_t*);

BlockQuant BlockQuantFor(DType t) {
  switch (t) {
    case DType::kQ4_0:
      return QuantQ4_0;
    case DType::kQ4_1:
      return QuantQ4_1;
    case DType::kQ5_0:
      return QuantQ5_0;
    case DType::kQ5_1:
      return QuantQ5_1;
    case DType::kQ8_0:
      return QuantQ8_0;
    case DType::kQ2_K:
      return kquant_internal::QuantizeQ2KBlock;
    case DType::kQ3_K:
      return kquant_internal::QuantizeQ3KBlock;
    case DType::kQ4_K:
      return kquant_internal::QuantizeQ4KBlock;
    case DType::kQ5_K:
      return kquant_internal::QuantizeQ5KBlock;
    case DType::kQ6_K:
      return kquant_internal::QuantizeQ6KBlock;
    case DType::kQ8_K:
      return QuantQ8K;
    default:
      return nullptr;
  }
}

}  // namespace

bool CanDequantize(DType t) { return IsPlainFloat(t) || BlockDequantFor(t) != nullptr; }

bool CanQuantize(DType t) { return IsPlainFloat(t) || BlockQuantFor(t) != nullptr; }

void DequantizeBlocks(DType t, const uint8_t* src, int64_t n, float* out) {
  switch (t) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) out[i] = LoadF32(src + 4 * i);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = LoadF16(src + 2 * i);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) out[i] = LoadBf16(src + 2 * i);
      return;
    default:
      break;
  }
  const BlockDequant fn = BlockDequantFor(t);
  if (fn == nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = NAN;  // callers check CanDequantize first
    return;
  }
  const DTypeTraits& tr = Traits(t);
  const int64_t nb = n / tr.block_elems;
  for (int64_t i = 0; i < nb; ++i) fn(src + i * tr.block_bytes, out + i * tr.block_elems);
}

void QuantizeBlocks(DType t, const float* src, int64_t n, uint8_t* dst) {
  switch (t) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i) StoreF32(dst + 4 * i, src[i]);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) StoreF16(dst + 2 * i, src[i]);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) StoreU16(dst + 2 * i, F32ToBf16(src[i]));
      return;
    default:
      break;
  }
  const BlockQuant fn = BlockQuantFor(t);
  if (fn == nullptr) return;  // callers check CanQuantize first
  const DTypeTraits& tr = Traits(t);
  const int64_t nb = n / tr.block_elems;
  for (int64_t i = 0; i < nb; ++i) fn(src + i * tr.block_elems, dst + i * tr.block_bytes);
}

}  // namespace gemma_local::ref
