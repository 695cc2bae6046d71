// AVX-512 VNNI (256-bit vectors, VL) build of the x86 quantized kernels: the unscaled u8 x s8
// dots use vpdpbusd. Compiled with those flags only; dispatched only on CPUs that have them.
#include "backends/cpu/quant_matmul.h"

#if defined(__x86_64__)
#define GL_QK_NS vnni
#define GL_QK_VNNI 1
#include "backends/cpu/quant_kernels_x86.inc"

namespace gemma_local::cpu {
QuantRowsFn QuantRowsVnniFn() { return &vnni::Rows; }
}  // namespace gemma_local::cpu
#endif
