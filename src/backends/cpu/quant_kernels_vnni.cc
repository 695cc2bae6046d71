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

#if defined(__x86_64__)
namespace gemma_local::cpu {
namespace vnni {
namespace {

// Software prefetch of the block `kPrefetchBlocks` blocks after p (block bytes `block`): the
// packed kernels read each block in a different order than the hardware streamer expects, and
// one core alone cannot keep enough misses in flight otherwise.
inline void PrefetchAhead(const uint8_t* p, int64_t block) {
  constexpr int64_t kPrefetchBytes = 8192;
  const uint8_t* ahead = p + kPrefetchBytes;
  for (int64_t off = 0; off < block; off += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + off), _MM_HINT_T0);
}

// Four activation bytes in every 32-bit lane, straight from memory (a broadcast load, not a
// shuffle: the shuffle port is what the dot products need).
inline __m256i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Shift each 16-bit lane left (S > 0) or right (S < 0) by |S|.
template <int S>
inline __m256i ShiftBits(__m256i v) {
  if constexpr (S > 0) return _mm256_slli_epi16(v, S);
  if constexpr (S < 0) return _mm256_srli_epi16(v, -S);
  return v;
}

// q5_0 chunk k: nibbles plus the high bits kept at bit 2k (low-nibble element) and 2k+1
// (high-nibble element) of each lane byte, moved to bit 4.
template <int k>
inline void UnpackQ5Chunk(const uint8_t* p, __m256i hb, __m256i* w) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  const __m256i v = LoadU(p + 16 + 32 * k);
  w[k] = _mm256_or_si256(_mm256_and_si256(v, low4), _mm256_and_si256(ShiftBits<4 - 2 * k>(hb), bit4));
  w[k + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                             _mm256_and_si256(ShiftBits<3 - 2 * k>(hb), bit4));
}

// One group of 8 rows times NT tokens (see PackRows8 for the layout). Two partial integer sums
// per token halve the vpdpbusd dependency chain. kKind: 0 q4_0, 1 q5_0, 2 q8_0.
template <int kKind, int NT>
void Packed8Tile(const uint8_t* grp, int64_t nb, const ActivationView& a, int64_t t0, int64_t rows,
                 int64_t row0, float* y) {
  constexpr bool kQ8 = kKind == 2;
  constexpr int64_t kBlockBytes = 16 + 32 * (kQ8 ? 8 : kKind == 1 ? 5 : 4);
  constexpr float kOffset = kQ8 ? 128.0f : kKind == 1 ? 16.0f : 8.0f;
  __m256 acc[NT], corr[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    corr[t] = _mm256_setzero_ps();
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  // Per-token data advance with the block; token t sits t * cols bytes (t * nb scales) further.
  const int64_t cols = a.cols;
  const int8_t* xb = a.q + t0 * cols;
  const float* db = a.d + t0 * nb;
  const float* sb = a.dsum + t0 * nb;
  for (int64_t b = 0; b < nb; ++b, xb += 32, ++db, ++sb) {
    const uint8_t* p = grp + b * kBlockBytes;
    PrefetchAhead(p, kBlockBytes);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    __m256i w[8];
    if constexpr (kQ8) {
      for (int k = 0; k < 8; ++k) w[k] = LoadU(p + 16 + 32 * k);
    } else if constexpr (kKind == 1) {
      const __m256i hb = LoadU(p + 16 + 128);
      UnpackQ5Chunk<0>(p, hb, w);
      UnpackQ5Chunk<1>(p, hb, w);
      UnpackQ5Chunk<2>(p, hb, w);
      UnpackQ5Chunk<3>(p, hb, w);
    } else {
      for (int k = 0; k < 4; ++k) {
        const __m256i v = LoadU(p + 16 + 32 * k);
        w[k] = _mm256_and_si256(v, low4);
        w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      }
    }
    for (int t = 0; t < NT; ++t) {
      const int8_t* x = xb + t * cols;
      __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
      for (int g = 0; g < 8; g += 2) {
        s0 = _mm256_dpbusd_epi32(s0, w[g], Broadcast4(x + 4 * g));
        s1 = _mm256_dpbusd_epi32(s1, w[g + 1], Broadcast4(x + 4 * g + 4));
      }
      const __m256 sc = _mm256_mul_ps(dw, _mm256_broadcast_ss(db + t * nb));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), sc, acc[t]);
      corr[t] = _mm256_fmadd_ps(dw, _mm256_broadcast_ss(sb + t * nb), corr[t]);
    }
  }
  const __m256 off = _mm256_set1_ps(kOffset);
  for (int t = 0; t < NT; ++t) {
    alignas(32) float r8[8];
    _mm256_store_ps(r8, _mm256_fnmadd_ps(off, corr[t], acc[t]));
    for (int r = 0; r < 8; ++r) y[(t0 + t) * rows + row0 + r] = r8[r];
  }
}


// q4_K, 8 rows x NT tokens per call (layout: quant_matmul.cc PackQ4K). Per sub-block the 8 rows'
// integer dots accumulate in one vector (lanes = rows), are scaled by the rows' 6-bit scales, and
// the whole super-block is converted to float once.
template <int NT>
void PackedQ4KTile(const uint8_t* grp, int64_t nsb, const ActivationView& a, int64_t t0, int64_t rows,
                   int64_t row0, float* y) {
  constexpr int64_t kSuper = 32 + 128 + 1024;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[NT], corr[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    corr[t] = _mm256_setzero_ps();
  }
  // Per-token data advance with the super-block; token t sits t * cols values further.
  const int64_t cols = a.cols;
  const int8_t* xs = a.q + t0 * cols;
  const int16_t* bss = a.bsums + t0 * cols / 16;
  const float* ds = a.d + t0 * nsb;
  for (int64_t s = 0; s < nsb; ++s, xs += 256, bss += 16, ++ds) {
    const uint8_t* p = grp + s * kSuper;
    PrefetchAhead(p, kSuper);
    __m256i total[NT];
    for (int t = 0; t < NT; ++t) total[t] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i lo_sum[NT], hi_sum[NT];
      for (int t = 0; t < NT; ++t) lo_sum[t] = hi_sum[t] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const __m256i v = LoadU(p + 160 + 32 * (8 * c + g));
        const __m256i lo = _mm256_and_si256(v, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        for (int t = 0; t < NT; ++t) {
          const int8_t* x = xs + t * cols + 64 * c + 4 * g;
          lo_sum[t] = _mm256_dpbusd_epi32(lo_sum[t], lo, Broadcast4(x));
          hi_sum[t] = _mm256_dpbusd_epi32(hi_sum[t], hi, Broadcast4(x + 32));
        }
      }
      const __m256i sc_lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 32 + 8 * (2 * c))));
      const __m256i sc_hi =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 32 + 8 * (2 * c + 1))));
      for (int t = 0; t < NT; ++t) {
        total[t] = _mm256_add_epi32(total[t], _mm256_mullo_epi32(lo_sum[t], sc_lo));
        total[t] = _mm256_add_epi32(total[t], _mm256_mullo_epi32(hi_sum[t], sc_hi));
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    for (int t = 0; t < NT; ++t) {
      const int16_t* bs = bss + t * cols / 16;
      __m256i msum = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        const __m256i m = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 96 + 8 * j)));
        msum = _mm256_add_epi32(msum, _mm256_mullo_epi32(m, _mm256_set1_epi32(bs[2 * j] + bs[2 * j + 1])));
      }
      const __m256 dx = _mm256_broadcast_ss(ds + t * nsb);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total[t]), _mm256_mul_ps(d, dx), acc[t]);
      corr[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, dx), corr[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(32) float r8[8];
    _mm256_store_ps(r8, _mm256_sub_ps(acc[t], corr[t]));
    for (int r = 0; r < 8; ++r) y[(t0 + t) * rows + row0 + r] = r8[r];
  }
}


// q6_K, 8 rows x NT tokens (layout: quant_matmul.cc PackQ6K). The 6-bit weights of two 32-element
// groups are built from one low-nibble load and one high-bit load; the 8 rows' dots of each
// 16-element half (one scale) accumulate apart. The offset 32 is taken out before scaling, with the per-16 activation sums:
// sum (u - 32) x = sum u x - 32 sum x.
template <int NT>
void PackedQ6KTile(const uint8_t* grp, int64_t nsb, const ActivationView& a, int64_t t0, int64_t rows,
                   int64_t row0, float* y) {
  constexpr int64_t kSuper = 16 + 128 + 1024 + 512;
  const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  const int64_t cols = a.cols;
  const int8_t* xs = a.q + t0 * cols;
  const int16_t* bss = a.bsums + t0 * cols / 16;
  const float* ds = a.d + t0 * nsb;
  for (int64_t s = 0; s < nsb; ++s, xs += 256, bss += 16, ++ds) {
    const uint8_t* p = grp + s * kSuper;
    PrefetchAhead(p, kSuper);
    __m256i total[NT];
    for (int t = 0; t < NT; ++t) total[t] = _mm256_setzero_si256();
    for (int n = 0; n < 2; ++n) {
      for (int half = 0; half < 2; ++half) {
        // Groups g and g + 2 share one low-nibble vector (low and high nibbles) and the high-bit
        // vector; two groups at a time keep the accumulators of four tokens in registers.
        for (int g = 0; g < 2; ++g) {
          __m256i dot[NT][2];
          for (int t = 0; t < NT; ++t) dot[t][0] = dot[t][1] = _mm256_setzero_si256();
          for (int q = 4 * half; q < 4 * half + 4; ++q) {
            const __m256i l = LoadU(p + 144 + 32 * (16 * n + 8 * g + q));
            const __m256i h = LoadU(p + 1168 + 32 * (8 * n + q));
            // (x & 0x0F) | y as one ternary-logic op; y holds the two high bits at bits 4-5.
            const __m256i h_lo = _mm256_and_si256(g == 0 ? _mm256_slli_epi16(h, 4) : _mm256_slli_epi16(h, 2), bits45);
            const __m256i h_hi = _mm256_and_si256(g == 0 ? h : _mm256_srli_epi16(h, 2), bits45);
            const __m256i u_lo = _mm256_ternarylogic_epi32(l, low4, h_lo, 0xEA);
            const __m256i u_hi = _mm256_ternarylogic_epi32(_mm256_srli_epi16(l, 4), low4, h_hi, 0xEA);
            for (int t = 0; t < NT; ++t) {
              const int8_t* x = xs + t * cols + 128 * n + 4 * q;
              dot[t][0] = _mm256_dpbusd_epi32(dot[t][0], u_lo, Broadcast4(x + 32 * g));
              dot[t][1] = _mm256_dpbusd_epi32(dot[t][1], u_hi, Broadcast4(x + 32 * (g + 2)));
            }
          }
          for (int j = 0; j < 2; ++j) {
            const int k = 8 * n + 2 * (g + 2 * j) + half;
            const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 16 + 8 * k)));
            for (int t = 0; t < NT; ++t) {
              const int16_t* bs = bss + t * cols / 16;
              const __m256i centered = _mm256_sub_epi32(dot[t][j], _mm256_set1_epi32(32 * bs[k]));
              total[t] = _mm256_add_epi32(total[t], _mm256_mullo_epi32(centered, sc));
            }
          }
        }
      }
    }
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    for (int t = 0; t < NT; ++t) {
      const __m256 dx = _mm256_broadcast_ss(ds + t * nsb);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total[t]), _mm256_mul_ps(d, dx), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    alignas(32) float r8[8];
    _mm256_store_ps(r8, acc[t]);
    for (int r = 0; r < 8; ++r) y[(t0 + t) * rows + row0 + r] = r8[r];
  }
}


template <int N>
struct TokenTile {
  static constexpr int kTokens = N;
};

// tile_at(group, t0, TokenTile<NT>) for every 8-row group in [g0, g1) and all tokens: 4 tokens
// per tile, then 2, then 1.
template <typename TileAt>
void EachGroupAndTile(int64_t g0, int64_t g1, int64_t n_tokens, const TileAt& tile_at) {
  for (int64_t g = g0; g < g1; ++g) {
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) tile_at(g, t0, TokenTile<4>());
    for (; t0 + 2 <= n_tokens; t0 += 2) tile_at(g, t0, TokenTile<2>());
    for (; t0 < n_tokens; ++t0) tile_at(g, t0, TokenTile<1>());
  }
}

void PackedRows(DType dtype, const uint8_t* packed, int64_t rows, int64_t cols,
                const ActivationView& a, int64_t g0, int64_t g1, float* y) {
  const int64_t nsb = cols / 256, nb = cols / 32;
  switch (dtype) {
    case DType::kQ6_K:
      EachGroupAndTile(g0, g1, a.n_tokens, [&](int64_t g, int64_t t0, auto tile) {
        PackedQ6KTile<decltype(tile)::kTokens>(packed + g * nsb * 1680, nsb, a, t0, rows, 8 * g, y);
      });
      break;
    case DType::kQ4_K:
      EachGroupAndTile(g0, g1, a.n_tokens, [&](int64_t g, int64_t t0, auto tile) {
        PackedQ4KTile<decltype(tile)::kTokens>(packed + g * nsb * 1184, nsb, a, t0, rows, 8 * g, y);
      });
      break;
    case DType::kQ8_0:
      EachGroupAndTile(g0, g1, a.n_tokens, [&](int64_t g, int64_t t0, auto tile) {
        Packed8Tile<2, decltype(tile)::kTokens>(packed + g * nb * 272, nb, a, t0, rows, 8 * g, y);
      });
      break;
    case DType::kQ5_0:
      EachGroupAndTile(g0, g1, a.n_tokens, [&](int64_t g, int64_t t0, auto tile) {
        Packed8Tile<1, decltype(tile)::kTokens>(packed + g * nb * 176, nb, a, t0, rows, 8 * g, y);
      });
      break;
    default:  // q4_0
      EachGroupAndTile(g0, g1, a.n_tokens, [&](int64_t g, int64_t t0, auto tile) {
        Packed8Tile<0, decltype(tile)::kTokens>(packed + g * nb * 144, nb, a, t0, rows, 8 * g, y);
      });
  }
}

}  // namespace
}  // namespace vnni

PackedRowsFn PackedRowsVnniFn() { return &vnni::PackedRows; }

}  // namespace gemma_local::cpu
#endif
