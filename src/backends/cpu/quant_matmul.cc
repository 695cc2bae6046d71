// Activation quantization, the portable integer kernels and the per-CPU dispatch for quantized
// matrix products (see quant_matmul.h).
#include "backends/cpu/quant_matmul.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string_view>

#include "core/half.h"

namespace gemma_local::cpu {
namespace {

float F16At(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// Unsigned quant of element i of a 32-element block (q4_0 / q5_0 / q8_0 as stored).
int32_t Q4_0At(const uint8_t* blk, int i) {
  const uint8_t b = blk[2 + (i & 15)];
  return i < 16 ? (b & 0x0F) : (b >> 4);
}
int32_t Q5_0At(const uint8_t* blk, int i) {
  uint32_t qh;
  std::memcpy(&qh, blk + 2, 4);
  const uint8_t b = blk[6 + (i & 15)];
  const int32_t lo = i < 16 ? (b & 0x0F) : (b >> 4);
  return lo | static_cast<int32_t>(((qh >> i) & 1u) << 4);
}

// One row times one token, 32-element block types: sum_b dw * (dx * sum(w*x) - offset * dsum).
float RowDot32(DType dtype, const uint8_t* row, int64_t nb, const int8_t* xq, const float* xd,
               const float* xs) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t dot = 0;
    float dw = 0.0f;
    int offset = 0;
    if (dtype == DType::kQ4_0) {
      const uint8_t* blk = row + b * 18;
      dw = F16At(blk);
      offset = 8;
      for (int i = 0; i < 32; ++i) dot += Q4_0At(blk, i) * xq[32 * b + i];
    } else if (dtype == DType::kQ5_0) {
      const uint8_t* blk = row + b * 22;
      dw = F16At(blk);
      offset = 16;
      for (int i = 0; i < 32; ++i) dot += Q5_0At(blk, i) * xq[32 * b + i];
    } else {  // q8_0
      const uint8_t* blk = row + b * 34;
      dw = F16At(blk);
      for (int i = 0; i < 32; ++i) dot += static_cast<int8_t>(blk[2 + i]) * xq[32 * b + i];
    }
    acc += dw * (xd[b] * static_cast<float>(dot) - static_cast<float>(offset) * xs[b]);
  }
  return acc;
}

// One row times one token, K-quants (256-element super-blocks, per-256 activation scale).
float RowDotK(DType dtype, const uint8_t* row, int64_t nsb, const int8_t* xq, const float* xd,
              const int16_t* bs) {
  float acc = 0.0f;
  for (int64_t s = 0; s < nsb; ++s) {
    const int8_t* x = xq + 256 * s;
    const int16_t* b16 = bs + 16 * s;
    if (dtype == DType::kQ4_K || dtype == DType::kQ5_K) {
      const bool five = dtype == DType::kQ5_K;
      const uint8_t* blk = row + s * (five ? 176 : 144);
      uint8_t sc[8], m[8];
      UnpackScalesMins(blk + 4, sc, m);
      const uint8_t* qh = blk + 16;
      const uint8_t* qs = blk + (five ? 48 : 16);
      int32_t isum = 0, msum = 0;
      for (int c = 0; c < 4; ++c) {
        int32_t lo = 0, hi = 0;
        for (int l = 0; l < 32; ++l) {
          int32_t ql = qs[32 * c + l] & 0x0F, qhv = qs[32 * c + l] >> 4;
          if (five) {
            ql |= ((qh[l] >> (2 * c)) & 1) << 4;
            qhv |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
          }
          lo += ql * x[64 * c + l];
          hi += qhv * x[64 * c + 32 + l];
        }
        isum += sc[2 * c] * lo + sc[2 * c + 1] * hi;
      }
      for (int j = 0; j < 8; ++j) msum += m[j] * (b16[2 * j] + b16[2 * j + 1]);
      const float d = F16At(blk) * xd[s], dmin = F16At(blk + 2) * xd[s];
      acc += d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
    } else {  // q6_K
      const uint8_t* blk = row + s * 210;
      const uint8_t* ql = blk;
      const uint8_t* qh = blk + 128;
      const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
      int32_t isum = 0, corr = 0;
      for (int n = 0; n < 2; ++n) {
        for (int g = 0; g < 4; ++g) {
          for (int l = 0; l < 32; ++l) {
            const uint8_t lq = ql[64 * n + (g & 1) * 32 + l];
            const int32_t low = g < 2 ? (lq & 0x0F) : (lq >> 4);
            const int32_t u = low | (((qh[32 * n + l] >> (2 * g)) & 3) << 4);
            isum += sc[8 * n + 2 * g + (l >= 16)] * u * x[128 * n + 32 * g + l];
          }
        }
      }
      for (int k = 0; k < 16; ++k) corr += 32 * sc[k] * b16[k];
      acc += F16At(blk + 208) * xd[s] * static_cast<float>(isum - corr);
    }
  }
  return acc;
}

QuantRowsFn BestKernels(std::string_view* name) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // Every AVX2 CPU also has F16C (which not every compiler's builtin can name).
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw")) {
    *name = "avx512vnni";
    return QuantRowsVnniFn();
  }
  if (avx2) {
    *name = "avx2";
    return QuantRowsAvx2Fn();
  }
#endif
  *name = "portable";
  return nullptr;
}

struct KernelChoice {
  std::string_view name;
  QuantRowsFn fn;
};

// Decided once per process from CPUID; immutable afterwards.
const KernelChoice& Chosen() {
  static const KernelChoice choice = [] {
    KernelChoice c;
    c.fn = BestKernels(&c.name);
    return c;
  }();
  return choice;
}

}  // namespace

void UnpackScalesMins(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = s[j] & 63;
      m[j] = s[j + 4] & 63;
    } else {
      sc[j] = static_cast<uint8_t>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
      m[j] = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
  }
}

int64_t ActivationBlock(DType weight) {
  switch (weight) {
    case DType::kQ4_0:
    case DType::kQ5_0:
    case DType::kQ8_0:
      return 32;
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return 256;
    default:
      return 0;
  }
}

namespace {

void QuantizeActivationTokens(const float* x, int64_t t0, int64_t t1, QuantizedActivations* out) {
  const int64_t cols = out->cols, block = out->block, nb = cols / block;
  // On the stack for rows up to 64k elements (every Gemma width): a decode step allocates nothing.
  constexpr int64_t kStackSums = 4096;
  std::array<int32_t, kStackSums> sums_stack;
  std::vector<int32_t> sums_heap(cols / 16 > kStackSums ? static_cast<size_t>(cols / 16) : 0);
  int32_t* sums16 = cols / 16 > kStackSums ? sums_heap.data() : sums_stack.data();
  for (int64_t t = t0; t < t1; ++t) {
    QuantizeActivationRow(x + t * cols, nb, block, out->q.data() + t * cols, out->d.data() + t * nb,
                          sums16);
    if (block == 32) {
      for (int64_t b = 0; b < nb; ++b) {
        out->dsum[static_cast<size_t>(t * nb + b)] =
            out->d[static_cast<size_t>(t * nb + b)] * static_cast<float>(sums16[2 * b] + sums16[2 * b + 1]);
      }
    } else {
      for (int64_t k = 0; k < cols / 16; ++k) {
        out->bsums[static_cast<size_t>(t * cols / 16 + k)] = static_cast<int16_t>(sums16[k]);
      }
    }
  }
}

}  // namespace

void QuantizeActivations(const float* x, int64_t n_tokens, int64_t cols, int64_t block,
                         QuantizedActivations* out, ThreadPool* pool) {
  const int64_t nb = cols / block;
  out->n_tokens = n_tokens;
  out->cols = cols;
  out->block = block;
  out->q.resize(static_cast<size_t>(n_tokens * cols));
  out->d.resize(static_cast<size_t>(n_tokens * nb));
  out->dsum.resize(block == 32 ? static_cast<size_t>(n_tokens * nb) : 0);
  out->bsums.resize(block == 256 ? static_cast<size_t>(n_tokens * cols / 16) : 0);
  if (pool == nullptr || n_tokens == 1) {
    QuantizeActivationTokens(x, 0, n_tokens, out);
    return;
  }
  pool->ParallelFor(n_tokens, std::max<int64_t>(1, 16384 / cols),
                    [&](int64_t t0, int64_t t1) { QuantizeActivationTokens(x, t0, t1, out); });
}

const char* QuantKernelIsa() { return Chosen().name.data(); }

void QuantRowsPortable(DType dtype, const uint8_t* w, int64_t rows, int64_t cols,
                       const QuantizedActivations& a, int64_t r0, int64_t r1, float* y) {
  const int64_t block = ActivationBlock(dtype);
  const int64_t nb = cols / block;
  const uint64_t row_bytes = static_cast<uint64_t>(nb) * Traits(dtype).block_bytes;
  for (int64_t o = r0; o < r1; ++o) {
    const uint8_t* row = w + static_cast<uint64_t>(o) * row_bytes;
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      const int8_t* xq = a.q.data() + t * cols;
      y[t * rows + o] =
          block == 32 ? RowDot32(dtype, row, nb, xq, a.d.data() + t * nb, a.dsum.data() + t * nb)
                      : RowDotK(dtype, row, nb, xq, a.d.data() + t * nb,
                                a.bsums.data() + t * cols / 16);
    }
  }
}

void QuantRows(DType dtype, const uint8_t* w, int64_t rows, int64_t cols,
               const QuantizedActivations& a, int64_t r0, int64_t r1, float* y,
               const char* isa_override) {
  QuantRowsFn fn = Chosen().fn;
  if (isa_override != nullptr) {
    const std::string_view want(isa_override);
    fn = nullptr;
#if defined(__x86_64__)
    if (want == "avx2") fn = QuantRowsAvx2Fn();
    if (want == "avx512vnni") fn = QuantRowsVnniFn();
#endif
  }
  if (fn != nullptr && fn(dtype, w, rows, cols, a.view(), r0, r1, y)) return;
  QuantRowsPortable(dtype, w, rows, cols, a, r0, r1, y);
}

#if !defined(__x86_64__)
QuantRowsFn QuantRowsAvx2Fn() { return nullptr; }
QuantRowsFn QuantRowsVnniFn() { return nullptr; }
#endif

}  // namespace gemma_local::cpu

namespace gemma_local::cpu {

namespace {

// q4_K, 8 rows per group, per super-block: d[8], dmin[8] (f16), scales[8 sub-blocks][8 rows],
// mins[8][8] (u8), then 32 chunks (c = 0..3, g = 0..7) whose lane r holds row r's bytes
// qs[32c + 4g .. +3]: low nibbles = elements 64c + 4g.., high nibbles = elements 64c + 32 + 4g...
void PackQ4K(const uint8_t* w, int64_t rows, int64_t cols, std::vector<uint8_t>* out) {
  const int64_t nsb = cols / 256;
  constexpr int64_t kOut = 32 + 128 + 1024;
  out->assign(static_cast<size_t>(rows / 8 * nsb * kOut), 0);
  for (int64_t g8 = 0; g8 < rows / 8; ++g8) {
    for (int64_t s = 0; s < nsb; ++s) {
      uint8_t* dst = out->data() + (g8 * nsb + s) * kOut;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* src = w + ((8 * g8 + r) * nsb + s) * 144;
        std::memcpy(dst + 2 * r, src, 2);
        std::memcpy(dst + 16 + 2 * r, src + 2, 2);
        uint8_t sc[8], m[8];
        UnpackScalesMins(src + 4, sc, m);
        for (int j = 0; j < 8; ++j) {
          dst[32 + 8 * j + r] = sc[j];
          dst[96 + 8 * j + r] = m[j];
        }
        for (int c = 0; c < 4; ++c) {
          for (int g = 0; g < 8; ++g) std::memcpy(dst + 160 + 32 * (8 * c + g) + 4 * r, src + 16 + 32 * c + 4 * g, 4);
        }
      }
    }
  }
}

// q6_K, 8 rows per group, per super-block (1680 bytes = 8 x 210): d[8] (f16), scales[16][8]
// (i8), 32 ql chunks (n = 0..1, gp = 0..1, q = 0..7; lane r = row r's ql[64n + 32gp + 4q .. +3]),
// then 16 qh chunks (n, q; lane r = qh[32n + 4q .. +3]).
void PackQ6K(const uint8_t* w, int64_t rows, int64_t cols, std::vector<uint8_t>* out) {
  const int64_t nsb = cols / 256;
  constexpr int64_t kOut = 16 + 128 + 1024 + 512;
  out->assign(static_cast<size_t>(rows / 8 * nsb * kOut), 0);
  for (int64_t g8 = 0; g8 < rows / 8; ++g8) {
    for (int64_t s = 0; s < nsb; ++s) {
      uint8_t* dst = out->data() + (g8 * nsb + s) * kOut;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* src = w + ((8 * g8 + r) * nsb + s) * 210;
        std::memcpy(dst + 2 * r, src + 208, 2);
        for (int k = 0; k < 16; ++k) dst[16 + 8 * k + r] = src[192 + k];
        for (int n = 0; n < 2; ++n) {
          for (int gp = 0; gp < 2; ++gp) {
            for (int q = 0; q < 8; ++q) {
              std::memcpy(dst + 144 + 32 * (16 * n + 8 * gp + q) + 4 * r, src + 64 * n + 32 * gp + 4 * q, 4);
            }
          }
          for (int q = 0; q < 8; ++q) {
            std::memcpy(dst + 1168 + 32 * (8 * n + q) + 4 * r, src + 128 + 32 * n + 4 * q, 4);
          }
        }
      }
    }
  }
}

}  // namespace

bool PackRows8(DType dtype, const uint8_t* w, int64_t rows, int64_t cols, std::vector<uint8_t>* out) {
  if (rows % 8 != 0 || Chosen().name != "avx512vnni") return false;
  if (dtype == DType::kQ4_K && cols % 256 == 0) {
    PackQ4K(w, rows, cols, out);
    return true;
  }
  if (dtype == DType::kQ6_K && cols % 256 == 0) {
    PackQ6K(w, rows, cols, out);
    return true;
  }
  if ((dtype != DType::kQ4_0 && dtype != DType::kQ5_0 && dtype != DType::kQ8_0) || cols % 32 != 0) {
    return false;
  }
  const bool q8 = dtype == DType::kQ8_0, q5 = dtype == DType::kQ5_0;
  const int64_t nb = cols / 32;
  const int64_t in_block = Traits(dtype).block_bytes;
  const int64_t qs_offset = q5 ? 6 : 2;  // q5_0 keeps 4 bytes of high bits before the nibbles
  const int chunks = q8 ? 8 : 4;
  const int64_t out_block = 16 + 32 * (chunks + (q5 ? 1 : 0));
  out->assign(static_cast<size_t>(rows / 8 * nb * out_block), 0);
  for (int64_t g = 0; g < rows / 8; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out->data() + (g * nb + b) * out_block;
      for (int r = 0; r < 8; ++r) {
        const uint8_t* src = w + ((8 * g + r) * nb + b) * in_block;
        std::memcpy(dst + 2 * r, src, 2);  // f16 scale
        uint32_t qh = 0;
        if (q5) std::memcpy(&qh, src + 2, 4);
        for (int k = 0; k < chunks; ++k) {
          for (int i = 0; i < 4; ++i) {
            uint8_t v = src[qs_offset + 4 * k + i];
            if (q8) v ^= 0x80;  // w + 128 as an unsigned byte
            dst[16 + 32 * k + 4 * r + i] = v;
            if (q5) {
              // High bits of elements 4k+i (-> bit 2k) and 16+4k+i (-> bit 2k+1).
              const uint8_t lo = (qh >> (4 * k + i)) & 1u, hi = (qh >> (16 + 4 * k + i)) & 1u;
              dst[16 + 128 + 4 * r + i] |= static_cast<uint8_t>((lo << (2 * k)) | (hi << (2 * k + 1)));
            }
          }
        }
      }
    }
  }
  return true;
}

void PackedRows8(DType dtype, const uint8_t* packed, int64_t rows, int64_t cols,
                 const QuantizedActivations& a, int64_t g0, int64_t g1, float* y) {
#if defined(__x86_64__)
  PackedRowsVnniFn()(dtype, packed, rows, cols, a.view(), g0, g1, y);
#else
  (void)dtype, (void)packed, (void)rows, (void)cols, (void)a, (void)g0, (void)g1, (void)y;
#endif
}

#if !defined(__x86_64__)
PackedRowsFn PackedRowsVnniFn() { return nullptr; }
#endif

}  // namespace gemma_local::cpu
