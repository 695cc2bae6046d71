// AVX2 + FMA + F16C build of the x86 quantized kernels (compiled with those flags only; the
// dispatcher in quant_matmul.cc calls it only on CPUs that have them).
#include "backends/cpu/quant_matmul.h"

#if defined(__x86_64__)
#define GL_QK_NS avx2
#define GL_QK_VNNI 0
#include "backends/cpu/quant_kernels_x86.inc"

namespace gemma_local::cpu {
QuantRowsFn QuantRowsAvx2Fn() { return &avx2::Rows; }
}  // namespace gemma_local::cpu
#endif
