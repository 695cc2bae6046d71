#include "runtime/kv_cache.h"

#include <gtest/gtest.h>

#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

// Writes position p's K/V (first element p, -p) for every layer that owns storage.
void WriteRow(const KvCache& cache, const HParams& hp, int32_t seq, int64_t p) {
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) continue;
    const KvBlockTable t = cache.Table(l, seq);
    ASSERT_NE(t.KRow(p), nullptr) << "layer " << l << " position " << p;
    t.KRow(p)[0] = static_cast<float>(p);
    t.VRow(p)[0] = static_cast<float>(-p);
  }
}

TEST(KvCache, FullLayersKeepEverythingSlidingLayersDropBlocksBeforeTheWindow) {
  HParams hp = *testgen::PresetShape("tiny");  // layer 0 sliding (window 8), layer 1 full; kv dim 32
  KvCache cache(hp, /*block_rows=*/4);
  for (int64_t p = 0; p < 40; p += 5) {  // chunks of 5 positions
    ASSERT_TRUE(cache.Reserve(1, 5).ok());
    EXPECT_EQ(cache.Reserved(1), p + 5);
    for (int64_t q = p; q < p + 5; ++q) WriteRow(cache, hp, 1, q);
    cache.Commit(1, 5);
  }
  EXPECT_EQ(cache.Length(1), 40);
  EXPECT_EQ(cache.Length(0), 0);
  const KvBlockTable full = cache.Table(1, 1);
  for (int64_t p = 0; p < 40; ++p) {
    ASSERT_NE(full.KRow(p), nullptr);
    EXPECT_EQ(full.KRow(p)[0], static_cast<float>(p));
    EXPECT_EQ(full.VRow(p)[0], static_cast<float>(-p));
  }
  // The next token (40) sees 33..40: blocks of rows 32.. stay, earlier ones are gone.
  const KvBlockTable sliding = cache.Table(0, 1);
  for (int64_t p = 32; p < 40; ++p) EXPECT_EQ(sliding.KRow(p)[0], static_cast<float>(p)) << p;
  EXPECT_EQ(sliding.KRow(31), nullptr);
  EXPECT_EQ(full.KRow(40), nullptr);
  // 10 full-layer blocks + 2 sliding ones, K and V, 4 rows of 32 floats.
  EXPECT_EQ(cache.BytesInUse(), (10 + 2) * 2 * 4 * 32 * 4);
  cache.Clear(1);
  EXPECT_EQ(cache.Length(1), 0);
  EXPECT_EQ(cache.BytesInUse(), 0);
  EXPECT_EQ(cache.Table(1, 1).KRow(0), nullptr);
}

TEST(KvCache, ABatchLongerThanTheWindowKeepsEveryRowItWrites) {
  // The old ring cache held window + max_batch rows: a longer batch overwrote rows attention still
  // read. Blocks are only dropped on Commit, after the batch.
  HParams hp = *testgen::PresetShape("tiny");
  KvCache cache(hp, 4);
  ASSERT_TRUE(cache.Reserve(0, 50).ok());
  for (int64_t p = 0; p < 50; ++p) WriteRow(cache, hp, 0, p);
  for (int64_t p = 0; p < 50; ++p) EXPECT_EQ(cache.Table(0, 0).KRow(p)[0], static_cast<float>(p));
  cache.Commit(0, 50);
  // Position 50 sees 43..50: the block of rows 40..43 stays, rows before 40 are gone.
  EXPECT_EQ(cache.Table(0, 0).KRow(39), nullptr);
  EXPECT_NE(cache.Table(0, 0).KRow(40), nullptr);
}

TEST(KvCache, ForkCopiesTheCommittedRows) {
  HParams hp = *testgen::PresetShape("tiny");
  KvCache cache(hp, 4);
  ASSERT_TRUE(cache.Reserve(0, 30).ok());
  for (int64_t p = 0; p < 30; ++p) WriteRow(cache, hp, 0, p);
  cache.Commit(0, 30);
  ASSERT_TRUE(cache.Fork(0, 5).ok());
  EXPECT_EQ(cache.Length(5), 30);
  for (int64_t p = 0; p < 30; ++p) {
    EXPECT_EQ(cache.Table(1, 5).KRow(p)[0], static_cast<float>(p));
    EXPECT_NE(cache.Table(1, 5).KRow(p), cache.Table(1, 0).KRow(p)) << "copied, not shared";
  }
  EXPECT_EQ(cache.Table(0, 5).KRow(19), nullptr);  // outside the sliding window, as in the source
  EXPECT_EQ(cache.Table(0, 5).KRow(29)[0], 29.0f);
  EXPECT_FALSE(cache.Fork(9, 6).ok());
  EXPECT_FALSE(cache.Fork(0, 0).ok());
}

TEST(KvCache, CommitIsBoundedByTheReservation) {
  HParams hp = *testgen::PresetShape("tiny");
  KvCache cache(hp);
  EXPECT_FALSE(cache.Reserve(0, -1).ok());
  ASSERT_TRUE(cache.Reserve(0, 3).ok());
  cache.Commit(0, 10);
  EXPECT_EQ(cache.Length(0), 3);
  cache.Commit(7, 1);  // unknown sequence: nothing happens
  EXPECT_EQ(cache.Length(7), 0);
}

}  // namespace
}  // namespace gemma_local
