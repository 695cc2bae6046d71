// Attention for one query position and the query heads that share a KV head (Highway, dynamic
// dispatch). Each K and V row is read once per group and stays in L1 while every head of the
// group uses it, which is what grouped-query attention saves in memory traffic. Rows are read in
// the KV cache's storage type: f16 is promoted to f32 inside the dot and axpy loops, q8_0
// dequantized there block by block (scale * int8), so no f32 copy of the cache is ever made.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "ops/kv_view.h"
#include "ops/ops.h"

// DotRow (per target).
#include "backends/cpu/dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace gemma_local::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x[i] = exp(x[i] - mx) for i < n; returns their sum.
HWY_INLINE float ExpShiftedSum(float* HWY_RESTRICT x, int64_t n, float mx) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto vmx = hn::Set(d, mx);
  auto acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmx));
    hn::StoreU(e, d, x + i);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  return sum;
}

// out[i] += p * v[i] for i < n (v: f32, or f16 promoted in the loop).
template <typename T>
HWY_INLINE void AddScaled(float p, const T* HWY_RESTRICT v, int64_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto vp = hn::Set(d, p);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(vp, LoadF32(d, v + i), hn::LoadU(d, out + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] += p * ToF32(v[i]);
}

// q8_0 blocks (kKvQ8BlockBytes each: f16 scale, 32 int8). A vector never spans two blocks: the
// tag is capped at a block's 32 lanes (a power of two, so it divides the block).
using Q8Tag = hn::CappedTag<float, kKvQ8BlockElems>;

HWY_INLINE float Q8Scale(const uint8_t* block) {
  uint16_t bits;
  std::memcpy(&bits, block, 2);
  return F16ToF32(bits);
}

// Lanes i.. of one block as f32: scale * q, the value ref::DequantizeBlocks gives.
HWY_INLINE hn::Vec<Q8Tag> Q8Lanes(const uint8_t* HWY_RESTRICT block, int64_t i,
                                  hn::Vec<Q8Tag> scale) {
  const Q8Tag d;
  const hn::Rebind<int32_t, Q8Tag> di;
  const hn::Rebind<int8_t, Q8Tag> d8;
  const auto q = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(block + 2) + i));
  return hn::Mul(hn::ConvertTo(d, q), scale);
}

// sum_i value_i * x[i] over n elements (whole blocks) of q8_0, dequantized block by block inside
// the loop. Two accumulators hide FMA latency where a block holds two vectors or more.
HWY_INLINE float DotQ8(const uint8_t* HWY_RESTRICT blocks, const float* HWY_RESTRICT x, int64_t n) {
  const Q8Tag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d);
  auto acc1 = hn::Zero(d);
  for (int64_t b = 0; b < n / kKvQ8BlockElems; ++b) {
    const uint8_t* block = blocks + b * kKvQ8BlockBytes;
    const float* xb = x + b * kKvQ8BlockElems;
    const auto scale = hn::Set(d, Q8Scale(block));
    int64_t i = 0;
    for (; i + 2 * lanes <= kKvQ8BlockElems; i += 2 * lanes) {
      acc0 = hn::MulAdd(Q8Lanes(block, i, scale), hn::LoadU(d, xb + i), acc0);
      acc1 = hn::MulAdd(Q8Lanes(block, i + lanes, scale), hn::LoadU(d, xb + i + lanes), acc1);
    }
    if (i < kKvQ8BlockElems) {  // a vector of the whole block
      acc0 = hn::MulAdd(Q8Lanes(block, i, scale), hn::LoadU(d, xb + i), acc0);
    }
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
}

// out[i] += p * value_i over n elements (whole blocks) of q8_0.
HWY_INLINE void AddScaledQ8(float p, const uint8_t* HWY_RESTRICT blocks, int64_t n,
                            float* HWY_RESTRICT out) {
  const Q8Tag d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto vp = hn::Set(d, p);
  for (int64_t b = 0; b < n / kKvQ8BlockElems; ++b) {
    const uint8_t* block = blocks + b * kKvQ8BlockBytes;
    float* ob = out + b * kKvQ8BlockElems;
    const auto scale = hn::Set(d, Q8Scale(block));
    for (int64_t i = 0; i < kKvQ8BlockElems; i += lanes) {
      hn::StoreU(hn::MulAdd(vp, Q8Lanes(block, i, scale), hn::LoadU(d, ob + i)), d, ob + i);
    }
  }
}

// The dot of x with elements [offset, offset + n) of a stored row, and out += p * those elements.
template <KvType kType>
HWY_INLINE float RowDot(const uint8_t* row, int64_t offset, const float* HWY_RESTRICT x,
                        int64_t n) {
  if constexpr (kType == KvType::kF32) {
    return DotRow(reinterpret_cast<const float*>(row) + offset, x, n);
  } else if constexpr (kType == KvType::kF16) {
    return DotRow(reinterpret_cast<const hwy::float16_t*>(row) + offset, x, n);
  } else {
    return DotQ8(row + offset / kKvQ8BlockElems * kKvQ8BlockBytes, x, n);
  }
}

template <KvType kType>
HWY_INLINE void RowAddScaled(float p, const uint8_t* row, int64_t offset, int64_t n,
                             float* HWY_RESTRICT out) {
  if constexpr (kType == KvType::kF32) {
    AddScaled(p, reinterpret_cast<const float*>(row) + offset, n, out);
  } else if constexpr (kType == KvType::kF16) {
    AddScaled(p, reinterpret_cast<const hwy::float16_t*>(row) + offset, n, out);
  } else {
    AddScaledQ8(p, row + offset / kKvQ8BlockElems * kKvQ8BlockBytes, n, out);
  }
}

// Every head is computed by the same operations whatever `group` is (the loops over heads only
// repeat them), so a head's result never depends on the heads attended with it.
template <KvType kType>
void AttendRows(const float* q, int64_t group, int64_t dim, const uint8_t* const* k_rows,
                const uint8_t* const* v_rows, int64_t offset, int64_t n, float scale, float softcap,
                float* scores, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t h = 0; h < group; ++h) {
      scores[h * n + j] = RowDot<kType>(k_rows[j], offset, q + h * dim, dim) * scale;
    }
  }
  for (int64_t h = 0; h < group; ++h) {
    float* s = scores + h * n;
    if (softcap > 0.0f) {
      for (int64_t j = 0; j < n; ++j) s[j] = softcap * std::tanh(s[j] / softcap);
    }
    float mx = s[0];
    for (int64_t j = 1; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
    const float inv = 1.0f / ExpShiftedSum(s, n, mx);
    for (int64_t j = 0; j < n; ++j) s[j] *= inv;
    for (int64_t i = 0; i < dim; ++i) out[h * dim + i] = 0.0f;
  }
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t h = 0; h < group; ++h) {
      RowAddScaled<kType>(scores[h * n + j], v_rows[j], offset, dim, out + h * dim);
    }
  }
}

void AttendGroupImpl(const float* q, int64_t group, int64_t dim, KvType type,
                     const uint8_t* const* k_rows, const uint8_t* const* v_rows, int64_t offset,
                     int64_t n, float scale, float softcap, float* scores, float* out) {
  switch (type) {
    case KvType::kF32:
      return AttendRows<KvType::kF32>(q, group, dim, k_rows, v_rows, offset, n, scale, softcap,
                                      scores, out);
    case KvType::kF16:
      return AttendRows<KvType::kF16>(q, group, dim, k_rows, v_rows, offset, n, scale, softcap,
                                      scores, out);
    case KvType::kQ8_0:
      return AttendRows<KvType::kQ8_0>(q, group, dim, k_rows, v_rows, offset, n, scale, softcap,
                                       scores, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gemma_local::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gemma_local::cpu {
HWY_EXPORT(AttendGroupImpl);
}  // namespace gemma_local::cpu

namespace gemma_local::ops {

void AttendGroup(const float* q, int64_t group, int64_t d, KvType type,
                 const uint8_t* const* k_rows, const uint8_t* const* v_rows, int64_t offset,
                 int64_t n, float scale, float softcap, std::vector<float>* scratch, float* out) {
  scratch->resize(static_cast<size_t>(group * n));
  HWY_DYNAMIC_DISPATCH(cpu::AttendGroupImpl)(q, group, d, type, k_rows, v_rows, offset, n, scale,
                                             softcap, scratch->data(), out);
}

}  // namespace gemma_local::ops
#endif  // HWY_ONCE
