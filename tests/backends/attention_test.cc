// The SIMD attention kernel against the f64 scalar reference on odd head sizes, group sizes and
// key counts, with scattered (non-contiguous) K/V rows and soft-capping, for every KV storage
// type: the reference dequantizes the same stored rows exactly, so the only difference left is
// f32 summation, and the tolerance is as tight for f16 and q8_0 rows as for f32 ones.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/kv_view.h"
#include "ops/ops.h"

namespace gemma_local {
namespace {

constexpr KvType kAllTypes[] = {KvType::kF32, KvType::kF16, KvType::kQ8_0};

// Rows of `row_elems` random values stored as `type`, one after another.
struct StoredRows {
  StoredRows(KvType type, int64_t rows, int64_t row_elems, float sigma, std::mt19937& rng)
      : row_bytes(KvRowBytes(type, row_elems)), bytes(static_cast<size_t>(rows * row_bytes)) {
    std::normal_distribution<float> g(0.0f, sigma);
    std::vector<float> x(static_cast<size_t>(row_elems));
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : x) v = g(rng);
      StoreKvRow(type, x.data(), row_elems, Row(r));
    }
  }
  uint8_t* Row(int64_t r) { return bytes.data() + r * row_bytes; }
  int64_t row_bytes;
  std::vector<uint8_t> bytes;
};

// Runs `body` once per SIMD target this build has and the CPU supports (the kernel is chosen at
// run time: AVX2 meets q8_0 blocks four vectors at a time, AVX-512 two, EMU128 eight), then
// restores the normal choice.
template <typename Body>
void ForEachTarget(Body body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    body();
    if (::testing::Test::HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Head sizes per type: odd ones where the type allows them, whole 32-blocks for q8_0.
std::vector<int64_t> HeadDims(KvType type) {
  if (type == KvType::kQ8_0) return {32, 96, 256};
  return {1, 7, 16, 33, 256};
}

TEST(CpuAttention, AttendGroupMatchesReference) {
  ForEachTarget([] {
    std::mt19937 rng(9);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> scratch;  // reused across calls on purpose
    for (KvType type : kAllTypes) {
      for (int64_t d : HeadDims(type)) {
        for (int64_t group : {1, 3, 4}) {
          for (int64_t n : {1, 2, 17, 300}) {
            for (float softcap : {0.0f, 5.0f}) {
              // Rows live in a pool with two heads per row and some padding (offset selects the
              // second head) and are visited in a shuffled order, as blocks hand them out.
              const int64_t row_elems = 2 * d + (type == KvType::kQ8_0 ? 32 : 3);
              StoredRows pool(type, 2 * n, row_elems, 2.0f, rng);
              std::vector<const uint8_t*> k_rows, v_rows;
              for (int64_t j = 0; j < n; ++j) {
                const int64_t slot = (j * 7 + 3) % n;
                k_rows.push_back(pool.Row(slot));
                v_rows.push_back(pool.Row(n + slot));
              }
              std::vector<float> q(static_cast<size_t>(group * d));
              for (float& v : q) v = g(rng);
              const float scale = 1.0f / std::sqrt(static_cast<float>(d));
              std::vector<float> want(q.size()), got(q.size(), NAN);
              ref::AttendGroupStored(q.data(), group, d, KvDType(type), k_rows.data(),
                                     v_rows.data(), d, n, scale, softcap, want.data());
              ops::AttendGroup(q.data(), group, d, type, k_rows.data(), v_rows.data(), d, n, scale,
                               softcap, &scratch, got.data());
              for (size_t i = 0; i < want.size(); ++i) {
                ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-5f * std::fabs(want[i]))
                    << KvTypeName(type) << " d " << d << " group " << group << " n " << n
                    << " softcap " << softcap << " i " << i;
              }
            }
          }
        }
      }
    }
  });
}

// The reference for stored rows is the f32 reference on the rows' exact values.
TEST(RefAttention, StoredRowsAreTheirDequantizedValues) {
  std::mt19937 rng(3);
  const int64_t d = 64, n = 5, group = 2;
  for (KvType type : kAllTypes) {
    StoredRows pool(type, 2 * n, 2 * d, 1.0f, rng);
    std::vector<float> values(static_cast<size_t>(2 * n * 2 * d));
    std::vector<const uint8_t*> ks, vs;
    std::vector<const float*> kf, vf;
    for (int64_t r = 0; r < 2 * n; ++r) {
      LoadKvRow(type, pool.Row(r), 2 * d, &values[static_cast<size_t>(r * 2 * d)]);
    }
    for (int64_t j = 0; j < n; ++j) {
      ks.push_back(pool.Row(j));
      vs.push_back(pool.Row(n + j));
      kf.push_back(&values[static_cast<size_t>(j * 2 * d)]);
      vf.push_back(&values[static_cast<size_t>((n + j) * 2 * d)]);
    }
    std::vector<float> q(static_cast<size_t>(group * d)), a(q.size()), b(q.size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(static_cast<float>(i));
    ref::AttendGroupStored(q.data(), group, d, KvDType(type), ks.data(), vs.data(), d, n, 0.2f,
                           0.0f, a.data());
    ref::AttendGroup(q.data(), group, d, kf.data(), vf.data(), d, n, 0.2f, 0.0f, b.data());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << KvTypeName(type);
  }
}

// The CPU backend's Attention hands AttendGroup a whole KV group of heads when the batch has
// enough tokens to keep every thread busy, single heads otherwise (a decode step). A head's output
// must not depend on that choice, or a token's attention would depend on the batch size; for
// every storage type (f16 and q8_0 rows are converted inside the loops, per head alike).
TEST(CpuAttention, AHeadsOutputDoesNotDependOnTheHeadsAttendedWithIt) {
  ForEachTarget([] {
    std::mt19937 rng(13);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> scratch;
    for (KvType type : kAllTypes) {
      for (int64_t d :
           type == KvType::kQ8_0 ? std::vector<int64_t>{32, 64} : std::vector<int64_t>{7, 64}) {
        for (int64_t n : {1, 5, 40}) {
          for (float softcap : {0.0f, 5.0f}) {
            const int64_t group = 4;
            StoredRows k(type, n, d, 2.0f, rng), v(type, n, d, 1.0f, rng);
            std::vector<const uint8_t*> k_rows, v_rows;
            for (int64_t j = 0; j < n; ++j) {
              k_rows.push_back(k.Row(j));
              v_rows.push_back(v.Row(j));
            }
            std::vector<float> q(static_cast<size_t>(group * d));
            for (float& x : q) x = g(rng);
            std::vector<float> together(q.size()), one(static_cast<size_t>(d));
            ops::AttendGroup(q.data(), group, d, type, k_rows.data(), v_rows.data(), 0, n, 0.125f,
                             softcap, &scratch, together.data());
            for (int64_t h = 0; h < group; ++h) {
              ops::AttendGroup(q.data() + h * d, 1, d, type, k_rows.data(), v_rows.data(), 0, n,
                               0.125f, softcap, &scratch, one.data());
              ASSERT_EQ(0, std::memcmp(one.data(), together.data() + h * d, d * sizeof(float)))
                  << KvTypeName(type) << " d " << d << " n " << n << " softcap " << softcap
                  << " head " << h;
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace gemma_local
