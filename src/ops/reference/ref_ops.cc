#include "ops/reference/ref_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "ops/reference/quant_ref.h"

namespace gemma_local::ref {

void DequantizeRow(const MatrixView& w, int64_t r, float* out) {
  const Result<uint64_t> row_bytes = DTypeByteSize(w.dtype, static_cast<uint64_t>(w.cols));
  if (!row_bytes.ok() || !CanDequantize(w.dtype)) {
    for (int64_t i = 0; i < w.cols; ++i) out[i] = NAN;  // callers check dtypes at load time
    return;
  }
  DequantizeBlocks(w.dtype, w.data + static_cast<uint64_t>(r) * *row_bytes, w.cols, out);
}

void MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t o = 0; o < w.rows; ++o) {
    DequantizeRow(w, o, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * w.cols;
      double acc = 0.0;
      for (int64_t i = 0; i < w.cols; ++i) acc += static_cast<double>(row[i]) * xt[i];
      y[t * w.rows + o] = static_cast<float>(acc);
    }
  }
}

void RmsNorm(const float* x, const float* weight, float offset, int64_t n, float eps, float* y) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) {
    const float g = weight != nullptr ? weight[i] + offset : 1.0f;
    y[i] = x[i] * scale * g;
  }
}

float GeluTanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

void RopeNeox(float* x, int64_t d, double p, const float* inv_freq) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = p * inv_freq[i];
    const float c = static_cast<float>(std::cos(theta));
    const float s = static_cast<float>(std::sin(theta));
    const float a = x[i];
    const float b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

void Softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void LogSoftmax(const float* x, int64_t n, float* out) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] - lse);
}

void AttendGroup(const float* q, int64_t group, int64_t d, const float* const* k_rows,
                 const float* const* v_rows, int64_t offset, int64_t n, float scale, float softcap,
                 float* out) {
  std::vector<double> p(static_cast<size_t>(n));
  for (int64_t h = 0; h < group; ++h) {
    const float* qh = q + h * d;
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(qh[i]) * k_rows[j][offset + i];
      s *= scale;
      if (softcap > 0.0f) s = softcap * std::tanh(s / softcap);
      p[static_cast<size_t>(j)] = s;
      mx = std::max(mx, s);
    }
    double sum = 0.0;
    for (double& v : p) sum += (v = std::exp(v - mx));
    for (int64_t i = 0; i < d; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < n; ++j) acc += p[static_cast<size_t>(j)] * v_rows[j][offset + i];
      out[h * d + i] = static_cast<float>(acc / sum);
    }
  }
}

void AttendGroupStored(const float* q, int64_t group, int64_t d, DType type,
                       const uint8_t* const* k_rows, const uint8_t* const* v_rows, int64_t offset,
                       int64_t n, float scale, float softcap, float* out) {
  const DTypeTraits& tr = Traits(type);
  const int64_t skip = offset / tr.block_elems * tr.block_bytes;  // bytes before the head's slice
  std::vector<float> k(static_cast<size_t>(n * d)), v(k.size());
  std::vector<const float*> kp, vp;
  for (int64_t j = 0; j < n; ++j) {
    DequantizeBlocks(type, k_rows[j] + skip, d, &k[static_cast<size_t>(j * d)]);
    DequantizeBlocks(type, v_rows[j] + skip, d, &v[static_cast<size_t>(j * d)]);
    kp.push_back(&k[static_cast<size_t>(j * d)]);
    vp.push_back(&v[static_cast<size_t>(j * d)]);
  }
  AttendGroup(q, group, d, kp.data(), vp.data(), 0, n, scale, softcap, out);
}

}  // namespace gemma_local::ref
