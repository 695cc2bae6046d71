// CPU SIMD MatMul against the scalar reference on random odd shapes, every plain float dtype and
// several thread counts; results must not depend on the thread count.
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "core/half.h"
#include "ops/ops.h"

namespace gemma_local {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  ref::MatrixView view;
};

Weights RandomWeights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Weights w;
  const size_t n = static_cast<size_t>(rows * cols);
  w.bytes.resize(n * (dtype == DType::kF32 ? 4 : 2));
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    if (dtype == DType::kF32) {
      std::memcpy(&w.bytes[4 * i], &v, 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? F32ToF16(v) : F32ToBf16(v);
      std::memcpy(&w.bytes[2 * i], &h, 2);
    }
  }
  w.view = ref::MatrixView{dtype, w.bytes.data(), rows, cols};
  return w;
}

TEST(CpuMatMul, MatchesReferenceOnOddShapes) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(3)};
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 1}, {17, 31, 2}, {64, 64, 1}, {33, 257, 3}, {5, 1000, 7}, {129, 48, 4}};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const auto& s : shapes) {
      const int64_t rows = s[0], cols = s[1], n_tokens = s[2];
      Weights w = RandomWeights(dtype, rows, cols, rng);
      // Guard floats around the output catch out-of-bounds writes.
      std::vector<float> x(static_cast<size_t>(n_tokens * cols));
      for (float& v : x) v = u(rng);
      std::vector<float> want(static_cast<size_t>(n_tokens * rows));
      ref::MatMul(w.view, x.data(), n_tokens, want.data());
      std::vector<float> first;
      for (ThreadPool& pool : pools) {
        std::vector<float> got(want.size() + 2, 12345.0f);
        ops::MatMul(ops::Context{&pool}, w.view, x.data(), n_tokens, got.data() + 1);
        EXPECT_EQ(got.front(), 12345.0f);
        EXPECT_EQ(got.back(), 12345.0f);
        std::vector<float> y(got.begin() + 1, got.end() - 1);
        for (size_t i = 0; i < y.size(); ++i) {
          EXPECT_NEAR(y[i], want[i], 1e-5f * static_cast<float>(cols)) << DTypeName(dtype) << " " << rows << "x" << cols;
        }
        if (first.empty()) {
          first = y;
        } else {
          EXPECT_EQ(y, first) << "result depends on the thread count";
        }
      }
    }
  }
}

// A token's row of y is bit-identical whatever tokens share the call: the kernels take several
// tokens per pass over a weight row, each with the one-token operations (batch invariance).
TEST(CpuMatMul, ATokensResultDoesNotDependOnTheTokensBesideIt) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  ThreadPool pool(2);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t cols : {1, 15, 16, 33, 100, 1152}) {
      const int64_t rows = 19, n_tokens = 11;
      Weights w = RandomWeights(dtype, rows, cols, rng);
      std::vector<float> x(static_cast<size_t>(n_tokens * cols));
      for (float& v : x) v = u(rng);
      std::vector<float> all(static_cast<size_t>(n_tokens * rows));
      ops::MatMul(ops::Context{&pool}, w.view, x.data(), n_tokens, all.data());
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> one(static_cast<size_t>(rows));
        ops::MatMul(ops::Context{&pool}, w.view, x.data() + t * cols, 1, one.data());
        EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * rows, rows * sizeof(float)))
            << DTypeName(dtype) << " cols " << cols << " token " << t;
      }
    }
  }
}

TEST(CpuMatMul, DotMatchesReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 15, 16, 33, 255, 256, 1023}) {
    std::vector<float> a(n), b(n);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(ops::Dot(a.data(), b.data(), n), want, 1e-5 * n) << n;
  }
}

}  // namespace
}  // namespace gemma_local
