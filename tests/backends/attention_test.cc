// The SIMD attention kernel against the f64 scalar reference on odd head sizes, group sizes and
// key counts, with scattered (non-contiguous) K/V rows and soft-capping.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "ops/ops.h"

namespace gemma_local {
namespace {

TEST(CpuAttention, AttendGroupMatchesReference) {
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> scratch;  // reused across calls on purpose
  for (int64_t d : {1, 7, 16, 33, 256}) {
    for (int64_t group : {1, 3, 4}) {
      for (int64_t n : {1, 2, 17, 300}) {
        for (float softcap : {0.0f, 5.0f}) {
          // Rows live in a pool with two heads per row (offset selects the second) and are
          // visited in a shuffled order, as a ring buffer would hand them out.
          const int64_t row_floats = 2 * d + 3;
          std::vector<float> pool(static_cast<size_t>(2 * n * row_floats));
          for (float& v : pool) v = 2.0f * g(rng);
          std::vector<const float*> k_rows, v_rows;
          for (int64_t j = 0; j < n; ++j) {
            const int64_t slot = (j * 7 + 3) % n;
            k_rows.push_back(pool.data() + slot * row_floats);
            v_rows.push_back(pool.data() + (n + slot) * row_floats);
          }
          std::vector<float> q(static_cast<size_t>(group * d));
          for (float& v : q) v = g(rng);
          const float scale = 1.0f / std::sqrt(static_cast<float>(d));
          std::vector<float> want(q.size()), got(q.size(), NAN);
          ref::AttendGroup(q.data(), group, d, k_rows.data(), v_rows.data(), d, n, scale, softcap, want.data());
          ops::AttendGroup(q.data(), group, d, k_rows.data(), v_rows.data(), d, n, scale, softcap, &scratch,
                           got.data());
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-4f * std::fabs(want[i]))
                << "d " << d << " group " << group << " n " << n << " softcap " << softcap << " i " << i;
          }
        }
      }
    }
  }
}

// The CPU backend's Attention hands AttendGroup a whole KV group of heads when the batch has
// enough tokens to keep every thread busy, single heads otherwise (a decode step). A head's output
// must not depend on that choice, or a token's attention would depend on the batch size.
TEST(CpuAttention, AHeadsOutputDoesNotDependOnTheHeadsAttendedWithIt) {
  std::mt19937 rng(13);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> scratch;
  for (int64_t d : {7, 64}) {
    for (int64_t n : {1, 5, 40}) {
      for (float softcap : {0.0f, 5.0f}) {
        const int64_t group = 4;
        std::vector<float> k(static_cast<size_t>(n * d)), v(k.size());
        for (float& x : k) x = 2.0f * g(rng);
        for (float& x : v) x = g(rng);
        std::vector<const float*> k_rows, v_rows;
        for (int64_t j = 0; j < n; ++j) {
          k_rows.push_back(k.data() + j * d);
          v_rows.push_back(v.data() + j * d);
        }
        std::vector<float> q(static_cast<size_t>(group * d));
        for (float& x : q) x = g(rng);
        std::vector<float> together(q.size()), one(static_cast<size_t>(d));
        ops::AttendGroup(q.data(), group, d, k_rows.data(), v_rows.data(), 0, n, 0.125f, softcap,
                         &scratch, together.data());
        for (int64_t h = 0; h < group; ++h) {
          ops::AttendGroup(q.data() + h * d, 1, d, k_rows.data(), v_rows.data(), 0, n, 0.125f,
                           softcap, &scratch, one.data());
          ASSERT_EQ(0, std::memcmp(one.data(), together.data() + h * d, d * sizeof(float)))
              << "d " << d << " n " << n << " softcap " << softcap << " head " << h;
        }
      }
    }
  }
}

}  // namespace
}  // namespace gemma_local
