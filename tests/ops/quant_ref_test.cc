// The scalar block-quantization reference: hand-built blocks checked against values worked out
// from the format descriptions, quantize/dequantize round trips with per-format error bounds, and
// bit-identical agreement with an independent Python dequantizer (tests/reference/dequant_ref.py).
#include "ops/reference/quant_ref.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "core/half.h"
#include "ops/reference/ref_ops.h"

namespace gemma_local {
namespace {

const DType kQuantTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                             DType::kQ8_0, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K,
                             DType::kQ5_K, DType::kQ6_K, DType::kQ8_K};

void PutF16(std::vector<uint8_t>& b, size_t off, float v) {
  const uint16_t h = F32ToF16(v);
  b[off] = static_cast<uint8_t>(h & 0xFF);
  b[off + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> Dequant(DType t, const std::vector<uint8_t>& b) {
  const int64_t n = static_cast<int64_t>(b.size() / Traits(t).block_bytes) * Traits(t).block_elems;
  std::vector<float> out(static_cast<size_t>(n));
  ref::DequantizeBlocks(t, b.data(), n, out.data());
  return out;
}

std::vector<uint8_t> Quant(DType t, const std::vector<float>& x) {
  const auto nb = x.size() / Traits(t).block_elems;
  std::vector<uint8_t> b(nb * Traits(t).block_bytes, 0xAB);  // garbage: every byte must be written
  ref::QuantizeBlocks(t, x.data(), static_cast<int64_t>(x.size()), b.data());
  return b;
}

TEST(QuantRef, LayoutsAgreeWithDTypeTable) {
  const std::map<DType, std::pair<uint32_t, uint32_t>> expected = {
      {DType::kQ4_0, {32, 18}},   {DType::kQ4_1, {32, 20}},   {DType::kQ5_0, {32, 22}},
      {DType::kQ5_1, {32, 24}},   {DType::kQ8_0, {32, 34}},   {DType::kQ2_K, {256, 84}},
      {DType::kQ3_K, {256, 110}}, {DType::kQ4_K, {256, 144}}, {DType::kQ5_K, {256, 176}},
      {DType::kQ6_K, {256, 210}}, {DType::kQ8_K, {256, 292}}};
  for (const auto& [t, eb] : expected) {
    EXPECT_EQ(Traits(t).block_elems, eb.first) << DTypeName(t);
    EXPECT_EQ(Traits(t).block_bytes, eb.second) << DTypeName(t);
    EXPECT_TRUE(ref::CanDequantize(t)) << DTypeName(t);
    EXPECT_TRUE(ref::CanQuantize(t)) << DTypeName(t);
  }
  EXPECT_EQ(Traits(DType::kQ4_0).block_elems, ref::kQK);
  EXPECT_EQ(Traits(DType::kQ4_K).block_elems, ref::kQK_K);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
    EXPECT_TRUE(ref::CanDequantize(t));
    EXPECT_TRUE(ref::CanQuantize(t));
  }
  for (DType t : {DType::kQ8_1, DType::kIQ2_XXS, DType::kIQ4_NL, DType::kI32, DType::kTQ1_0}) {
    EXPECT_FALSE(ref::CanDequantize(t)) << DTypeName(t);
    EXPECT_FALSE(ref::CanQuantize(t)) << DTypeName(t);
  }
}

// ---- Hand-built blocks: the expected values are worked out from the format description. ----

TEST(QuantRefHandBuilt, Q4_0NibbleOrder) {
  std::vector<uint8_t> b(18, 0x88);  // every code 8 -> 0
  PutF16(b, 0, 0.5f);
  b[2 + 0] = 0x1F;   // element 0: low nibble 15, element 16: high nibble 1
  b[2 + 15] = 0x80;  // element 15: 0, element 31: 8
  const auto y = Dequant(DType::kQ4_0, b);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], -3.5f);
  EXPECT_EQ(y[15], -4.0f);
  EXPECT_EQ(y[31], 0.0f);
  EXPECT_EQ(y[7], 0.0f);
}

TEST(QuantRefHandBuilt, Q4_1ScaleAndMin) {
  std::vector<uint8_t> b(20, 0);
  PutF16(b, 0, 0.25f);
  PutF16(b, 2, -1.0f);
  b[4 + 3] = 0xA2;  // element 3: 2, element 19: 10
  const auto y = Dequant(DType::kQ4_1, b);
  EXPECT_EQ(y[3], -0.5f);
  EXPECT_EQ(y[19], 1.5f);
  EXPECT_EQ(y[0], -1.0f);
}

TEST(QuantRefHandBuilt, Q5_0HighBitOrder) {
  std::vector<uint8_t> b(22, 0);
  PutF16(b, 0, 1.0f);
  // qh little-endian u32: bit j is the 5th bit of element j. Set bits 0 and 17.
  b[2] = 0x01;
  b[4] = 0x02;
  b[6 + 1] = 0x3F;  // element 1: 15, element 17: 3
  const auto y = Dequant(DType::kQ5_0, b);
  EXPECT_EQ(y[0], 0.0f);     // 0 | 16 -> 16 - 16
  EXPECT_EQ(y[16], -16.0f);  // no high bit
  EXPECT_EQ(y[1], -1.0f);    // 15 - 16
  EXPECT_EQ(y[17], 3.0f);    // 3 | 16 -> 19 - 16
}

TEST(QuantRefHandBuilt, Q5_1HighBitAndMin) {
  std::vector<uint8_t> b(24, 0);
  PutF16(b, 0, 2.0f);
  PutF16(b, 2, 0.5f);
  b[4 + 3] = 0x80;   // bit 31: element 31
  b[8 + 15] = 0xF0;  // element 15: 0, element 31: 15
  const auto y = Dequant(DType::kQ5_1, b);
  EXPECT_EQ(y[15], 0.5f);
  EXPECT_EQ(y[31], 62.5f);  // (15 + 16) * 2 + 0.5
}

TEST(QuantRefHandBuilt, Q8_0Signed) {
  std::vector<uint8_t> b(34, 0);
  PutF16(b, 0, 0.125f);
  b[2] = 0x80;  // -128
  b[2 + 31] = 127;
  const auto y = Dequant(DType::kQ8_0, b);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[31], 15.875f);
}

TEST(QuantRefHandBuilt, Q2_KScalesMinsAndCrumbs) {
  std::vector<uint8_t> b(84, 0);
  PutF16(b, 80, 0.5f);   // d
  PutF16(b, 82, 0.25f);  // dmin
  b[0] = 0x21;           // sub-block 0: scale 1, min 2
  b[2] = 0x12;           // sub-block 2: scale 2, min 1
  b[5] = 0x3F;           // sub-block 5: scale 15, min 3
  b[6] = 0x0F;           // sub-block 6: scale 15, min 0
  b[12] = 0x11;          // sub-block 12: scale 1, min 1
  uint8_t* qs = b.data() + 16;
  qs[0] = 0xE4;   // elements 0, 32, 64, 96 -> codes 0, 1, 2, 3
  qs[16] = 0x30;  // element 80 (byte 16, bits 4-5) -> 3
  qs[40] = 0x20;  // element 200 (second half: byte 32 + 8, bits 4-5) -> 2
  const auto y = Dequant(DType::kQ2_K, b);
  EXPECT_EQ(y[0], -0.5f);    // 0.5*1*0 - 0.25*2
  EXPECT_EQ(y[32], 0.75f);   // 0.5*2*1 - 0.25*1
  EXPECT_EQ(y[64], 0.0f);    // sub-block 4 all zero
  EXPECT_EQ(y[96], 22.5f);   // 0.5*15*3
  EXPECT_EQ(y[80], 21.75f);  // 0.5*15*3 - 0.25*3
  EXPECT_EQ(y[200], 0.75f);  // 0.5*1*2 - 0.25*1
  EXPECT_EQ(y[1], -0.5f);
}

TEST(QuantRefHandBuilt, Q3_KHmaskAndSixBitScales) {
  std::vector<uint8_t> b(110, 0);
  PutF16(b, 108, 0.5f);
  uint8_t* hmask = b.data();
  uint8_t* qs = b.data() + 32;
  uint8_t* sc = b.data() + 96;
  // Scales are 6-bit with +32 bias; unset sub-blocks read 0 -> -32.
  sc[0] = 0x03;      // sub-block 0: low nibble 3 ...
  sc[8] = 0x02;      // ... high bits 2 (byte 8, bits 0-1) -> 35 -> +3
  sc[1] = 0xB0;      // sub-block 9: low nibble 11 (high nibble of byte 1) ...
  sc[9] = 0x10;      // ... high bits 1 (byte 9, bits 4-5) -> 27 -> -5
  sc[4] = 0xF0;      // sub-block 12: low nibble 15 (high nibble of byte 4) ...
  sc[8] |= 0xC0;     // ... high bits 3 (byte 8, bits 6-7) -> 63 -> +31
  qs[0] = 0x03;      // element 0: low bits 3
  hmask[0] = 0x01;   // element 0: high bit set -> q = 3
  qs[1] = 0x01;      // element 1: low bits 1, no high bit -> 1 - 4 = -3
  qs[54] = 0x02;     // element 150 (second half, byte 32 + 22, bits 0-1) -> 2
  hmask[22] = 0x10;  // element 150: bit 150/32 = 4 of hmask[150 % 32] -> q = 2
  qs[32] |= 0x30;    // element 192 (second half, byte 32, bits 4-5) -> 3
  hmask[0] |= 0x40;  // element 192: bit 6 of hmask[0] -> q = 3
  const auto y = Dequant(DType::kQ3_K, b);
  EXPECT_EQ(y[0], 4.5f);     // 0.5 * 3 * 3
  EXPECT_EQ(y[1], -4.5f);    // 0.5 * 3 * -3
  EXPECT_EQ(y[16], 64.0f);   // sub-block 1: 0.5 * -32 * (0 - 4)
  EXPECT_EQ(y[150], -5.0f);  // 0.5 * -5 * 2
  EXPECT_EQ(y[192], 46.5f);  // 0.5 * 31 * 3
  EXPECT_EQ(y[32], 64.0f);   // sub-block 2: code 0, no high bit
}

// Sub-blocks 0, 1 and 5 of a q4_K/q5_K scale array: (10, 3), (7, 1), (53, 42).
void PutK4Scales(std::vector<uint8_t>& b) {
  uint8_t* s = b.data() + 4;
  s[0] = 10;
  s[4] = 3;
  s[1] = 7 | (3 << 6);  // + bits 4-5 of scale 53 (sub-block 5)
  s[5] = 1 | (2 << 6);  // + bits 4-5 of min 42 (sub-block 5)
  s[9] = 0xA5;          // sub-block 5: scale bits 0-3 = 5, min bits 0-3 = 10
}

TEST(QuantRefHandBuilt, Q4_KPackedScales) {
  std::vector<uint8_t> b(144, 0);
  PutF16(b, 0, 1.0f);
  PutF16(b, 2, 0.5f);
  PutK4Scales(b);
  uint8_t* qs = b.data() + 16;
  qs[0] = 0x9C;   // element 0: 12 (sub-block 0), element 32: 9 (sub-block 1)
  qs[64] = 0xE0;  // element 128: 0 (sub-block 4), element 160: 14 (sub-block 5)
  const auto y = Dequant(DType::kQ4_K, b);
  EXPECT_EQ(y[0], 118.5f);    // 10*12 - 0.5*3
  EXPECT_EQ(y[32], 62.5f);    // 7*9 - 0.5*1
  EXPECT_EQ(y[160], 721.0f);  // 53*14 - 0.5*42
  EXPECT_EQ(y[128], 0.0f);    // sub-block 4: scale 0, min 0
  EXPECT_EQ(y[1], -1.5f);
}

TEST(QuantRefHandBuilt, Q5_KHighBits) {
  std::vector<uint8_t> b(176, 0);
  PutF16(b, 0, 1.0f);
  PutF16(b, 2, 0.5f);
  PutK4Scales(b);
  uint8_t* qh = b.data() + 16;
  uint8_t* qs = b.data() + 48;
  qs[0] = 0x9C;
  qs[64] = 0xE0;
  qh[0] = 0x21;  // element 0 (bit 0) and element 160 (bit 5)
  qh[1] = 0x20;  // element 161 (bit 5 of qh[1])
  const auto y = Dequant(DType::kQ5_K, b);
  EXPECT_EQ(y[0], 278.5f);     // 10*(12+16) - 1.5
  EXPECT_EQ(y[32], 62.5f);     // 7*9 - 0.5 (bit 1 not set)
  EXPECT_EQ(y[160], 1569.0f);  // 53*(14+16) - 21
  EXPECT_EQ(y[161], 827.0f);   // 53*(0+16) - 21
}

TEST(QuantRefHandBuilt, Q6_KLowHighSplit) {
  std::vector<uint8_t> b(210, 0);
  PutF16(b, 208, 0.25f);
  uint8_t* ql = b.data();
  uint8_t* qh = b.data() + 128;
  int8_t* sc = reinterpret_cast<int8_t*>(b.data() + 192);
  sc[0] = 4;
  sc[2] = -3;
  sc[4] = 8;
  sc[6] = 127;
  sc[15] = -128;
  ql[0] = 0x5A;    // element 0: low 10; element 64: low 5
  ql[32] = 0x0F;   // element 32: low 15; element 96: low 0
  qh[0] = 0xE7;    // top bits: element 0 -> 3, 32 -> 1, 64 -> 2, 96 -> 3
  ql[127] = 0x30;  // element 255 (second half, group 3, l 31): low 3; qh[63] = 0 -> top 0
  const auto y = Dequant(DType::kQ6_K, b);
  EXPECT_EQ(y[0], 26.0f);     // 0.25*4*(10+48-32)
  EXPECT_EQ(y[32], 0.75f);    // 0.25*-3*(15+16-32)
  EXPECT_EQ(y[64], 10.0f);    // 0.25*8*(5+32-32)
  EXPECT_EQ(y[96], 508.0f);   // 0.25*127*(0+48-32)
  EXPECT_EQ(y[255], 928.0f);  // 0.25*-128*(3-32)
}

TEST(QuantRefHandBuilt, Q8_KFloatScale) {
  std::vector<uint8_t> b(292, 0);
  const float d = 0.5f;
  std::memcpy(b.data(), &d, 4);
  b[4] = static_cast<uint8_t>(-7);
  b[4 + 255] = 100;
  const auto y = Dequant(DType::kQ8_K, b);
  EXPECT_EQ(y[0], -3.5f);
  EXPECT_EQ(y[255], 50.0f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(QuantRefPlain, RoundToNearestEven) {
  const std::vector<float> x = {
      1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 65520.0f};
  std::vector<uint8_t> h(x.size() * 2), bf(x.size() * 2), f(x.size() * 4);
  ref::QuantizeBlocks(DType::kF16, x.data(), 6, h.data());
  ref::QuantizeBlocks(DType::kBF16, x.data(), 6, bf.data());
  ref::QuantizeBlocks(DType::kF32, x.data(), 6, f.data());
  std::vector<float> yh(6), yb(6), yf(6);
  ref::DequantizeBlocks(DType::kF16, h.data(), 6, yh.data());
  ref::DequantizeBlocks(DType::kBF16, bf.data(), 6, yb.data());
  ref::DequantizeBlocks(DType::kF32, f.data(), 6, yf.data());
  EXPECT_EQ(yh[0], 1.0f);            // tie -> even
  EXPECT_EQ(yh[1], 1.0f + 0x1p-9f);  // tie -> even (up)
  EXPECT_EQ(yh[4], -2.5f);
  EXPECT_TRUE(std::isinf(yh[5]));    // overflow
  EXPECT_EQ(yb[2], 1.0f);            // tie -> even
  EXPECT_EQ(yb[3], 1.0f + 0x1p-6f);  // tie -> even (up)
  for (int i = 0; i < 6; ++i) EXPECT_EQ(yf[i], x[i]);
  EXPECT_EQ(h[0], 0x00);
  EXPECT_EQ(h[1], 0x3C);  // little-endian 0x3C00
}

// ---- Quantizer rules that make our legacy-format files equal llama.cpp's. ----

TEST(QuantRefQuantize, LegacyRoundingRules) {
  // q4_0: d = max / -8 for the signed largest-magnitude element; q = min(15, trunc(x/d + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;  // largest magnitude: d = 0.5, id = 2
  x[1] = 1.25f;  // 1.25*2 + 8.5 = 11 -> 11 (-> 1.5)
  x[2] = 4.0f;   // saturates at 15 (-> 3.5)
  x[3] = 0.24f;  // 0.48 + 8.5 = 8.98 -> 8 (-> 0)
  auto b = Quant(DType::kQ4_0, x);
  auto y = Dequant(DType::kQ4_0, b);
  EXPECT_EQ(b[2] & 0xF, 0);  // -4 -> code 0
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[1], 1.5f);
  EXPECT_EQ(y[2], 3.5f);
  EXPECT_EQ(y[3], 0.0f);
  // q8_0: d = amax / 127, q = round half away from zero.
  std::vector<float> z(32, 0.0f);
  z[0] = 127.0f;
  z[1] = 2.5f;
  z[2] = -2.5f;
  b = Quant(DType::kQ8_0, z);
  EXPECT_EQ(static_cast<int8_t>(b[2 + 1]), 3);
  EXPECT_EQ(static_cast<int8_t>(b[2 + 2]), -3);
  EXPECT_EQ(static_cast<int8_t>(b[2 + 0]), 127);
  // q8_K: d = max / -127 in f32, bsums are sums of 16 codes.
  std::vector<float> k(256, 0.0f);
  k[0] = 2.0f;
  k[5] = -1.0f;
  k[20] = 0.5f;
  b = Quant(DType::kQ8_K, k);
  float d;
  std::memcpy(&d, b.data(), 4);
  EXPECT_EQ(d, 1.0f / (-127.0f / 2.0f));
  EXPECT_EQ(static_cast<int8_t>(b[4]), -127);
  EXPECT_EQ(static_cast<int8_t>(b[4 + 5]), 64);    // 63.5 -> ties to even
  EXPECT_EQ(static_cast<int8_t>(b[4 + 20]), -32);  // -31.75 -> -32
  EXPECT_EQ(static_cast<int16_t>(b[260] | (b[261] << 8)), -127 + 64);
  EXPECT_EQ(static_cast<int16_t>(b[262] | (b[263] << 8)), -32);
}

// FNV-1a 64 of the bytes llama.cpp's quantize_row_*_ref wrote for the input below (computed once
// with the llama.cpp source pinned in tests/reference, node-llama-cpp 3.21.1): our legacy and
// q8_K quantizers must write exactly those bytes, so our files equal llama.cpp's.
TEST(QuantRefQuantize, LegacyBytesEqualLlamaCpp) {
  std::vector<float> x(512);
  for (int i = 0; i < 512; ++i) {
    x[i] = static_cast<float>((i * 37 % 101) - 50) * 0.013f * static_cast<float>(1 + i % 5) +
           (i / 64 == 3 ? 0.9f : 0.0f);
  }
  const std::pair<DType, uint64_t> expected[] = {
      {DType::kQ4_0, 0x958eaca1973ea171ull}, {DType::kQ4_1, 0xfce81135df53cae4ull},
      {DType::kQ5_0, 0x64bca4fd64438d69ull}, {DType::kQ5_1, 0x3c9a66029ceeaa0eull},
      {DType::kQ8_0, 0xc6af53d7dec74ff8ull}, {DType::kQ8_K, 0xfcc05db4acd511d4ull}};
  for (const auto& [t, hash] : expected) {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t v : Quant(t, x)) {
      h ^= v;
      h *= 1099511628211ull;
    }
    EXPECT_EQ(h, hash) << DTypeName(t);
  }
}

// ---- Round trips. ----

struct Stats {
  double sum_err2 = 0, sum_x2 = 0;
  double Rel() const { return sum_x2 > 0 ? std::sqrt(sum_err2 / sum_x2) : 0.0; }
};

// Largest allowed |error| per block of the 32-element formats, derived from the quantizer rules:
// half a step (a full step at the saturating end of q4_0/q5_0) plus the f16 rounding of d (and m)
// times the largest code, plus f32 rounding slack.
double LegacyBound(DType t, const float* x) {
  float amax = 0, mn = x[0], mx = x[0];
  for (int i = 0; i < 32; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const double f16_rel = std::ldexp(1.0, -11), f16_abs = std::ldexp(1.0, -24);
  const double slack = amax * 1e-6;
  const double range = static_cast<double>(mx) - mn;
  switch (t) {
    case DType::kQ8_0:
      return 0.5 * amax / 127 + 127 * (amax / 127 * f16_rel + f16_abs) + slack;
    case DType::kQ4_0:
      return amax / 8.0 + 8 * (amax / 8 * f16_rel + f16_abs) + slack;
    case DType::kQ5_0:
      return amax / 16.0 + 16 * (amax / 16 * f16_rel + f16_abs) + slack;
    case DType::kQ4_1:
      return 0.5 * range / 15 + 15 * (range / 15 * f16_rel + f16_abs) + std::fabs(mn) * f16_rel +
             f16_abs + slack;
    case DType::kQ5_1:
      return 0.5 * range / 31 + 31 * (range / 31 * f16_rel + f16_abs) + std::fabs(mn) * f16_rel +
             f16_abs + slack;
    default:
      return 0;
  }
}

// Looser per-super-block bounds for the K-quants: their least-squares scales may clip an extreme
// value (for the symmetric formats up to about one step at the short end of the signed code
// range), and sub-block scales are themselves quantized. A fraction of the super-block's largest
// magnitude (symmetric formats) or value range from min(0, min) (formats with a min), checked
// with margin against many random super-blocks (Gaussian, uniform, shifted, with outliers).
double KQuantBound(DType t, const float* x) {
  float amax = 0, mn = 0, mx = 0;
  for (int i = 0; i < 256; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const double range = static_cast<double>(mx) - mn;
  switch (t) {
    case DType::kQ8_K:
      return 0.5 * amax / 127 * 1.0001;
    case DType::kQ6_K:
      return amax / 32.0;
    case DType::kQ5_K:
      return range / 24.0;
    case DType::kQ4_K:
      return range / 12.0;
    case DType::kQ3_K:
      return amax / 3.0;
    case DType::kQ2_K:
      return range / 3.0;
    default:
      return 0;
  }
}

void CheckRoundTrip(DType t, const std::vector<float>& x, Stats* stats, const std::string& what) {
  const auto b = Quant(t, x);
  const auto y = Dequant(t, b);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_EQ(Quant(t, x), b) << DTypeName(t) << " " << what << ": quantize is not deterministic";
  const size_t be = Traits(t).block_elems;
  for (size_t blk = 0; blk < x.size() / be; ++blk) {
    const float* xb = x.data() + blk * be;
    const double bound = be == 32 ? LegacyBound(t, xb) : KQuantBound(t, xb);
    double max_err = 0;
    size_t worst = 0;
    for (size_t i = 0; i < be; ++i) {
      const double e = std::fabs(static_cast<double>(y[blk * be + i]) - xb[i]);
      if (e > max_err) {
        max_err = e;
        worst = i;
      }
    }
    EXPECT_LE(max_err, bound) << DTypeName(t) << " " << what << " block " << blk << " element "
                              << worst << ": x=" << xb[worst] << " y=" << y[blk * be + worst];
  }
  if (stats != nullptr) {
    for (size_t i = 0; i < x.size(); ++i) {
      stats->sum_err2 += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
      stats->sum_x2 += static_cast<double>(x[i]) * x[i];
    }
  }
}

TEST(QuantRefRoundTrip, RandomDataErrorBoundsAndRmsOrdering) {
  const float magnitudes[] = {0.0137f, 1.0f, 3.7f, 211.0f};
  std::map<DType, Stats> stats;
  for (DType t : kQuantTypes) {
    const size_t be = Traits(t).block_elems;
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      for (float mag : magnitudes) {
        for (size_t nb = 1; nb <= 7; ++nb) {
          std::mt19937 rng(seed * 1000 + static_cast<uint32_t>(nb));
          std::normal_distribution<float> g(0.0f, mag);
          std::vector<float> x(nb * be);
          // Half the blocks get a shifted mean, which the formats with a min must follow.
          const float shift = (seed % 2 == 0) ? 0.7f * mag : 0.0f;
          for (float& v : x) v = g(rng) + shift;
          std::ostringstream what;
          what << "seed " << seed << " mag " << mag << " blocks " << nb;
          CheckRoundTrip(t, x, &stats[t], what.str());
        }
      }
    }
  }
  for (const auto& [t, s] : stats) {
    std::printf("  %-5s relative RMS error %.5f\n", DTypeName(t), s.Rel());
  }
  // Relative RMS error thresholds, each with some margin over what this quantizer achieves on
  // Gaussian data (roughly step / sqrt(12) for the format's resolution).
  const std::map<DType, double> max_rel = {
      {DType::kQ8_K, 0.008}, {DType::kQ8_0, 0.006}, {DType::kQ6_K, 0.02}, {DType::kQ5_0, 0.045},
      {DType::kQ5_1, 0.045}, {DType::kQ5_K, 0.04},  {DType::kQ4_0, 0.09}, {DType::kQ4_1, 0.09},
      {DType::kQ4_K, 0.08},  {DType::kQ3_K, 0.17},  {DType::kQ2_K, 0.35}};
  for (const auto& [t, lim] : max_rel) EXPECT_LT(stats[t].Rel(), lim) << DTypeName(t);
  auto rel = [&](DType t) { return stats[t].Rel(); };
  EXPECT_LT(rel(DType::kQ8_0), rel(DType::kQ6_K));
  for (DType q5 : {DType::kQ5_0, DType::kQ5_1, DType::kQ5_K}) {
    EXPECT_LT(rel(DType::kQ6_K), rel(q5)) << DTypeName(q5);
    for (DType q4 : {DType::kQ4_0, DType::kQ4_1, DType::kQ4_K}) {
      EXPECT_LT(rel(q5), rel(q4)) << DTypeName(q5) << " vs " << DTypeName(q4);
      EXPECT_LT(rel(q4), rel(DType::kQ3_K)) << DTypeName(q4);
    }
  }
  EXPECT_LT(rel(DType::kQ3_K), rel(DType::kQ2_K));
}

TEST(QuantRefRoundTrip, ZeroConstantAndOutlierBlocks) {
  for (DType t : kQuantTypes) {
    const size_t be = Traits(t).block_elems;
    // All zero: decodes to exactly zero.
    {
      std::vector<float> x(3 * be, 0.0f);
      const auto y = Dequant(t, Quant(t, x));
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f) << DTypeName(t) << " " << i;
    }
    // Constant blocks, positive and negative, several magnitudes: close to exact.
    for (float c : {1.0f, -1.0f, 0.3125f, -7.3f, 123.4f}) {
      std::vector<float> x(2 * be, c);
      const auto y = Dequant(t, Quant(t, x));
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], c, std::fabs(c) * 4e-3) << DTypeName(t) << " constant " << c << " " << i;
      }
      CheckRoundTrip(t, x, nullptr, "constant");
    }
    // One block of zeros next to random blocks, and one huge outlier among small values.
    std::mt19937 rng(77);
    std::normal_distribution<float> g(0.0f, 0.05f);
    std::vector<float> x(4 * be);
    for (float& v : x) v = g(rng);
    std::fill(x.begin() + static_cast<std::ptrdiff_t>(be),
              x.begin() + static_cast<std::ptrdiff_t>(2 * be), 0.0f);
    x[2 * be + 5] = 500.0f;
    x[3 * be + be - 1] = -321.0f;
    CheckRoundTrip(t, x, nullptr, "zeros+outliers");
    const auto y = Dequant(t, Quant(t, x));
    for (size_t i = be; i < 2 * be; ++i) ASSERT_EQ(y[i], 0.0f) << DTypeName(t) << " zero block";
    EXPECT_NEAR(y[2 * be + 5], 500.0f, 500.0f * 0.13f) << DTypeName(t);
    EXPECT_NEAR(y[3 * be + be - 1], -321.0f, 321.0f * 0.13f) << DTypeName(t);
  }
}

TEST(QuantRefRoundTrip, BlocksAreIndependent) {
  // Quantizing a prefix gives the same bytes as the start of the longer quantization.
  for (DType t : kQuantTypes) {
    const size_t be = Traits(t).block_elems, bb = Traits(t).block_bytes;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-2.0f, 3.0f);
    std::vector<float> x(5 * be);
    for (float& v : x) v = u(rng);
    const auto all = Quant(t, x);
    const auto first =
        Quant(t, std::vector<float>(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(2 * be)));
    EXPECT_TRUE(std::equal(first.begin(), first.end(), all.begin())) << DTypeName(t);
    EXPECT_EQ(all.size(), 5 * bb);
  }
}

// ---- DequantizeRow / MatMul on block-quantized weights. ----

TEST(QuantRefRows, DequantizeRowAndMatMulQuantized) {
  const int64_t rows = 3;
  for (DType t : kQuantTypes) {
    const int64_t cols = 2 * static_cast<int64_t>(Traits(t).block_elems);
    std::mt19937 rng(11);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(rows * cols)), x(static_cast<size_t>(2 * cols));
    for (float& v : w) v = g(rng);
    for (float& v : x) v = g(rng);
    const auto q = Quant(t, w);
    const auto wd = Dequant(t, q);
    ref::MatrixView view{t, q.data(), rows, cols};
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      ref::DequantizeRow(view, r, row.data());
      for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(row[i], wd[r * cols + i]) << DTypeName(t);
    }
    std::vector<float> y(static_cast<size_t>(2 * rows));
    ref::MatMul(view, x.data(), 2, y.data());
    for (int64_t tk = 0; tk < 2; ++tk) {
      for (int64_t o = 0; o < rows; ++o) {
        double acc = 0;
        for (int64_t i = 0; i < cols; ++i)
          acc += static_cast<double>(wd[o * cols + i]) * x[tk * cols + i];
        EXPECT_FLOAT_EQ(y[tk * rows + o], static_cast<float>(acc)) << DTypeName(t);
      }
    }
  }
  // A dtype without a dequantizer reads as NaN.
  std::vector<uint8_t> junk(64);
  ref::MatrixView bad{DType::kIQ4_NL, junk.data(), 1, 32};
  std::vector<float> row(32);
  ref::DequantizeRow(bad, 0, row.data());
  EXPECT_TRUE(std::isnan(row[0]));
}

// ---- Independent implementation: tests/reference/dequant_ref.py. ----

// Byte offsets of the f16 scale fields in one block (forced finite in the random blocks).
std::vector<size_t> F16Fields(DType t) {
  switch (t) {
    case DType::kQ4_0:
    case DType::kQ5_0:
    case DType::kQ8_0:
      return {0};
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
      return {0, 2};
    case DType::kQ2_K:
      return {80, 82};
    case DType::kQ3_K:
      return {108};
    case DType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

TEST(QuantRefIndependent, MatchesPythonDequantizerBitForBit) {
  GL_REQUIRE_REFERENCE(testing::RunCommand("command -v python3").exit_code == 0,
                       "python3 not found on PATH; the independent Python dequantizer "
                       "(tests/reference/dequant_ref.py) cannot run");
  const std::string script = testing::SourceDir() + "/tests/reference/dequant_ref.py";
  testing::TempDir dir;
  std::mt19937 rng(2024);
  for (DType t : kQuantTypes) {
    const size_t bb = Traits(t).block_bytes;
    const size_t nb = 12;
    std::vector<uint8_t> raw(nb * bb);
    for (uint8_t& v : raw) v = static_cast<uint8_t>(rng() & 0xFF);
    for (size_t blk = 0; blk < nb; ++blk) {
      uint8_t* b = raw.data() + blk * bb;
      for (size_t off : F16Fields(t)) {
        // Random sign and mantissa, exponent field 0..24 (zero/subnormal up to 2^9): finite.
        const uint16_t h =
            static_cast<uint16_t>((rng() & 0x8000u) | ((rng() % 25) << 10) | (rng() & 0x3FFu));
        b[off] = static_cast<uint8_t>(h & 0xFF);
        b[off + 1] = static_cast<uint8_t>(h >> 8);
      }
      if (t == DType::kQ8_K) {
        std::uniform_real_distribution<float> e(-10.0f, 6.0f);
        const float d = std::ldexp(1.0f, static_cast<int>(e(rng))) *
                        (1.0f + (rng() % 1000) / 1000.0f) * ((rng() & 1) ? -1.0f : 1.0f);
        std::memcpy(b, &d, 4);
      }
    }
    // Two more blocks from our own quantizer, so realistic blocks are covered too.
    std::vector<float> xs(2 * Traits(t).block_elems);
    std::normal_distribution<float> g(0.1f, 1.3f);
    for (float& v : xs) v = g(rng);
    const auto qb = Quant(t, xs);
    raw.insert(raw.end(), qb.begin(), qb.end());

    const std::string file = dir.File(std::string(DTypeName(t)) + ".bin");
    testing::WriteFile(file, std::string(raw.begin(), raw.end()));
    const auto r =
        testing::RunCommand("python3 '" + script + "' " + DTypeName(t) + " '" + file + "'");
    ASSERT_EQ(r.exit_code, 0) << DTypeName(t) << ": " << r.err;
    const auto ours = Dequant(t, raw);
    std::istringstream in(r.out);
    std::string line;
    size_t i = 0, mismatches = 0;
    while (std::getline(in, line)) {
      ASSERT_LT(i, ours.size()) << DTypeName(t) << ": python printed too many values";
      const uint32_t theirs = static_cast<uint32_t>(std::stoul(line, nullptr, 16));
      if (theirs != FloatBits(ours[i]) && mismatches++ < 5) {
        ADD_FAILURE() << DTypeName(t) << " element " << i << " (block " << i / Traits(t).block_elems
                      << "): ours " << ours[i] << " (0x" << std::hex << FloatBits(ours[i])
                      << ") python 0x" << theirs << std::dec;
      }
      ++i;
    }
    EXPECT_EQ(i, ours.size()) << DTypeName(t);
    EXPECT_EQ(mismatches, 0u) << DTypeName(t);
  }
}

}  // namespace
}  // namespace gemma_local
