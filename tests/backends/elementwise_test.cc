// Vectorized element-wise kernels against the scalar reference, on odd lengths and thread counts.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "ops/ops.h"

namespace gemma_local {
namespace {

TEST(CpuElementwise, GeluMulMatchesReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 3.0f);
  ThreadPool pool1(1), pool3(3);
  for (int64_t n : {1, 7, 8, 17, 1000, 40000}) {
    std::vector<float> gate(static_cast<size_t>(n)), up(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) {
      gate[i] = g(rng);
      up[i] = g(rng);
    }
    if (n > 7) gate[3] = 60.0f, gate[5] = -60.0f, gate[6] = 0.0f;  // saturation and zero
    std::vector<float> a = gate, b = gate;
    ops::GeluMul(ops::Context{&pool1}, a.data(), up.data(), n);
    ops::GeluMul(ops::Context{&pool3}, b.data(), up.data(), n);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "thread count, n " << n;
    for (size_t i = 0; i < gate.size(); ++i) {
      const float want = ref::GeluTanh(gate[i]) * up[i];
      ASSERT_NEAR(a[i], want, 2e-6f * (1.0f + std::fabs(want))) << "n " << n << " i " << i << " x " << gate[i];
    }
  }
}

}  // namespace
}  // namespace gemma_local
