// The scalar reference ops against hand-computed values (they are the oracle for every kernel,
// so they are checked against first principles, not against each other).
#include "ops/reference/ref_ops.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/half.h"

namespace gemma_local {
namespace {

TEST(RefOps, MatMulAllDTypesOddShapes) {
  const int64_t rows = 5, cols = 7, n_tokens = 3;
  std::vector<float> w(rows * cols), x(n_tokens * cols);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 37 % 11)) * 0.25f - 1.0f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 13 % 7)) * 0.5f - 1.5f;
  std::vector<uint16_t> w16(w.size()), wb16(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    w16[i] = F32ToF16(w[i]);   // these values are exact in f16 and bf16
    wb16[i] = F32ToBf16(w[i]);
  }
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const void* data = dt == DType::kF32 ? static_cast<const void*>(w.data())
                       : dt == DType::kF16 ? static_cast<const void*>(w16.data()) : wb16.data();
    ref::MatrixView view{dt, static_cast<const uint8_t*>(data), rows, cols};
    std::vector<float> y(n_tokens * rows);
    ref::MatMul(view, x.data(), n_tokens, y.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t o = 0; o < rows; ++o) {
        double want = 0;
        for (int64_t i = 0; i < cols; ++i) want += w[o * cols + i] * x[t * cols + i];
        EXPECT_FLOAT_EQ(y[t * rows + o], static_cast<float>(want)) << DTypeName(dt) << " t" << t << " o" << o;
      }
    }
  }
}

TEST(RefOps, RmsNormWithOffsetAndScaleFree) {
  const float x[3] = {1.0f, -2.0f, 2.0f};  // mean square 3
  const float w[3] = {0.5f, 0.0f, -1.0f};
  float y[3];
  ref::RmsNorm(x, w, 1.0f, 3, 0.0f, y);
  const float r = 1.0f / std::sqrt(3.0f);
  EXPECT_FLOAT_EQ(y[0], 1.0f * r * 1.5f);
  EXPECT_FLOAT_EQ(y[1], -2.0f * r * 1.0f);
  EXPECT_FLOAT_EQ(y[2], 2.0f * r * 0.0f);
  ref::RmsNorm(x, nullptr, 0.0f, 3, 0.0f, y);
  EXPECT_FLOAT_EQ(y[1], -2.0f * r);
}

TEST(RefOps, GeluTanh) {
  EXPECT_FLOAT_EQ(ref::GeluTanh(0.0f), 0.0f);
  EXPECT_NEAR(ref::GeluTanh(1.0f), 0.841192f, 1e-5);
  EXPECT_NEAR(ref::GeluTanh(-3.0f), -0.003637f, 1e-5);
}

TEST(RefOps, RopeNeoxRotatesPairsHalfApart) {
  float v[4] = {1.0f, 2.0f, 3.0f, 4.0f};  // pairs (0,2) and (1,3)
  const float inv_freq[2] = {1.0f, 0.0f};  // second pair unrotated
  ref::RopeNeox(v, 4, 0.5, inv_freq);
  EXPECT_FLOAT_EQ(v[0], 1.0f * std::cos(0.5f) - 3.0f * std::sin(0.5f));
  EXPECT_FLOAT_EQ(v[2], 3.0f * std::cos(0.5f) + 1.0f * std::sin(0.5f));
  EXPECT_FLOAT_EQ(v[1], 2.0f);
  EXPECT_FLOAT_EQ(v[3], 4.0f);
}

TEST(RefOps, SoftmaxAndLogSoftmax) {
  float x[3] = {1.0f, 2.0f, 3.0f};
  float lp[3];
  ref::LogSoftmax(x, 3, lp);
  ref::Softmax(x, 3);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(lp[0], 1.0 - std::log(z), 1e-6);
  float big[2] = {1000.0f, 1000.0f};  // no overflow
  ref::Softmax(big, 2);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
}

}  // namespace
}  // namespace gemma_local
