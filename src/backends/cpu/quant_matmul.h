// Matrix products with block-quantized weights (GGML formats) on the CPU.
//
// Integer path (q4_0, q5_0, q8_0, q4_K, q5_K, q6_K): the activations are quantized to 8 bits
// first (as llama.cpp does): per 32 elements for the 32-element block types, per 256 elements
// (with per-16 sums) for the K-quants, so whole super-blocks accumulate in integers. The weights
// are read straight from the (memory-mapped) file blocks; a weight block is unpacked once and
// multiplied with up to kTokenTile tokens, which is what makes prefill compute-bound rather than
// unpack-bound. Kernels exist for AVX2 and for AVX-512 VNNI (256-bit vectors); which one runs is
// decided once from CPUID. Other types and other CPUs use the portable path: a weight row is
// dequantized (scalar reference) and dotted in f32.
//
// Every kernel is tested against the scalar reference applied to the same 8-bit activations
// (tests/backends/quant_matmul_test.cc), so the only difference to ref::MatMul is activation
// rounding, which is bounded.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace gemma_local::cpu {

inline constexpr int kTokenTile = 4;

// A plain view of quantized activations (what the ISA-specific kernel files receive: they see no
// standard-library types, so no inline library code is compiled with wider instruction sets).
struct ActivationView {
  const int8_t* q;
  const float* d;
  const float* dsum;
  const int16_t* bsums;
  int64_t n_tokens;
  int64_t cols;
};

// x[t][i] ~= d[t][b] * q[t][i] for the block b holding i. Layout: q is [n_tokens][cols]; d is
// [n_tokens][cols / block]; for 32-blocks dsum holds d * sum(q) per block; for 256-blocks bsums
// holds sum(q) per 16 elements.
struct QuantizedActivations {
  int64_t n_tokens = 0;
  int64_t cols = 0;
  int64_t block = 0;            // 32 or 256
  std::vector<int8_t> q;        // n_tokens * cols
  std::vector<float> d;         // n_tokens * cols / block
  std::vector<float> dsum;      // block 32: d * sum(q) per block
  std::vector<int16_t> bsums;   // block 256: sum(q) per 16 elements
  ActivationView view() const {
    return {q.data(), d.data(), dsum.data(), bsums.data(), n_tokens, cols};
  }
};

// q4_K / q5_K: the 8 six-bit sub-block scales and mins packed into 12 bytes at `s`.
void UnpackScalesMins(const uint8_t* s, uint8_t* sc, uint8_t* m);

// The activation block size the integer kernel of `weight` needs, or 0 when it has none.
int64_t ActivationBlock(DType weight);

// Quantizes x [n_tokens][cols] (cols a multiple of block) with round-to-nearest, scale
// amax / 127 per block (all-zero blocks get scale 0).
// Tokens are split over `pool` when one is given (same result either way).
void QuantizeActivations(const float* x, int64_t n_tokens, int64_t cols, int64_t block,
                         QuantizedActivations* out, ThreadPool* pool = nullptr);

// One row of QuantizeActivations (SIMD): n_blocks blocks of `block` values (a multiple of 16)
// into q and d, plus the sum of each 16 quantized values into sums16.
void QuantizeActivationRow(const float* x, int64_t n_blocks, int64_t block, int8_t* q, float* d,
                           int32_t* sums16);

// The name of the instruction set the integer kernels use on this CPU ("avx512vnni", "avx2" or
// "portable").
const char* QuantKernelIsa();

// y[t * rows + o] for o in [r0, r1), all tokens: rows of `w` (dtype with ActivationBlock != 0)
// times the quantized activations. `isa_override` forces a kernel set for tests ("avx2",
// "avx512vnni", "portable"); null = the best this CPU runs.
void QuantRows(DType dtype, const uint8_t* w, int64_t rows, int64_t cols,
               const QuantizedActivations& a, int64_t r0, int64_t r1, float* y,
               const char* isa_override = nullptr);

// The portable integer reference of QuantRows (scalar loops over the same 8-bit activations); the
// SIMD kernels must match it up to f32 summation order.
void QuantRowsPortable(DType dtype, const uint8_t* w, int64_t rows, int64_t cols,
                       const QuantizedActivations& a, int64_t r0, int64_t r1, float* y);

// Kernel entry points per ISA (defined only on x86-64 builds; the dispatcher checks CPUID).
// Returns false when the ISA has no kernel for `dtype`.
using QuantRowsFn = bool (*)(DType, const uint8_t*, int64_t, int64_t, const ActivationView&,
                             int64_t, int64_t, float*);
QuantRowsFn QuantRowsAvx2Fn();
QuantRowsFn QuantRowsVnniFn();

}  // namespace gemma_local::cpu

namespace gemma_local::cpu {

// Eight-row interleaved copies of q4_0 / q5_0 / q8_0 weights for the AVX-512 VNNI kernels (repacked once
// at load). Per group of 8 rows and per 32-element block: the 8 rows' f16 scales (16 bytes), then
// chunks of 32 bytes whose 4-byte lane r holds row r's quant bytes 4k..4k+3 (q4_0: 4 chunks, low
// nibbles = elements 4k.., high nibbles = elements 16+4k..; q5_0: the same 4 chunks plus one of
// high bits, lane byte i holding bit 2k / 2k+1 for elements 4k+i / 16+4k+i; q8_0: 8 chunks, stored
// biased as w + 128). One vpdpbusd then advances 8 rows by 4 elements with one broadcast
// activation word. q4_K and q6_K get the same treatment per super-block (layouts in
// quant_matmul.cc: PackQ4K, PackQ6K); their sub-block scales become per-row vectors.
//
// True when `dtype`/`rows` allow it and this CPU runs the packed kernels; fills `out`.
bool PackRows8(DType dtype, const uint8_t* w, int64_t rows, int64_t cols, std::vector<uint8_t>* out);

// y[t * rows + o] for row groups [g0, g1) (rows 8*g0 .. 8*g1) from PackRows8 data.
void PackedRows8(DType dtype, const uint8_t* packed, int64_t rows, int64_t cols,
                 const QuantizedActivations& a, int64_t g0, int64_t g1, float* y);

// VNNI kernel entry (x86-64 builds only).
using PackedRowsFn = void (*)(DType, const uint8_t*, int64_t, int64_t, const ActivationView&,
                              int64_t, int64_t, float*);
PackedRowsFn PackedRowsVnniFn();

}  // namespace gemma_local::cpu

namespace gemma_local::ops {

// ops::MatMulScratch on the CPU: the quantized activations of the last call, whose buffers keep
// their capacity.
struct MatMulScratch {
  cpu::QuantizedActivations activations;
};

}  // namespace gemma_local::ops
