// SIMD matrix-vector products for plain float weights (f32, f16, bf16) with f32 accumulation,
// compiled for every x86/ARM target Highway supports and chosen at run time.
//   y[t][o] = sum_i w[o][i] * x[t][i]
// Parallel over output rows; each row's sum is computed by the same code whatever the split, so
// results do not depend on the thread count.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/matmul.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif
#include <cstring>
#include <vector>
#include <type_traits>

#include "backends/cpu/quant_matmul.h"
#include "core/half.h"
#include "ops/ops.h"
#include "ops/reference/quant_ref.h"

// DotRow (per target; after hwy/highway.h, before this file's own per-target code).
#include "backends/cpu/dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace gemma_local::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <typename T>
void RowsT(const uint8_t* w, int64_t rows, int64_t cols, const float* x, int64_t n_tokens, int64_t r0, int64_t r1,
           float* y) {
  const T* wt = reinterpret_cast<const T*>(w);
  for (int64_t o = r0; o < r1; ++o) {
    const T* row = wt + o * cols;
    // Four tokens per pass over the row (each token's sum as DotRow computes it alone).
    int64_t t = 0;
    for (; t + 4 <= n_tokens; t += 4) DotRows<4>(row, x + t * cols, cols, cols, y + t * rows + o, rows);
    switch (n_tokens - t) {
      case 3: DotRows<3>(row, x + t * cols, cols, cols, y + t * rows + o, rows); break;
      case 2: DotRows<2>(row, x + t * cols, cols, cols, y + t * rows + o, rows); break;
      case 1: y[t * rows + o] = DotRow(row, x + t * cols, cols); break;
      default: break;
    }
  }
}

void RowsF32(const uint8_t* w, int64_t rows, int64_t cols, const float* x, int64_t n_tokens, int64_t r0, int64_t r1,
             float* y) {
  RowsT<float>(w, rows, cols, x, n_tokens, r0, r1, y);
}
void RowsF16(const uint8_t* w, int64_t rows, int64_t cols, const float* x, int64_t n_tokens, int64_t r0, int64_t r1,
             float* y) {
  RowsT<hwy::float16_t>(w, rows, cols, x, n_tokens, r0, r1, y);
}
void RowsBF16(const uint8_t* w, int64_t rows, int64_t cols, const float* x, int64_t n_tokens, int64_t r0, int64_t r1,
              float* y) {
  RowsT<hwy::bfloat16_t>(w, rows, cols, x, n_tokens, r0, r1, y);
}
float DotF32(const float* a, const float* b, int64_t n) { return DotRow(a, b, n); }

}  // namespace HWY_NAMESPACE
}  // namespace gemma_local::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gemma_local::cpu {
HWY_EXPORT(RowsF32);
HWY_EXPORT(RowsF16);
HWY_EXPORT(RowsBF16);
HWY_EXPORT(DotF32);
}  // namespace gemma_local::cpu

namespace gemma_local::ops {
namespace {

// Block-quantized weights: the integer kernels over 8-bit activations where one exists, else a
// row is dequantized (scalar reference) and dotted in f32 with every token.
void QuantizedMatMul(const Context& ctx, const ref::MatrixView& w, const float* x, int64_t n_tokens,
                     float* y) {
  const int64_t block = cpu::ActivationBlock(w.dtype);
  cpu::QuantizedActivations local;
  cpu::QuantizedActivations& a = ctx.scratch != nullptr ? ctx.scratch->activations : local;
  if (w.packed != nullptr) {
    cpu::QuantizeActivations(x, n_tokens, w.cols, cpu::ActivationBlock(w.dtype), &a, ctx.pool);
    const int64_t groups = w.rows / 8;
    const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, w.cols * n_tokens));
    ctx.pool->ParallelFor(groups, grain, [&](int64_t g0, int64_t g1) {
      cpu::PackedRows8(w.dtype, w.packed, w.rows, w.cols, a, g0, g1, y);
    });
    return;
  }
  if (block != 0 && w.cols % block == 0) {
    cpu::QuantizeActivations(x, n_tokens, w.cols, block, &a, ctx.pool);
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, w.cols * n_tokens));
    ctx.pool->ParallelFor(w.rows, grain, [&](int64_t r0, int64_t r1) {
      cpu::QuantRows(w.dtype, w.data, w.rows, w.cols, a, r0, r1, y);
    });
    return;
  }
  if (!ref::CanDequantize(w.dtype)) {
    ref::MatMul(w, x, n_tokens, y);  // NaN rows: load-time checks keep such types out
    return;
  }
  const auto dot = HWY_DYNAMIC_DISPATCH(cpu::DotF32);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, w.cols * n_tokens));
  ctx.pool->ParallelFor(w.rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t o = r0; o < r1; ++o) {
      ref::DequantizeRow(w, o, row.data());
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + o] = dot(row.data(), x + t * w.cols, w.cols);
    }
  });
}

}  // namespace

void RepackWeights(ref::MatrixView* w, std::vector<std::vector<uint8_t>>* storage,
                   bool source_is_file_mapping) {
  std::vector<uint8_t> packed;
  if (w->packed != nullptr || !cpu::PackRows8(w->dtype, w->data, w->rows, w->cols, &packed)) return;
  storage->push_back(std::move(packed));
  w->packed = storage->back().data();
#if defined(__linux__)
  if (source_is_file_mapping) {
    // Only whole pages inside this tensor; MADV_DONTNEED on a private read-only file mapping
    // drops the pages, later reads fault them in from the file again.
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto start = reinterpret_cast<uintptr_t>(w->data);
    const uintptr_t begin = (start + page - 1) / page * page;
    const uintptr_t end = (start + *DTypeByteSize(w->dtype, static_cast<uint64_t>(w->rows * w->cols))) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
#endif
}

void MatMul(const Context& ctx, const ref::MatrixView& w, const float* x, int64_t n_tokens, float* y) {
  using RowsFn = void (*)(const uint8_t*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, float*);
  RowsFn fn = nullptr;
  switch (w.dtype) {
    case DType::kF32: fn = HWY_DYNAMIC_DISPATCH(cpu::RowsF32); break;
    case DType::kF16: fn = HWY_DYNAMIC_DISPATCH(cpu::RowsF16); break;
    case DType::kBF16: fn = HWY_DYNAMIC_DISPATCH(cpu::RowsBF16); break;
    default:
      QuantizedMatMul(ctx, w, x, n_tokens, y);
      return;
  }
  // Enough rows per chunk that a chunk is worth a thread hop (~32K multiply-adds).
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, w.cols * n_tokens));
  ctx.pool->ParallelFor(w.rows, grain, [&](int64_t r0, int64_t r1) {
    fn(w.data, w.rows, w.cols, x, n_tokens, r0, r1, y);
  });
}

float Dot(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(cpu::DotF32)(a, b, n); }

}  // namespace gemma_local::ops
#endif  // HWY_ONCE
