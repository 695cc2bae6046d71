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
    if (p < 28) {
      EXPECT_EQ(cache.Table(1, 5).KRow(p), cache.Table(1, 0).KRow(p)) << "full blocks are shared";
    } else {
      EXPECT_NE(cache.Table(1, 5).KRow(p), cache.Table(1, 0).KRow(p)) << "the partial block is copied";
    }
  }
  // Writing past the fork point touches only the fork's own blocks.
  ASSERT_TRUE(cache.Reserve(5, 1).ok());
  cache.Table(1, 5).KRow(30)[0] = 99.0f;
  EXPECT_EQ(cache.Table(1, 0).KRow(29)[0], 29.0f);
  cache.Clear(0);
  EXPECT_EQ(cache.Table(1, 5).KRow(3)[0], 3.0f) << "shared blocks live while a holder does";
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

namespace gemma_local {
namespace {

TEST(KvCache, TheBudgetBoundsAllocatedBlocksAndAFailedReserveTakesNothing) {
  HParams hp = *testgen::PresetShape("tiny");  // one sliding layer (window 8), one full; kv dim 32
  KvCacheOptions opt;
  opt.block_rows = 4;
  const int64_t block = 2 * 4 * 32 * 4;  // K and V of one layer, 4 rows of 32 floats
  opt.budget_bytes = 10 * block;
  KvCache cache(hp, opt);
  EXPECT_EQ(cache.GroupBlockBytes(), (std::vector<int64_t>{block, block}));
  EXPECT_EQ(cache.BytesToReserve(0, 8), 4 * block);  // 2 blocks in each group
  ASSERT_TRUE(cache.Reserve(0, 8).ok());
  cache.Commit(0, 8);
  // 16 more positions: 4 full blocks + 4 sliding (the window's dead blocks go only at Commit).
  const Status s = cache.Reserve(0, 16);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("budget"), std::string::npos) << s.ToString();
  EXPECT_EQ(cache.Reserved(0), 8) << "a failed reservation takes nothing";
  EXPECT_EQ(cache.BytesInUse(), 4 * block);
  // A batch for two sequences is checked as a whole.
  Batch two;
  for (int64_t p = 0; p < 12; ++p) two.push_back({1, p, 2, false});
  for (int64_t p = 8; p < 12; ++p) two.push_back({0, p, 2, false});
  EXPECT_EQ(cache.Reserve(two).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(cache.Reserved(1), 0);
  // Freed blocks are reused; the other group's free blocks are released to make room.
  cache.Clear(0);
  EXPECT_EQ(cache.BytesInUse(), 0);
  const int64_t allocations = cache.Stats().system_allocations;
  ASSERT_TRUE(cache.Reserve(0, 8).ok());
  EXPECT_EQ(cache.Stats().system_allocations, allocations) << "reused from the free lists";
  cache.Clear(0);
  ASSERT_TRUE(cache.Reserve(2, 4).ok());
  EXPECT_EQ(cache.BytesForSequence(40, 4), 10 * block + 4 * block);  // window 7 + chunk 4 over 4 blocks
  EXPECT_LE(cache.Stats().bytes_allocated, opt.budget_bytes);
  cache.Clear(2);
  EXPECT_EQ(cache.Stats().blocks_in_use, 0);
}

TEST(KvCache, Gemma4SharedLayersOwnNoBlocks) {
  HParams hp = *testgen::PresetShape("g4-e2b-like");
  KvCache cache(hp);
  ASSERT_TRUE(cache.Reserve(0, 1).ok());
  int64_t expected = 0;
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) {
      EXPECT_EQ(cache.Table(l, 0).KRow(0), nullptr) << "layer " << l << " reads layer " << hp.kv_source[l];
      continue;
    }
    expected += 2 * 16 * hp.n_kv_heads[l] * hp.head_dim[l] * 4;
    EXPECT_NE(cache.Table(l, 0).KRow(0), nullptr);
  }
  EXPECT_EQ(cache.BytesInUse(), expected);
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

// Fills positions [from, to) of `seq` through Reserve/Commit(batch) with K = position, as the
// engine does (Commit with the batch's tokens registers full blocks).
void Feed(KvCache& cache, const HParams& hp, int32_t seq, const std::vector<int32_t>& tokens, int64_t from, int64_t to) {
  Batch b;
  for (int64_t p = from; p < to; ++p) b.push_back({seq, p, tokens[static_cast<size_t>(p)], false});
  ASSERT_TRUE(cache.Reserve(b).ok());
  for (int64_t p = from; p < to; ++p) WriteRow(cache, hp, seq, p);
  cache.Commit(b);
}

TEST(KvCachePrefix, ASecondSequenceReusesTheFullBlocksOfACommonPrefix) {
  HParams hp = *testgen::PresetShape("all-global");  // no sliding layers
  KvCache cache(hp, 4);
  std::vector<int32_t> a(22), b(22);
  for (int i = 0; i < 22; ++i) a[i] = b[i] = 100 + i;
  for (int i = 13; i < 22; ++i) b[i] = 500 + i;  // b shares a's first 13 tokens
  Feed(cache, hp, 0, a, 0, 22);
  EXPECT_EQ(cache.AttachPrefix(1, b, 21), 12) << "three full blocks of four";
  EXPECT_EQ(cache.Length(1), 12);
  EXPECT_EQ(cache.Table(0, 1).KRow(11), cache.Table(0, 0).KRow(11)) << "shared, not copied";
  Feed(cache, hp, 1, b, 12, 22);
  EXPECT_NE(cache.Table(0, 1).KRow(12), cache.Table(0, 0).KRow(12));
  // Released blocks stay cached: a third sequence with a's tokens hits all five full blocks
  // (the limit keeps the last position for it to compute).
  cache.Clear(0);
  cache.Clear(1);
  EXPECT_EQ(cache.BytesInUse(), 0);
  EXPECT_GT(cache.Stats().blocks_cached, 0);
  EXPECT_EQ(cache.AttachPrefix(2, a, 21), 20);
  for (int64_t p = 0; p < 20; ++p) EXPECT_EQ(cache.Table(0, 2).KRow(p)[0], static_cast<float>(p));
  EXPECT_EQ(cache.AttachPrefix(2, a, 21), 0) << "only for a new sequence";
  std::vector<int32_t> c = a;
  c[0] = 7;  // a different first token changes every block's hash
  EXPECT_EQ(cache.AttachPrefix(3, c, 21), 0);
  const KvCacheStats st = cache.Stats();
  EXPECT_EQ(st.prefix_hits, 12 + 20);
}

TEST(KvCachePrefix, SlidingLayersShortenTheHitToWhatTheirWindowHas) {
  HParams hp = *testgen::PresetShape("tiny");  // layer 0 sliding, window 8
  KvCacheOptions opt;
  opt.block_rows = 4;
  KvCache cache(hp, opt);
  std::vector<int32_t> a(40);
  for (int i = 0; i < 40; ++i) a[i] = 100 + i;
  Feed(cache, hp, 0, a, 0, 40);  // sliding blocks before the window were dropped, but stay cached
  EXPECT_EQ(cache.AttachPrefix(1, a, 39), 36);
  // Position 36 sees 29..36 in the sliding layer: blocks 7 and 8 (rows 28..35) attached, the
  // earlier ones not.
  EXPECT_EQ(cache.Table(0, 1).KRow(27), nullptr);
  EXPECT_EQ(cache.Table(0, 1).KRow(28)[0], 28.0f);
  EXPECT_EQ(cache.Table(1, 1).KRow(0)[0], 0.0f);
}

TEST(KvCachePrefix, EvictionUnderTheBudgetTakesCachedBlocksOldestFirst) {
  HParams hp = *testgen::PresetShape("all-global");
  KvCache probe(hp, 4);
  const int64_t block = probe.GroupBlockBytes()[0];
  KvCacheOptions opt;
  opt.block_rows = 4;
  opt.budget_bytes = 6 * block;
  KvCache cache(hp, opt);
  std::vector<int32_t> a(17), b(17);
  for (int i = 0; i < 17; ++i) a[i] = 100 + i, b[i] = 300 + i;
  Feed(cache, hp, 0, a, 0, 16);
  cache.Clear(0);  // 4 cached blocks
  EXPECT_EQ(cache.Stats().blocks_cached, 4);
  Feed(cache, hp, 1, b, 0, 16);  // needs 4: 2 new under the budget, then the 2 oldest cached
  EXPECT_EQ(cache.Stats().evictions, 2);
  EXPECT_LE(cache.Stats().bytes_allocated, opt.budget_bytes);
  EXPECT_EQ(cache.AttachPrefix(2, a, 16), 0) << "a's first blocks were evicted: the chain is broken";
  cache.Clear(1);
  EXPECT_EQ(cache.AttachPrefix(3, b, 15), 12) << "a hit ends on a block boundary within the limit";
}

}  // namespace
}  // namespace gemma_local
