// Scalar reference for the GGML block-quantized weight formats, written from the format
// descriptions (block layouts as llama.cpp v0.4.0 stores them in GGUF files). These functions are
// the oracle the SIMD kernels and the quantizer are tested against: plain loops, no cleverness.
//
// Supported for dequantization: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K,
// q5_K, q6_K, q8_K. Supported for quantization: q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K,
// q5_K, q6_K, q8_K (plus the plain types, rounding to nearest even).
//
// Exactness: dequantization gives bit-identical floats to llama.cpp's scalar dequantize_row_*
// (same f32 operations in the same order; f16 fields widened with F16ToF32). Quantization to
// q4_0, q4_1, q5_0, q5_1, q8_0 and q8_K writes the same bytes as llama.cpp's quantize_row_*_ref.
// The K-quant quantizers (q2_K..q6_K) are our own least-squares searches (see
// quant_kquants_ref.cc): their blocks decode with the standard formulas but their bytes differ
// from llama.cpp's; their error is lower on Gaussian data.
//
// `n` is always a whole number of blocks of the type (Traits(t).block_elems); callers check.
// Callers also check CanDequantize/CanQuantize: an unsupported type dequantizes to NaNs and
// quantizes to nothing (dst untouched). Inputs to QuantizeBlocks are finite, with magnitudes
// that keep the block scales within f16 range.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace gemma_local::ref {

constexpr int64_t kQK = 32;    // elements per block of q4_0/q4_1/q5_0/q5_1/q8_0
constexpr int64_t kQK_K = 256;  // elements per super-block of the K-quants

bool CanDequantize(DType t);
bool CanQuantize(DType t);

// out[0..n) = the values of the n elements stored at src.
void DequantizeBlocks(DType t, const uint8_t* src, int64_t n, float* out);

// dst = src[0..n) in type t (Traits(t).block_bytes per block). Deterministic; for the K-quants the
// per-sub-block scales/mins are chosen by a small search that minimizes squared error, so a value
// round-trips with the error bound of its format.
void QuantizeBlocks(DType t, const float* src, int64_t n, uint8_t* dst);

}  // namespace gemma_local::ref
