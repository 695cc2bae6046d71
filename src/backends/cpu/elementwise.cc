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

// One vector of GeluMul: out[j] = GeluTanh(g[j]) * u[j] for j < Lanes(d) (out may equal g).
template <class D>
HWY_INLINE void GeluMulVector(D d, const float* g_in, const float* u_in, float* out) {
  const auto g = hn::LoadU(d, g_in);
  const auto inner = hn::Mul(hn::Set(d, 0.7978845608028654f),
                             hn::MulAdd(hn::Mul(hn::Set(d, 0.044715f), g), hn::Mul(g, g), g));
  const auto gelu =
      hn::Mul(hn::Mul(hn::Set(d, 0.5f), g), hn::Add(hn::Set(d, 1.0f), hn::Tanh(d, inner)));
  hn::StoreU(hn::Mul(gelu, hn::LoadU(d, u_in)), d, out);
}

// gate[i] = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up[i] for i in [begin, end).
//
// Every element goes through the same vector arithmetic, the last partial vector included (on a
// zero-padded copy): an element's result then depends only on its own gate and up values, never
// on where it sits in the buffer, how many tokens share the call or how ParallelFor split the
// range. (A scalar std::tanh for the tail differs from the vector tanh in the last bits, which
// made a token's MLP output depend on the batch and the thread count.)
void GeluMulRange(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t begin,
                  int64_t end) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = begin;
  for (; i + lanes <= end; i += lanes) GeluMulVector(d, gate + i, up + i, gate + i);
  if (i < end) {
    HWY_ALIGN float g_tail[hn::MaxLanes(d)] = {};
    HWY_ALIGN float u_tail[hn::MaxLanes(d)] = {};
    const auto n = static_cast<size_t>(end - i);
    std::copy_n(gate + i, n, g_tail);
    std::copy_n(up + i, n, u_tail);
    GeluMulVector(d, g_tail, u_tail, g_tail);
    std::copy_n(g_tail, n, gate + i);
  }
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
