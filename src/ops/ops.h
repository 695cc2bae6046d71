// The backend-neutral op API the model code calls. The CPU backend (src/backends/cpu) implements
// it with SIMD kernels chosen at run time; every op has a scalar reference in ops/reference that
// tests compare it with.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "ops/kv_view.h"
#include "ops/reference/ref_ops.h"

namespace gemma_local::ops {

// What a forward call counts (the engine's stats read them; tests prove the LM head runs once).
struct ForwardCounters {
  int64_t lm_head_passes = 0;  // LM head matrix products
  int64_t logit_rows = 0;      // rows of logits they produced
};

// Buffers MatMul reuses from call to call (the 8-bit activations of the integer kernels), so a
// decode step allocates nothing. Defined by the backend; calls that share one must not overlap.
struct MatMulScratch;

// Execution context handed to every forward call by its caller (no global state; the model keeps
// none between calls).
struct Context {
  ThreadPool* pool = nullptr;                // required
  ForwardCounters* counters = nullptr;       // optional
  MatMulScratch* scratch = nullptr;          // optional: without it, MatMul allocates per call
};

// y[t][o] = sum_i w[o][i] * x[t][i]  (see ref::MatMul). f32 accumulation; results are identical
// for any thread count on a given machine and SIMD target.
void MatMul(const Context& ctx, const ref::MatrixView& w, const float* x, int64_t n_tokens, float* y);

// gate[i] = GeluTanh(gate[i]) * up[i] for i < n (see ref::GeluTanh), vectorized and parallel.
// gate[i]'s result depends only on gate[i] and up[i]: not on n, i or the thread count (the vector
// tanh serves every element, a partial last vector included).
void GeluMul(const Context& ctx, float* gate, const float* up, int64_t n);

// Gives `w` a backend-specific copy of its weights when the backend computes faster from one
// (CPU with AVX-512 VNNI: q4_0 / q5_0 / q8_0 / q4_K / q6_K interleaved 8 rows at a time). The copy is appended to
// `storage`, which must outlive every use of `w`; otherwise `w` is left as it is. Results of
// MatMul are the same either way up to f32 summation order. `source_is_file_mapping`: w.data lies
// in a read-only file mapping, whose pages are then handed back to the OS (re-read from the file
// if a row lookup touches them), so the weights are not resident twice.
void RepackWeights(ref::MatrixView* w, std::vector<std::vector<uint8_t>>* storage,
                   bool source_is_file_mapping);

// ref::AttendGroupStored (type KvDType(type)) with SIMD dots, exp and accumulation (f32 sums),
// reading the rows as stored: f16 promoted and q8_0 dequantized (scale * int8, per 32-block)
// inside the loops. `offset` is the head's first element in a row; for q8_0, offset and d are
// multiples of 32. A head's result depends on its query, the rows, d, n, scale and softcap only:
// not on `group` (the heads attended with it). `scratch` is resized to group * n floats and may
// be reused across calls (one per thread).
void AttendGroup(const float* q, int64_t group, int64_t d, KvType type,
                 const uint8_t* const* k_rows, const uint8_t* const* v_rows, int64_t offset,
                 int64_t n, float scale, float softcap, std::vector<float>* scratch, float* out);

// Dot product of a weight row with an f32 vector, as MatMul computes it (for attention-style
// loops that need single dots).
float Dot(const float* a, const float* b, int64_t n);

}  // namespace gemma_local::ops
