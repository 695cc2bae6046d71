// Scalar reference implementations of the ops a Gemma forward pass needs. They are the oracle
// every SIMD/CUDA kernel is tested against: plain loops, f32 arithmetic with f64 accumulation
// where a sum is long, no cleverness. Each function states the formula it implements.
//
// Layout conventions: activations are row-major [n_rows, n_cols] f32. A weight matrix is stored
// as GGUF/ggml does it: `rows` output rows, each `cols` contiguous input elements (an HF
// [out, in] matrix, i.e. ne = {cols, rows}).
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace gemma_local::ref {

// A read-only view of a 2-D weight matrix in any dtype ref::CanDequantize accepts (f32, f16, bf16
// and the GGML block formats of quant_ref.h). Rows are contiguous and start at
// r * DTypeByteSize(dtype, cols) bytes, so for a block format cols is a whole number of blocks.
struct MatrixView {
  DType dtype = DType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features (contiguous)
  // Optional backend-specific repacked copy of the same weights (ops::RepackWeights); the
  // reference ignores it.
  const uint8_t* packed = nullptr;
};

// Row `r` of `w` as f32 into out[0..cols), bit-identical to ref::DequantizeBlocks of that row.
// A dtype that cannot be dequantized, or cols not a whole number of blocks, yields NaNs (callers
// validate dtypes and shapes at load time).
void DequantizeRow(const MatrixView& w, int64_t r, float* out);

// y[t][o] = sum_i w[o][i] * x[t][i]   for t < n_tokens, o < w.rows   (x: [n_tokens, w.cols])
void MatMul(const MatrixView& w, const float* x, int64_t n_tokens, float* y);

// y = x * (mean(x^2) + eps)^(-1/2) * (weight + offset), over n elements (offset 1 for Gemma 3
// HF weights stored zero-centred, 0 otherwise). weight may be null (scale-free norm).
void RmsNorm(const float* x, const float* weight, float offset, int64_t n, float eps, float* y);

// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
float GeluTanh(float x);

// NEOX/rotate-half RoPE on one head vector of length d at position p:
//   theta_i = p * inv_freq[i],  (x_i, x_{i+d/2}) -> (x_i cos - x_{i+d/2} sin, x_{i+d/2} cos + x_i sin)
// for i < d/2. inv_freq has d/2 entries (0 leaves a pair unrotated).
void RopeNeox(float* x, int64_t d, double p, const float* inv_freq);

// In-place softmax over n values (max-subtracted, f64 sum).
void Softmax(float* x, int64_t n);

// Attention of `group` query heads that share one KV head, at one query position:
//   s[h][j] = scale * dot(q_h, k_j), then cap * tanh(s / cap) when softcap > 0,
//   out_h = sum_j softmax(s[h])_j * v_j        for h < group, j < n (n >= 1),
// where q_h = q + h * d, k_j = k_rows[j] + offset, v_j = v_rows[j] + offset (d floats each) and
// out_h = out + h * d. Sums in f64.
void AttendGroup(const float* q, int64_t group, int64_t d, const float* const* k_rows,
                 const float* const* v_rows, int64_t offset, int64_t n, float scale, float softcap,
                 float* out);

// AttendGroup over K/V rows stored as `type` (f32, f16 or q8_0, in their GGML byte layouts, as
// the KV cache keeps them): the d elements of each row from element `offset` on are first
// dequantized exactly (DequantizeBlocks), then AttendGroup runs on those f32 values. For a block
// type, offset and d are whole numbers of blocks.
void AttendGroupStored(const float* q, int64_t group, int64_t d, DType type,
                       const uint8_t* const* k_rows, const uint8_t* const* v_rows, int64_t offset,
                       int64_t n, float scale, float softcap, float* out);

// log-softmax of n values into out.
void LogSoftmax(const float* x, int64_t n, float* out);

}  // namespace gemma_local::ref
