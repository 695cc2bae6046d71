#include "runtime/kv_cache.h"

#include <gtest/gtest.h>

#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

TEST(SimpleKvCache, FullLayersKeepEverythingSlidingLayersKeepTheWindow) {
  HParams hp = *testgen::PresetShape("tiny");  // layer 0 sliding (window 8), layer 1 full; kv dim 32
  SimpleKvCache cache(hp, 2, /*max_context=*/64, /*max_batch=*/4);
  std::vector<float> k(32), v(32);
  for (int64_t p = 0; p < 40; ++p) {
    k[0] = static_cast<float>(p);
    v[0] = static_cast<float>(-p);
    ASSERT_TRUE(cache.Write(0, 1, p, k.data(), v.data()).ok());
    ASSERT_TRUE(cache.Write(1, 1, p, k.data(), v.data()).ok());
  }
  EXPECT_EQ(cache.Length(1), 40);
  EXPECT_EQ(cache.Length(0), 0);
  for (int64_t p = 0; p < 40; ++p) {
    ASSERT_NE(cache.K(1, 1, p), nullptr);
    EXPECT_EQ(cache.K(1, 1, p)[0], static_cast<float>(p));
    EXPECT_EQ(cache.V(1, 1, p)[0], static_cast<float>(-p));
  }
  // Ring of window + max_batch = 12 positions.
  for (int64_t p = 28; p < 40; ++p) EXPECT_EQ(cache.K(0, 1, p)[0], static_cast<float>(p)) << p;
  EXPECT_EQ(cache.K(0, 1, 27), nullptr);
  EXPECT_EQ(cache.K(1, 1, 40), nullptr);
  cache.Clear(1);
  EXPECT_EQ(cache.Length(1), 0);
  EXPECT_EQ(cache.K(1, 1, 0), nullptr);
}

TEST(SimpleKvCache, ErrorsInsteadOfOverflow) {
  HParams hp = *testgen::PresetShape("tiny");
  SimpleKvCache cache(hp, 1, 4, 2);
  std::vector<float> k(32), v(32);
  EXPECT_FALSE(cache.Write(1, 3, 0, k.data(), v.data()).ok());   // no such sequence
  EXPECT_EQ(cache.Write(1, 0, 4, k.data(), v.data()).code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace gemma_local
