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

// Batch invariance: an element's result depends only on its own gate and up values, not on its
// index in the buffer, the buffer's length (how many tokens share the call) or the thread split.
// 400003 elements on 5 threads make ParallelFor chunks that do not start on a vector boundary.
TEST(CpuElementwise, GeluMulOfAnElementDoesNotDependOnTheRestOfTheBuffer) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 3.0f);
  ThreadPool pool1(1);
  const int64_t kMax = 400003;
  std::vector<float> gate(static_cast<size_t>(kMax)), up(gate.size()), alone(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) {
    gate[i] = g(rng);
    up[i] = g(rng);
  }
  for (size_t i = 0; i < gate.size(); ++i) {
    float x = gate[i];
    ops::GeluMul(ops::Context{&pool1}, &x, &up[i], 1);
    alone[i] = x;
  }
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t offset : {0, 3}) {
      for (int64_t n :
           {int64_t{1}, int64_t{15}, int64_t{17}, int64_t{1000}, int64_t{40000}, kMax - 3}) {
        std::vector<float> x(gate.begin() + offset, gate.begin() + offset + n);
        ops::GeluMul(ops::Context{&pool}, x.data(), up.data() + offset, n);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(0, std::memcmp(&x[i], &alone[offset + i], sizeof(float)))
              << threads << " threads, n " << n << ", element " << offset + i << " (index " << i
              << "): " << x[i] << " vs " << alone[offset + i] << " alone";
        }
      }
    }
  }
}

}  // namespace
}  // namespace gemma_local
