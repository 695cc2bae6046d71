// Quantizers for the K-quant super-block formats (q2_K, q3_K, q4_K, q5_K, q6_K), no importance
// matrix. Byte layouts are documented next to the dequantizers in quant_ref.cc; the values these
// blocks decode to are exactly what those functions (and llama.cpp) compute.
//
// Method (ours; aims at low squared error, not at byte equality with llama.cpp's quantizers):
//  1. Each sub-block gets a float scale (and, for the affine formats, a min) from a small search:
//     a grid of candidate inverse scales around the range-filling one; for each, round the values,
//     solve the least-squares scale (and min) for those integer codes, re-round with the solved
//     parameters a couple of times, and keep the candidate with the smallest squared error.
//  2. The super-block stores f16 d (and dmin) = largest sub-block scale (min) / the integer range
//     of the stored scales, tried at the nearest f16 and the next larger one; each sub-block
//     scale (min) is rounded to that grid, and the candidate with the least total error wins.
//  3. Per sub-block, the rounded scale (and min) is tried at +-1 step, codes re-rounded against
//     the exact decoded parameters, and the combination with the smallest error is kept.
// All searches are deterministic (fixed grids, strict-improvement ties keep the earlier choice).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "ops/reference/quant_ref.h"

namespace gemma_local::ref::kquant_internal {
namespace {

// Round to nearest (ties to even), clamped to [lo, hi]; NaN goes to lo.
int RoundClamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

void StoreF16(uint8_t* p, float f) {
  const uint16_t h = F32ToF16(f);
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// ---- Step 1: per-sub-block fits. ----

// x ~= scale * L - min with L in [0, nmax], scale >= 0, min >= 0 (the formats can only subtract).
struct AffineFit {
  float scale = 0.0f;
  float min = 0.0f;
};

// Least-squares (scale, offset) for fixed codes L, with offset <= 0. False when degenerate.
bool SolveAffine(const float* x, const int* L, int n, float* scale, float* offset) {
  double sl = 0, sl2 = 0, sx = 0, sxl = 0;
  for (int i = 0; i < n; ++i) {
    sl += L[i];
    sl2 += static_cast<double>(L[i]) * L[i];
    sx += x[i];
    sxl += static_cast<double>(x[i]) * L[i];
  }
  const double det = n * sl2 - sl * sl;
  if (!(det > 0)) return false;
  double s = (n * sxl - sx * sl) / det;
  double o = (sl2 * sx - sl * sxl) / det;
  if (o > 0) {
    o = 0;
    s = sxl / sl2;
  }
  if (!(s > 0)) return false;
  *scale = static_cast<float>(s);
  *offset = static_cast<float>(o);
  return true;
}

double AffineError(const float* x, int n, int nmax, float scale, float offset, int* L) {
  double err = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = RoundClamp((x[i] - offset) / scale, 0, nmax);
    const double diff = static_cast<double>(scale) * L[i] + offset - x[i];
    err += diff * diff;
  }
  return err;
}

// n <= 32. Candidates: inverse scales (nmax + rmin + rdelta * k) / (max - min), k = 0..nstep.
AffineFit FitAffine(const float* x, int n, int nmax, float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);
  if (hi == lo) return {0.0f, -lo};  // constant block (<= 0) or all zero: the min alone is exact
  int L[32];
  AffineFit best{(hi - lo) / static_cast<float>(nmax), -lo};
  double best_err = AffineError(x, n, nmax, best.scale, lo, L);
  for (int k = 0; k <= nstep; ++k) {
    const float iscale =
        (static_cast<float>(nmax) + rmin + rdelta * static_cast<float>(k)) / (hi - lo);
    for (int i = 0; i < n; ++i) L[i] = RoundClamp(iscale * (x[i] - lo), 0, nmax);
    float scale, offset;
    if (!SolveAffine(x, L, n, &scale, &offset)) continue;
    double err = AffineError(x, n, nmax, scale, offset, L);
    for (int iter = 0; iter < 2; ++iter) {  // re-round against the solved parameters
      float s2, o2;
      if (!SolveAffine(x, L, n, &s2, &o2)) break;
      int L2[32];
      const double e2 = AffineError(x, n, nmax, s2, o2, L2);
      if (!(e2 < err)) break;
      err = e2;
      scale = s2;
      offset = o2;
      std::memcpy(L, L2, sizeof(int) * n);
    }
    if (err < best_err) {
      best_err = err;
      best = {scale, -offset};
    }
  }
  return best;
}

// x ~= scale * L with L in [-nmax, nmax - 1]; the scale may be negative (so the largest
// magnitude can use the longer, negative end of the range). Returns 0 for an all-zero block.
float FitSymmetric(const float* x, int n, int nmax) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  // Sum of x*L and L*L for codes from inverse scale `is`; the best scale for them is sxl / sl2 and
  // the squared error is sum(x^2) - sxl^2 / sl2, so larger sxl^2 / sl2 is better.
  auto codes = [&](float is, double* sxl, double* sl2) {
    *sxl = 0;
    *sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = RoundClamp(is * x[i], -nmax, nmax - 1);
      *sxl += static_cast<double>(x[i]) * l;
      *sl2 += static_cast<double>(l) * l;
    }
  };
  float best = 0.0f;
  double best_score = -1.0;
  for (int side = 0; side < 2; ++side) {
    // side 0: the largest magnitude maps to -nmax; side 1: to +(nmax - 1).
    const float target = side == 0 ? -static_cast<float>(nmax) : static_cast<float>(nmax - 1);
    for (int k = -9; k <= 9; ++k) {
      const float mag = std::fabs(target) + 0.1f * static_cast<float>(k);
      if (mag < 0.5f) continue;
      float is = std::copysign(mag, target) / max;
      for (int iter = 0; iter < 3; ++iter) {
        double sxl, sl2;
        codes(is, &sxl, &sl2);
        if (!(sl2 > 0)) break;
        const double score = sxl * sxl / sl2;
        if (!(score > best_score)) break;
        best_score = score;
        best = static_cast<float>(sxl / sl2);
        if (best == 0.0f) break;
        is = 1.0f / best;  // re-round with the solved scale
      }
    }
  }
  return best;
}

// ---- Steps 2 and 3. ----

// Affine formats: quantize sub-block scales/mins to [0, smax] on grids d / dmin (f16 values),
// refine each sub-block's pair by +-1 and fill its codes. sub = elements per sub-block (<= 32).
// Returns the total squared error of the decoded values.
double QuantizeAffineSubblocks(const float* x, int nsub, int sub, int nmax, int smax,
                               const AffineFit* fits, float d, float dmin, int* ls, int* lm,
                               int* L) {
  double total = 0;
  for (int j = 0; j < nsub; ++j) {
    const float* xs = x + j * sub;
    const int s0 = d > 0 ? RoundClamp(fits[j].scale / d, 0, smax) : 0;
    const int m0 = dmin > 0 ? RoundClamp(fits[j].min / dmin, 0, smax) : 0;
    double best_err = std::numeric_limits<double>::infinity();
    for (int ds = 0; ds < 3; ++ds) {
      for (int dm = 0; dm < 3; ++dm) {
        // Order 0, -1, +1 so that ties keep the directly rounded value.
        const int s = s0 + (ds == 0 ? 0 : ds == 1 ? -1 : 1);
        const int m = m0 + (dm == 0 ? 0 : dm == 1 ? -1 : 1);
        if (s < 0 || s > smax || m < 0 || m > smax) continue;
        if (m > 0 && dmin == 0.0f) continue;
        const float dl = d * static_cast<float>(s);  // exactly what the dequantizer computes
        const float ml = dmin * static_cast<float>(m);
        double err = 0;
        int Lc[32];
        for (int i = 0; i < sub; ++i) {
          Lc[i] = dl > 0 ? RoundClamp((xs[i] + ml) / dl, 0, nmax) : 0;
          const double diff = static_cast<double>(dl * static_cast<float>(Lc[i]) - ml) - xs[i];
          err += diff * diff;
        }
        if (err < best_err) {
          best_err = err;
          ls[j] = s;
          lm[j] = m;
          std::memcpy(L + j * sub, Lc, sizeof(int) * sub);
        }
      }
    }
    total += best_err;
  }
  return total;
}

// Symmetric formats: scales to [-smax - 1, smax] on grid d (f16), refined by +-1, codes filled.
// sub <= 16. Returns the total squared error.
double QuantizeSymmetricSubblocks(const float* x, int nsub, int sub, int nmax, int smax,
                                  const float* scales, float d, int* sc, int* L) {
  double total = 0;
  for (int j = 0; j < nsub; ++j) {
    const float* xs = x + j * sub;
    const int s0 = d != 0.0f ? RoundClamp(scales[j] / d, -smax - 1, smax) : 0;
    double best_err = std::numeric_limits<double>::infinity();
    for (int k = 0; k < 3; ++k) {
      const int s = s0 + (k == 0 ? 0 : k == 1 ? -1 : 1);
      if (s < -smax - 1 || s > smax) continue;
      const float dl = d * static_cast<float>(s);
      double err = 0;
      int Lc[16];
      for (int i = 0; i < sub; ++i) {
        Lc[i] = dl != 0.0f ? RoundClamp(xs[i] / dl, -nmax, nmax - 1) : 0;
        const double diff = static_cast<double>(dl * static_cast<float>(Lc[i])) - xs[i];
        err += diff * diff;
      }
      if (err < best_err) {
        best_err = err;
        sc[j] = s;
        std::memcpy(L + j * sub, Lc, sizeof(int) * sub);
      }
    }
    total += best_err;
  }
  return total;
}

// Candidate f16 super-block scales for the ideal value v: the nearest f16 and the next one away
// from zero. The second matters when the nearest is smaller than v, which would make the largest
// sub-block scale overflow the stored range (most visible when v is an f16 subnormal and the
// grid is coarse). Returns how many candidates (1 when v is 0 or the next one is not finite).
int F16Candidates(float v, float out[2]) {
  if (v == 0.0f) {
    out[0] = 0.0f;  // +0 also when v is -0
    return 1;
  }
  const uint16_t h = F32ToF16(v);
  out[0] = F16ToF32(h);
  const float up = F16ToF32(static_cast<uint16_t>(h + 1));  // sign-magnitude: +1 grows |value|
  if (!std::isfinite(up)) return 1;
  out[1] = up;
  return 2;
}

// Affine formats: d = max scale / smax and dmin = max min / smax, each tried at its f16
// candidates; the combination with the least total error wins. Fills ls, lm, L.
void ChooseAffineSuperScales(const float* x, int nsub, int sub, int nmax, int smax,
                             const AffineFit* fits, float* d, float* dmin, int* ls, int* lm,
                             int* L) {
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < nsub; ++j) {
    max_scale = std::max(max_scale, fits[j].scale);
    max_min = std::max(max_min, fits[j].min);
  }
  float dc[2], mc[2];
  const int nd = F16Candidates(max_scale / static_cast<float>(smax), dc);
  const int nm = F16Candidates(max_min / static_cast<float>(smax), mc);
  double best = std::numeric_limits<double>::infinity();
  for (int a = 0; a < nd; ++a) {
    for (int b = 0; b < nm; ++b) {
      int ls_c[16], lm_c[16], L_c[256];
      const double err =
          QuantizeAffineSubblocks(x, nsub, sub, nmax, smax, fits, dc[a], mc[b], ls_c, lm_c, L_c);
      if (err < best) {
        best = err;
        *d = dc[a];
        *dmin = mc[b];
        std::memcpy(ls, ls_c, sizeof(int) * nsub);
        std::memcpy(lm, lm_c, sizeof(int) * nsub);
        std::memcpy(L, L_c, sizeof(int) * nsub * sub);
      }
    }
  }
}

// Symmetric formats: the largest-magnitude sub-block scale maps to -(smax + 1), the long end of
// the signed range; d is tried at its f16 candidates. Returns d; fills sc and L.
float ChooseSymmetricSuperScale(const float* x, int nsub, int sub, int nmax, int smax,
                                const float* scales, int* sc, int* L) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < nsub; ++j) {
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max = scales[j];
    }
  }
  float dc[2];
  const int nd = F16Candidates(max / -static_cast<float>(smax + 1), dc);
  double best = std::numeric_limits<double>::infinity();
  float d = 0.0f;
  for (int a = 0; a < nd; ++a) {
    int sc_c[16], L_c[256];
    const double err =
        QuantizeSymmetricSubblocks(x, nsub, sub, nmax, smax, scales, dc[a], sc_c, L_c);
    if (err < best) {
      best = err;
      d = dc[a];
      std::memcpy(sc, sc_c, sizeof(int) * nsub);
      std::memcpy(L, L_c, sizeof(int) * nsub * sub);
    }
  }
  return d;
}

// q4_K / q5_K scale packing (see ScaleMinK4 in quant_ref.cc).
void PackScaleMinK4(const int* ls, const int* lm, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] |= static_cast<uint8_t>(ls[j]);
      s[j + 4] |= static_cast<uint8_t>(lm[j]);
    } else {
      s[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      s[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      s[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// Shared by q4_K and q5_K: 8 sub-blocks of 32, 6-bit scales and mins.
void QuantizeQ45K(const float* x, int nmax, int nstep, float rmin, uint8_t* header, int* L) {
  AffineFit fits[8];
  for (int j = 0; j < 8; ++j) fits[j] = FitAffine(x + 32 * j, 32, nmax, rmin, 0.1f, nstep);
  float d = 0.0f, dmin = 0.0f;
  int ls[8], lm[8];
  ChooseAffineSuperScales(x, 8, 32, nmax, 63, fits, &d, &dmin, ls, lm, L);
  StoreF16(header, d);
  StoreF16(header + 2, dmin);
  PackScaleMinK4(ls, lm, header + 4);
}

}  // namespace

// q2_K: 16 sub-blocks of 16, codes 0..3, 4-bit scales and mins.
void QuantizeQ2KBlock(const float* x, uint8_t* dst) {
  std::memset(dst, 0, 84);
  AffineFit fits[16];
  for (int j = 0; j < 16; ++j) fits[j] = FitAffine(x + 16 * j, 16, 3, -0.5f, 0.1f, 15);
  float d = 0.0f, dmin = 0.0f;
  int ls[16], lm[16], L[256];
  ChooseAffineSuperScales(x, 16, 16, 3, 15, fits, &d, &dmin, ls, lm, L);
  for (int j = 0; j < 16; ++j) dst[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
  uint8_t* qs = dst + 16;
  for (int e = 0; e < 256; ++e)
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(L[e] << (2 * ((e % 128) / 32)));
  StoreF16(dst + 80, d);
  StoreF16(dst + 82, dmin);
}

// q3_K: 16 sub-blocks of 16, codes -4..3, signed 6-bit scales.
void QuantizeQ3KBlock(const float* x, uint8_t* dst) {
  std::memset(dst, 0, 110);
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = FitSymmetric(x + 16 * j, 16, 4);
  int sc[16], L[256];
  const float d = ChooseSymmetricSuperScale(x, 16, 16, 4, 31, scales, sc, L);
  uint8_t* hmask = dst;
  uint8_t* qs = dst + 32;
  uint8_t* s = dst + 96;
  for (int e = 0; e < 256; ++e) {
    const int u = L[e] + 4;  // 0..7
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((u & 3) << (2 * ((e % 128) / 32)));
    hmask[e % 32] |= static_cast<uint8_t>((u >> 2) << (e / 32));
  }
  for (int j = 0; j < 16; ++j) {
    const int v = sc[j] + 32;  // 0..63
    if (j < 8) {
      s[j] |= static_cast<uint8_t>(v & 0xF);
    } else {
      s[j - 8] |= static_cast<uint8_t>((v & 0xF) << 4);
    }
    s[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
  StoreF16(dst + 108, d);
}

// q4_K: 8 sub-blocks of 32, codes 0..15.
void QuantizeQ4KBlock(const float* x, uint8_t* dst) {
  std::memset(dst, 0, 144);
  int L[256];
  QuantizeQ45K(x, 15, 20, -1.0f, dst, L);
  uint8_t* qs = dst + 16;
  for (int e = 0; e < 256; ++e) {
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(L[e] << ((e % 64) < 32 ? 0 : 4));
  }
}

// q5_K: 8 sub-blocks of 32, codes 0..31 (5th bit in qh).
void QuantizeQ5KBlock(const float* x, uint8_t* dst) {
  std::memset(dst, 0, 176);
  int L[256];
  QuantizeQ45K(x, 31, 15, -0.5f, dst, L);
  uint8_t* qh = dst + 16;
  uint8_t* qs = dst + 48;
  for (int e = 0; e < 256; ++e) {
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((L[e] & 0xF) << ((e % 64) < 32 ? 0 : 4));
    qh[e % 32] |= static_cast<uint8_t>((L[e] >> 4) << (e / 32));
  }
}

// q6_K: 16 sub-blocks of 16, codes -32..31, signed 8-bit scales.
void QuantizeQ6KBlock(const float* x, uint8_t* dst) {
  std::memset(dst, 0, 210);
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = FitSymmetric(x + 16 * j, 16, 32);
  int sc[16], L[256];
  const float d = ChooseSymmetricSuperScale(x, 16, 16, 32, 127, scales, sc, L);
  uint8_t* ql = dst;
  uint8_t* qh = dst + 128;
  for (int e = 0; e < 256; ++e) {
    const int u = L[e] + 32;  // 0..63
    const int h = e / 128, g = (e % 128) / 32, l = e % 32;
    ql[64 * h + l + 32 * (g & 1)] |= static_cast<uint8_t>((u & 0xF) << (g < 2 ? 0 : 4));
    qh[32 * h + l] |= static_cast<uint8_t>((u >> 4) << (2 * g));
  }
  for (int j = 0; j < 16; ++j) dst[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(sc[j]));
  StoreF16(dst + 208, d);
}

}  // namespace gemma_local::ref::kquant_internal
