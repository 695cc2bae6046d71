// SIMD dot products shared by the Highway kernels of the CPU backend (matmul.cc,
// attention.cc). Highway per-target header: include it after <hwy/highway.h> in a file compiled
// through hwy/foreach_target.h; it defines its functions once per target.
#if defined(GEMMA_LOCAL_BACKENDS_CPU_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GEMMA_LOCAL_BACKENDS_CPU_DOT_INL_H_
#undef GEMMA_LOCAL_BACKENDS_CPU_DOT_INL_H_
#else
#define GEMMA_LOCAL_BACKENDS_CPU_DOT_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/half.h"

HWY_BEFORE_NAMESPACE();
namespace gemma_local::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads lanes of one weight row as f32.
template <class D, typename T>
HWY_INLINE hn::Vec<D> LoadF32(D d, const T* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(d, p);
  } else {
    const hn::Rebind<T, D> dn;
    return hn::PromoteTo(d, hn::LoadU(dn, p));
  }
}

template <typename T>
HWY_INLINE float ToF32(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    uint16_t bits;
    std::memcpy(&bits, &v, 2);
    return std::is_same_v<T, hwy::float16_t> ? F16ToF32(bits) : Bf16ToF32(bits);
  }
}

// Two accumulators hide FMA latency; the tail is summed in scalar order.
template <typename T>
HWY_INLINE float DotRow(const T* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d);
  auto acc1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    acc0 = hn::MulAdd(LoadF32(d, w + i), hn::LoadU(d, x + i), acc0);
    acc1 = hn::MulAdd(LoadF32(d, w + i + lanes), hn::LoadU(d, x + i + lanes), acc1);
  }
  for (; i + lanes <= n; i += lanes) acc0 = hn::MulAdd(LoadF32(d, w + i), hn::LoadU(d, x + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += ToF32(w[i]) * x[i];
  return sum;
}

// DotRow of one weight row with NT token vectors at once (x[t] = x + t * x_stride): the row is
// loaded and widened once per vector for all of them. Each token's sum takes exactly DotRow's
// operations in DotRow's order (its own two accumulators, the same tail), so out[t] is
// bit-identical to DotRow(w, x + t * x_stride, n): batching tokens never changes a result.
template <int NT, typename T>
HWY_INLINE void DotRows(const T* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t x_stride,
                        int64_t n, float* out, int64_t out_stride) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<decltype(d)> acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto w0 = LoadF32(d, w + i);
    const auto w1 = LoadF32(d, w + i + lanes);
    for (int t = 0; t < NT; ++t) {
      acc0[t] = hn::MulAdd(w0, hn::LoadU(d, x + t * x_stride + i), acc0[t]);
      acc1[t] = hn::MulAdd(w1, hn::LoadU(d, x + t * x_stride + i + lanes), acc1[t]);
    }
  }
  for (; i + lanes <= n; i += lanes) {
    const auto w0 = LoadF32(d, w + i);
    for (int t = 0; t < NT; ++t) {
      acc0[t] = hn::MulAdd(w0, hn::LoadU(d, x + t * x_stride + i), acc0[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0[t], acc1[t])));
    for (int64_t k = i; k < n; ++k) sum += ToF32(w[k]) * x[t * x_stride + k];
    out[t * out_stride] = sum;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gemma_local::cpu
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
