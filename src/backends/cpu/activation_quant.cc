// Vectorized 8-bit activation quantization (Highway, dynamic dispatch): the contract is
// cpu::QuantizeActivations in quant_matmul.h; this file computes, for consecutive blocks of one
// row, the int8 values, the scale and the sums of each 16 values.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/activation_quant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstdint>

#include "backends/cpu/quant_matmul.h"

HWY_BEFORE_NAMESPACE();
namespace gemma_local::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// For b < n_blocks: d[b] = amax / 127 of x[b*block .. +block), q = round-half-even(x / d) (0 for
// an all-zero block), sums16[b * block / 16 + k] = sum of q over the k-th 16 values.
// block is a multiple of 16.
void QuantizeBlocksRow(const float* HWY_RESTRICT x, int64_t n_blocks, int64_t block, int8_t* HWY_RESTRICT q,
                       float* HWY_RESTRICT d, int32_t* HWY_RESTRICT sums16) {
  const hn::CappedTag<float, 16> df;  // at most 16 lanes, so a vector never spans two sums
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* src = x + b * block;
    auto vmax = hn::Zero(df);
    for (int64_t i = 0; i < block; i += lanes) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, src + i)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float scale = amax / 127.0f;
    const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    d[b] = scale;
    const auto vinv = hn::Set(df, inv);
    for (int64_t k = 0; k < block / 16; ++k) {
      auto acc = hn::Zero(di);
      for (int64_t i = 16 * k; i < 16 * k + 16; i += lanes) {
        // NearestInt rounds half to even (the default rounding mode), as std::nearbyint does.
        const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, src + i), vinv));
        acc = hn::Add(acc, qi);
        hn::StoreU(hn::DemoteTo(d8, qi), d8, q + b * block + i);
      }
      sums16[b * block / 16 + k] = hn::GetLane(hn::SumOfLanes(di, acc));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gemma_local::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gemma_local::cpu {
HWY_EXPORT(QuantizeBlocksRow);

void QuantizeActivationRow(const float* x, int64_t n_blocks, int64_t block, int8_t* q, float* d,
                           int32_t* sums16) {
  HWY_DYNAMIC_DISPATCH(QuantizeBlocksRow)(x, n_blocks, block, q, d, sums16);
}
}  // namespace gemma_local::cpu
#endif  // HWY_ONCE
