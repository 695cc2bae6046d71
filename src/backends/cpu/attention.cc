// Attention for one query position and the query heads that share a KV head (Highway, dynamic
// dispatch). Each K and V row is read once per group and stays in L1 while every head of the
// group uses it, which is what grouped-query attention saves in memory traffic.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>
#include <vector>

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

// out[i] += p * v[i] for i < n.
HWY_INLINE void AddScaled(float p, const float* HWY_RESTRICT v, int64_t n, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto vp = hn::Set(d, p);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(vp, hn::LoadU(d, v + i), hn::LoadU(d, out + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] += p * v[i];
}

void AttendGroupImpl(const float* q, int64_t group, int64_t dim, const float* const* k_rows,
                     const float* const* v_rows, int64_t offset, int64_t n, float scale, float softcap,
                     float* scores, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const float* k = k_rows[j] + offset;
    for (int64_t h = 0; h < group; ++h) scores[h * n + j] = DotRow(q + h * dim, k, dim) * scale;
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
    const float* v = v_rows[j] + offset;
    for (int64_t h = 0; h < group; ++h) AddScaled(scores[h * n + j], v, dim, out + h * dim);
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

void AttendGroup(const float* q, int64_t group, int64_t d, const float* const* k_rows,
                 const float* const* v_rows, int64_t offset, int64_t n, float scale, float softcap,
                 std::vector<float>* scratch, float* out) {
  scratch->resize(static_cast<size_t>(group * n));
  HWY_DYNAMIC_DISPATCH(cpu::AttendGroupImpl)(q, group, d, k_rows, v_rows, offset, n, scale, softcap,
                                             scratch->data(), out);
}

}  // namespace gemma_local::ops
#endif  // HWY_ONCE
