// Element-wise activation kernels (Highway, dynamic dispatch), parallel over chunks.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/elementwise.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>

#include "ops/ops.h"

HWY_BEFORE_NAMESPACE();
namespace gemma_local::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// gate[i] = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up[i] for i in [begin, end).
void GeluMulRange(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t begin, int64_t end) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto k0 = hn::Set(d, 0.7978845608028654f);
  const auto k1 = hn::Set(d, 0.044715f);
  const auto half = hn::Set(d, 0.5f);
  const auto one = hn::Set(d, 1.0f);
  int64_t i = begin;
  for (; i + lanes <= end; i += lanes) {
    const auto g = hn::LoadU(d, gate + i);
    const auto inner = hn::Mul(k0, hn::MulAdd(hn::Mul(k1, g), hn::Mul(g, g), g));
    const auto gelu = hn::Mul(hn::Mul(half, g), hn::Add(one, hn::Tanh(d, inner)));
    hn::StoreU(hn::Mul(gelu, hn::LoadU(d, up + i)), d, gate + i);
  }
  for (; i < end; ++i) gate[i] = ref::GeluTanh(gate[i]) * up[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace gemma_local::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gemma_local::cpu {
HWY_EXPORT(GeluMulRange);
}  // namespace gemma_local::cpu

namespace gemma_local::ops {

void GeluMul(const Context& ctx, float* gate, const float* up, int64_t n) {
  const auto fn = HWY_DYNAMIC_DISPATCH(cpu::GeluMulRange);
  ctx.pool->ParallelFor(n, 16384, [&](int64_t begin, int64_t end) { fn(gate, up, begin, end); });
}

}  // namespace gemma_local::ops
#endif  // HWY_ONCE
