// Quantized-weight matrix products: every SIMD kernel set against the portable integer kernels,
// the portable kernels against the scalar dequantization reference (ref::MatMul on the 8-bit
// activations' values), and ops::MatMul's independence from thread count and batch composition.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/quant_matmul.h"
#include "core/half.h"
#include "ops/ops.h"
#include "ops/reference/quant_ref.h"

namespace gemma_local {
namespace {

const DType kIntegerTypes[] = {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0,
                               DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Offsets of the f16 scale fields in a block (they must hold sane finite values; every other
// byte is random, so all quant values, high bits and packed sub-block scales get exercised).
std::vector<int> HalfFields(DType t) {
  switch (t) {
    case DType::kQ4_0: case DType::kQ5_0: case DType::kQ8_0: return {0};
    case DType::kQ4_K: case DType::kQ5_K: return {0, 2};
    case DType::kQ6_K: return {208};
    case DType::kQ4_1: case DType::kQ5_1: return {0, 2};
    case DType::kQ2_K: return {80, 82};
    case DType::kQ3_K: return {108};
    default: return {};
  }
}

std::vector<uint8_t> RandomBlocks(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const auto& tr = Traits(t);
  const int64_t blocks = rows * cols / tr.block_elems;
  std::vector<uint8_t> bytes(static_cast<size_t>(blocks * tr.block_bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  for (int64_t i = 0; i < blocks; ++i) {
    for (int off : HalfFields(t)) {
      const uint16_t h = F32ToF16(scale(rng) * (byte(rng) < 32 ? -1.0f : 1.0f));
      std::memcpy(&bytes[static_cast<size_t>(i * tr.block_bytes + off)], &h, 2);
    }
  }
  return bytes;
}

std::vector<float> RandomActivations(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  if (n > 3) x[static_cast<size_t>(n / 3)] = 0.0f;
  return x;
}

// |a - b| within tol relative to the magnitude of the sum's terms.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  float scale = 1e-6f;
  for (float v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * scale) << what << " at " << i;
  }
}

struct Shape {
  int64_t rows, blocks, tokens;
};
const Shape kShapes[] = {{1, 1, 1}, {3, 2, 1}, {17, 5, 2}, {8, 3, 3}, {33, 1, 4}, {5, 7, 5}, {9, 2, 9}};

TEST(QuantMatMul, SimdKernelsMatchPortableIntegerKernels) {
  std::mt19937 rng(7);
  std::vector<std::string> isas = {"avx2"};
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) isas.clear();
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) isas.push_back("avx512vnni");
#else
  isas.clear();
#endif
  if (isas.empty()) GTEST_SKIP() << "no x86 SIMD kernels on this CPU";
  for (DType t : kIntegerTypes) {
    const int64_t block = Traits(t).block_elems;
    for (const Shape& s : kShapes) {
      const int64_t cols = s.blocks * block;
      const auto w = RandomBlocks(t, s.rows, cols, rng);
      const auto x = RandomActivations(s.tokens * cols, rng);
      cpu::QuantizedActivations a;
      cpu::QuantizeActivations(x.data(), s.tokens, cols, cpu::ActivationBlock(t), &a);
      std::vector<float> want(static_cast<size_t>(s.rows * s.tokens));
      cpu::QuantRowsPortable(t, w.data(), s.rows, cols, a, 0, s.rows, want.data());
      for (const auto& isa : isas) {
        std::vector<float> got(want.size(), NAN);
        cpu::QuantRows(t, w.data(), s.rows, cols, a, 0, s.rows, got.data(), isa.c_str());
        ExpectClose(got, want, 2e-5f,
                    std::string(DTypeName(t)) + " " + isa + " rows " + std::to_string(s.rows) +
                        " cols " + std::to_string(cols) + " tokens " + std::to_string(s.tokens));
      }
    }
  }
}

// Batch invariance of every kernel set (not only the one this CPU picks): a token's results are
// bit-identical alone and as any token of a batch of 1..9, whichever token tile (4, then 1..3
// tokens) it lands in. 9 blocks of 32 also leave a partial 8-block chunk in the 32-block kernels.
TEST(QuantMatMul, EveryKernelSetGivesATokenTheSameResultWhateverTheBatch) {
  std::mt19937 rng(23);
  std::vector<std::string> isas = {"portable"};
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isas.push_back("avx2");
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) {
      isas.push_back("avx512vnni");
    }
  }
#endif
  constexpr int64_t kRows = 5, kTokens = 9;
  for (DType t : kIntegerTypes) {
    const int64_t cols = Traits(t).block_elems == 32 ? 9 * 32 : 2 * 256;
    const int64_t ablock = cpu::ActivationBlock(t);
    const auto w = RandomBlocks(t, kRows, cols, rng);
    const auto x = RandomActivations(kTokens * cols, rng);
    for (const std::string& isa : isas) {
      // Each token alone.
      std::vector<float> alone(static_cast<size_t>(kRows * kTokens));
      for (int64_t tok = 0; tok < kTokens; ++tok) {
        cpu::QuantizedActivations a;
        cpu::QuantizeActivations(x.data() + tok * cols, 1, cols, ablock, &a);
        cpu::QuantRows(t, w.data(), kRows, cols, a, 0, kRows, alone.data() + tok * kRows,
                       isa.c_str());
      }
      for (int64_t n = 2; n <= kTokens; ++n) {
        cpu::QuantizedActivations a;
        cpu::QuantizeActivations(x.data(), n, cols, ablock, &a);
        std::vector<float> got(static_cast<size_t>(kRows * n), NAN);
        cpu::QuantRows(t, w.data(), kRows, cols, a, 0, kRows, got.data(), isa.c_str());
        ASSERT_EQ(0, std::memcmp(got.data(), alone.data(), got.size() * sizeof(float)))
            << DTypeName(t) << " " << isa << ": " << n << " tokens";
      }
    }
  }
}

TEST(QuantMatMul, PortableKernelsMatchDequantizedReference) {
  std::mt19937 rng(11);
  for (DType t : kIntegerTypes) {
    const int64_t block = Traits(t).block_elems;
    for (const Shape& s : kShapes) {
      const int64_t cols = s.blocks * block;
      const auto w = RandomBlocks(t, s.rows, cols, rng);
      const auto x = RandomActivations(s.tokens * cols, rng);
      const int64_t ablock = cpu::ActivationBlock(t);
      cpu::QuantizedActivations a;
      cpu::QuantizeActivations(x.data(), s.tokens, cols, ablock, &a);
      // The values the 8-bit activations stand for.
      std::vector<float> xq(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        const int64_t tok = static_cast<int64_t>(i) / cols, col = static_cast<int64_t>(i) % cols;
        xq[i] = a.d[static_cast<size_t>(tok * (cols / ablock) + col / ablock)] * a.q[i];
      }
      std::vector<float> want(static_cast<size_t>(s.rows * s.tokens)), got(want.size());
      ref::MatMul(ref::MatrixView{t, w.data(), s.rows, cols}, xq.data(), s.tokens, want.data());
      cpu::QuantRowsPortable(t, w.data(), s.rows, cols, a, 0, s.rows, got.data());
      ExpectClose(got, want, 2e-5f, std::string(DTypeName(t)) + " portable vs reference");
    }
  }
}

TEST(QuantMatMul, OpsMatMulCloseToExactAndIndependentOfThreadsAndBatch) {
  std::mt19937 rng(3);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(3)};
  // Integer-kernel types plus types served by the dequantize-and-dot path.
  const DType types[] = {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K,
                         DType::kQ6_K, DType::kQ4_1, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K};
  for (DType t : types) {
    const int64_t rows = 37, cols = 2 * Traits(t).block_elems * (Traits(t).block_elems == 32 ? 9 : 1);
    const int64_t tokens = 6;
    const auto w = RandomBlocks(t, rows, cols, rng);
    const auto x = RandomActivations(tokens * cols, rng);
    const ref::MatrixView view{t, w.data(), rows, cols};
    std::vector<float> exact(static_cast<size_t>(rows * tokens));
    ref::MatMul(view, x.data(), tokens, exact.data());
    std::vector<float> first;
    for (auto& pool : pools) {
      std::vector<float> got(exact.size(), NAN);
      ops::MatMul(ops::Context{&pool}, view, x.data(), tokens, got.data());
      // 8-bit activations: relative error of a dot product stays well under 2%.
      ExpectClose(got, exact, 0.02f, std::string(DTypeName(t)) + " vs exact f32");
      if (first.empty()) {
        first = got;
      } else {
        ASSERT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * 4)) << DTypeName(t) << " thread count";
      }
    }
    // One token alone gives bit-identical results to the same token inside the batch.
    for (int64_t tok : {0, 4, 5}) {
      std::vector<float> one(static_cast<size_t>(rows));
      ops::MatMul(ops::Context{&pools[1]}, view, x.data() + tok * cols, 1, one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), first.data() + tok * rows, one.size() * 4))
          << DTypeName(t) << " token " << tok;
    }
  }
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

// The 8-row interleaved copies (AVX-512 VNNI CPUs) compute the same products as the plain blocks.
TEST(QuantMatMul, RepackedWeightsMatchPlainBlocks) {
  std::mt19937 rng(19);
  ThreadPool pool1(1), pool2(2);
  bool any_packed = false;
  for (DType t : {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    for (const Shape& s : {Shape{8, 1, 1}, Shape{16, 3, 2}, Shape{40, 5, 5}, Shape{24, 36, 9}, Shape{13, 2, 3}}) {
      const int64_t cols = s.blocks * Traits(t).block_elems;
      const auto w = RandomBlocks(t, s.rows, cols, rng);
      const auto x = RandomActivations(s.tokens * cols, rng);
      ref::MatrixView plain{t, w.data(), s.rows, cols};
      ref::MatrixView packed = plain;
      std::vector<std::vector<uint8_t>> storage;
      ops::RepackWeights(&packed, &storage, /*source_is_file_mapping=*/false);
      if (s.rows % 8 != 0) {
        EXPECT_EQ(packed.packed, nullptr) << "rows not a multiple of 8 stay unpacked";
        continue;
      }
      if (std::string(cpu::QuantKernelIsa()) == "avx512vnni") {
        ASSERT_NE(packed.packed, nullptr) << DTypeName(t) << ": VNNI CPUs pack these types";
      }
      if (packed.packed == nullptr) continue;  // this CPU has no packed kernels
      any_packed = true;
      std::vector<float> want(static_cast<size_t>(s.rows * s.tokens)), got(want.size()), got2(want.size());
      ops::MatMul(ops::Context{&pool1}, plain, x.data(), s.tokens, want.data());
      ops::MatMul(ops::Context{&pool1}, packed, x.data(), s.tokens, got.data());
      ops::MatMul(ops::Context{&pool2}, packed, x.data(), s.tokens, got2.data());
      ExpectClose(got, want, 2e-5f, std::string(DTypeName(t)) + " packed vs plain");
      ASSERT_EQ(0, std::memcmp(got.data(), got2.data(), got.size() * 4)) << "thread count";
      for (int64_t tok = 0; tok < s.tokens; ++tok) {
        std::vector<float> one(static_cast<size_t>(s.rows));
        ops::MatMul(ops::Context{&pool2}, packed, x.data() + tok * cols, 1, one.data());
        ASSERT_EQ(0, std::memcmp(one.data(), got.data() + tok * s.rows, one.size() * 4)) << "batch composition";
      }
    }
  }
  if (!any_packed) GTEST_SKIP() << "no AVX-512 VNNI on this CPU: plain kernels only";
}

// The activation quantizer against a plain transcription of its contract (round half to even
// with std::nearbyint, scale amax / 127, per-block sums), on values that include exact ties, with
// and without a thread pool.
TEST(QuantMatMul, ActivationQuantizationRoundsHalfToEven) {
  std::mt19937 rng(11);
  for (int64_t block : {32, 256}) {
    const int64_t tokens = 5, cols = 2 * 256;
    std::vector<float> x = RandomActivations(tokens * cols, rng);
    // Block 0 of token 0: amax 127 makes the scale 1, so k + 0.5 values are exact ties.
    x[0] = 127.0f;
    for (int i = 1; i < 16; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i - 8) + 0.5f;
    ThreadPool pool(2);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      cpu::QuantizedActivations a;
      cpu::QuantizeActivations(x.data(), tokens, cols, block, &a, p);
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t b = 0; b < cols / block; ++b) {
          const float* src = x.data() + t * cols + b * block;
          float amax = 0.0f;
          for (int64_t i = 0; i < block; ++i) amax = std::max(amax, std::fabs(src[i]));
          const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
          ASSERT_EQ(a.d[static_cast<size_t>(t * (cols / block) + b)], d);
          int32_t sum = 0;
          for (int64_t i = 0; i < block; ++i) {
            const int8_t want = static_cast<int8_t>(std::nearbyint(src[i] * inv));
            ASSERT_EQ(a.q[static_cast<size_t>(t * cols + b * block + i)], want) << "t " << t << " i " << i;
            sum += want;
          }
          if (block == 32) {
            ASSERT_EQ(a.dsum[static_cast<size_t>(t * (cols / block) + b)], d * static_cast<float>(sum));
          }
        }
      }
      if (block == 256) {
        for (size_t k = 0; k < a.bsums.size(); ++k) {
          int32_t s16 = 0;
          for (int i = 0; i < 16; ++i) s16 += a.q[16 * k + static_cast<size_t>(i)];
          ASSERT_EQ(a.bsums[k], s16);
        }
      }
    }
  }
}

}  // namespace
}  // namespace gemma_local
