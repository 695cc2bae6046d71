#include "runtime/kv_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "gemma_local/model_info.h"
#include "ops/reference/quant_ref.h"
#include "runtime_test_support.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

// Stores `value` as element 0 of a row (the others 0) in the table's type.
void Store(const KvBlockTable& t, uint8_t* row, float value) {
  std::vector<float> x(static_cast<size_t>(t.row_elems), 0.0f);
  x[0] = value;
  StoreKvRow(t.type, x.data(), t.row_elems, row);
}

// Element 0 of a stored row as f32.
float First(const KvBlockTable& t, const uint8_t* row) {
  std::vector<float> x(static_cast<size_t>(t.row_elems));
  LoadKvRow(t.type, row, t.row_elems, x.data());
  return x[0];
}
float FirstK(const KvBlockTable& t, int64_t p) { return First(t, t.KRow(p)); }

// Writes position p's K/V (first element p, -p: exact in f32 and f16) for every layer that owns
// storage.
void WriteRow(const KvCache& cache, const HParams& hp, int32_t seq, int64_t p) {
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) continue;
    const KvBlockTable t = cache.Table(l, seq);
    ASSERT_NE(t.KRow(p), nullptr) << "layer " << l << " position " << p;
    Store(t, t.KRow(p), static_cast<float>(p));
    Store(t, t.VRow(p), static_cast<float>(-p));
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
    EXPECT_EQ(FirstK(full, p), static_cast<float>(p));
    EXPECT_EQ(First(full, full.VRow(p)), static_cast<float>(-p));
  }
  // The next token (40) sees 33..40: blocks of rows 32.. stay, earlier ones are gone.
  const KvBlockTable sliding = cache.Table(0, 1);
  for (int64_t p = 32; p < 40; ++p) EXPECT_EQ(FirstK(sliding, p), static_cast<float>(p)) << p;
  EXPECT_EQ(sliding.KRow(31), nullptr);
  EXPECT_EQ(full.KRow(40), nullptr);
  // 10 full-layer blocks + 2 sliding ones, K and V, 4 rows of 32 f16 (the default type).
  EXPECT_EQ(cache.type(), KvType::kF16);
  EXPECT_EQ(cache.BytesInUse(), (10 + 2) * 2 * 4 * 32 * 2);
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
  for (int64_t p = 0; p < 50; ++p) EXPECT_EQ(FirstK(cache.Table(0, 0), p), static_cast<float>(p));
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
    EXPECT_EQ(FirstK(cache.Table(1, 5), p), static_cast<float>(p));
    if (p < 28) {
      EXPECT_EQ(cache.Table(1, 5).KRow(p), cache.Table(1, 0).KRow(p)) << "full blocks are shared";
    } else {
      EXPECT_NE(cache.Table(1, 5).KRow(p), cache.Table(1, 0).KRow(p)) << "the partial block is copied";
    }
  }
  // Writing past the fork point touches only the fork's own blocks.
  ASSERT_TRUE(cache.Reserve(5, 1).ok());
  Store(cache.Table(1, 5), cache.Table(1, 5).KRow(30), 99.0f);
  EXPECT_EQ(FirstK(cache.Table(1, 0), 29), 29.0f);
  cache.Clear(0);
  EXPECT_EQ(FirstK(cache.Table(1, 5), 3), 3.0f) << "shared blocks live while a holder does";
  EXPECT_EQ(cache.Table(0, 5).KRow(19), nullptr);  // outside the sliding window, as in the source
  EXPECT_EQ(FirstK(cache.Table(0, 5), 29), 29.0f);
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
  const int64_t block = 2 * 4 * 32 * 2;  // K and V of one layer, 4 rows of 32 f16
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
    expected += 2 * 16 * hp.n_kv_heads[l] * hp.head_dim[l] * 2;  // f16
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
  for (int64_t p = 0; p < 20; ++p) EXPECT_EQ(FirstK(cache.Table(0, 2), p), static_cast<float>(p));
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
  EXPECT_EQ(FirstK(cache.Table(0, 1), 28), 28.0f);
  EXPECT_EQ(FirstK(cache.Table(1, 1), 0), 0.0f);
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

namespace gemma_local {
namespace {

constexpr KvType kAllTypes[] = {KvType::kF32, KvType::kF16, KvType::kQ8_0};

// Rows go in as f32 and are kept in the cache's type: the bytes are those of the reference
// conversion (ref::QuantizeBlocks, GGML's layouts), blocks are sized in those bytes, and a fork
// copies them unchanged.
TEST(KvCacheTypes, RowsAreStoredInTheCacheTypeAndSizedInItsBytes) {
  const HParams hp = *testgen::PresetShape("tiny");  // head_dim 32, 1 KV head: rows of 32
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (KvType type : kAllTypes) {
    SCOPED_TRACE(KvTypeName(type));
    KvCacheOptions opt;
    opt.block_rows = 4;
    opt.type = type;
    ASSERT_TRUE(KvCache::Validate(hp, type).ok());
    KvCache cache(hp, opt);
    EXPECT_EQ(cache.type(), type);
    const int64_t row_bytes = KvRowBytes(type, 32);
    EXPECT_EQ(row_bytes, type == KvType::kF32 ? 128 : type == KvType::kF16 ? 64 : 34);
    EXPECT_EQ(cache.GroupBlockBytes(),
              (std::vector<int64_t>{2 * 4 * row_bytes, 2 * 4 * row_bytes}));
    ASSERT_TRUE(cache.Reserve(0, 10).ok());
    std::vector<std::vector<float>> k(10);
    for (int64_t p = 0; p < 10; ++p) {
      const KvBlockTable t = cache.Table(1, 0);
      EXPECT_EQ(t.type, type);
      EXPECT_EQ(t.row_bytes, row_bytes);
      k[p].resize(32);
      for (float& x : k[p]) x = g(rng);
      StoreKvRow(type, k[p].data(), 32, t.KRow(p));
      StoreKvRow(type, k[p].data(), 32, t.VRow(p));
    }
    cache.Commit(0, 10);
    EXPECT_EQ(cache.BytesInUse(), 2 * 3 * 2 * 4 * row_bytes);  // 3 blocks in each group
    ASSERT_TRUE(cache.Fork(0, 1).ok());
    for (int64_t p = 0; p < 10; ++p) {
      std::vector<uint8_t> want(static_cast<size_t>(row_bytes));
      ref::QuantizeBlocks(KvDType(type), k[p].data(), 32, want.data());
      for (int32_t seq : {0, 1}) {
        const KvBlockTable t = cache.Table(1, seq);
        EXPECT_EQ(0, std::memcmp(t.KRow(p), want.data(), want.size()))
            << "seq " << seq << " position " << p;
        EXPECT_EQ(0, std::memcmp(t.VRow(p), want.data(), want.size()))
            << "seq " << seq << " position " << p;
      }
      // Read back within the type's rounding: exact, 2^-11 relative, half a q8_0 step (+ its f16
      // scale's rounding).
      std::vector<float> back(32);
      LoadKvRow(type, cache.Table(1, 0).KRow(p), 32, back.data());
      float amax = 0;
      for (float x : k[p]) amax = std::max(amax, std::fabs(x));
      for (size_t i = 0; i < 32; ++i) {
        const float tol = type == KvType::kF32 ? 0.0f
                          : type == KvType::kF16
                              ? std::fabs(k[p][i]) * 0x1p-11f
                              : amax / 127.0f * 0.502f + std::fabs(k[p][i]) * 0x1p-10f;
        EXPECT_NEAR(back[i], k[p][i], tol) << "position " << p << " element " << i;
      }
    }
  }
}

// f16 rows round to nearest, ties to even (F32ToF16), overflow to infinity.
TEST(KvCacheTypes, F16RowsRoundToNearestEven) {
  const float x[4] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, -65520.0f, 0x1p-25f};
  uint16_t h[4];
  StoreKvRow(KvType::kF16, x, 4, reinterpret_cast<uint8_t*>(h));
  EXPECT_EQ(h[0], 0x3C00);  // the tie goes to the even 1.0
  EXPECT_EQ(h[1], 0x3C02);  // ... and up to the even 1 + 2^-9
  EXPECT_EQ(h[2], 0xFC00);  // -inf
  EXPECT_EQ(h[3], 0x0000);  // half the smallest subnormal ties to 0
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h[i], F32ToF16(x[i])) << i;
}

// q8_0 rows are GGML's quantize_row_q8_0_ref bytes: the input and FNV-1a hash of
// tests/ops/quant_ref_test.cc's LegacyBytesEqualLlamaCpp (bytes checked against llama.cpp).
TEST(KvCacheTypes, Q8_0RowsAreGgmlBytes) {
  std::vector<float> x(512);
  for (int i = 0; i < 512; ++i) {
    x[i] = static_cast<float>((i * 37 % 101) - 50) * 0.013f * static_cast<float>(1 + i % 5) +
           (i / 64 == 3 ? 0.9f : 0.0f);
  }
  std::vector<uint8_t> row(static_cast<size_t>(KvRowBytes(KvType::kQ8_0, 512)));
  ASSERT_EQ(row.size(), 16u * 34u);
  StoreKvRow(KvType::kQ8_0, x.data(), 512, row.data());
  uint64_t h = 1469598103934665603ull;
  for (uint8_t v : row) {
    h ^= v;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(h, 0xc6af53d7dec74ff8ull);
}

TEST(KvCacheTypes, Q8_0NeedsHeadsOfWholeBlocks) {
  const HParams global = *testgen::PresetShape("all-global");  // head_dim 16
  const Status s = KvCache::Validate(global, KvType::kQ8_0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("q8_0"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("head_dim 16"), std::string::npos) << s.ToString();
  EXPECT_TRUE(KvCache::Validate(global, KvType::kF16).ok());
  EXPECT_TRUE(KvCache::Validate(global, KvType::kF32).ok());
  for (const char* preset : {"tiny", "1b-like", "g4-e2b-like"})
    EXPECT_TRUE(KvCache::Validate(*testgen::PresetShape(preset), KvType::kQ8_0).ok()) << preset;
  // A caller that skips Validate gets f16 rows, never q8_0 blocks that straddle heads.
  KvCacheOptions opt;
  opt.type = KvType::kQ8_0;
  EXPECT_EQ(KvCache(global, opt).type(), KvType::kF16);
  // Names.
  EXPECT_EQ(KvTypeFromName("q8_0"), KvType::kQ8_0);
  EXPECT_EQ(KvTypeFromName("f16"), KvType::kF16);
  EXPECT_EQ(KvTypeFromName("f32"), KvType::kF32);
  EXPECT_FALSE(KvTypeFromName("F16").has_value());
  EXPECT_FALSE(KvTypeFromName("q4_0").has_value());
}

// `inspect` reports the KV cache at f16 (kv_bytes_per_token for full-attention layers,
// kv_bytes_per_token_sliding for the window-capped ones). The engine's default pool is f16 too,
// so its admission size for one sequence is what inspect predicts: exactly, over whole blocks,
// without sliding layers; with them, the sliding part lies between the window's rows and the
// pool's bound of ceil((window - 1 + chunk) / block_rows) + 1 blocks.
TEST(KvCacheTypes, F16PoolMatchesInspectsEstimate) {
  for (const char* preset : {"all-global", "tiny", "4b-like", "g4-e2b-like"}) {
    SCOPED_TRACE(preset);
    Result<ModelInfo> info = InspectModel(testing::PresetModelPath(preset));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    const MemoryEstimate& m = info->memory;
    const HParams hp = *testgen::PresetShape(preset);
    for (int64_t block_rows : {int64_t{1}, int64_t{4}, int64_t{16}}) {
      KvCacheOptions opt;
      opt.block_rows = block_rows;
      opt.type = KvType::kF16;
      const KvCache cache(hp, opt);
      for (int64_t n : {int64_t{1}, int64_t{16}, int64_t{37}, int64_t{200}}) {
        for (int64_t chunk : {int64_t{1}, int64_t{8}, int64_t{64}}) {
          const int64_t rows = (n + block_rows - 1) / block_rows * block_rows;
          const int64_t full = static_cast<int64_t>(m.kv_bytes_per_token) * rows;
          const int64_t bytes = cache.BytesForSequence(n, chunk);
          if (m.kv_bytes_per_token_sliding == 0) {
            EXPECT_EQ(bytes, full)
                << "n " << n << " chunk " << chunk << " block_rows " << block_rows;
            continue;
          }
          const auto per = static_cast<int64_t>(m.kv_bytes_per_token_sliding);
          const int64_t window = m.kv_sliding_window;
          const int64_t bound_rows =
              std::min(rows, ((window - 1 + chunk + block_rows - 1) / block_rows + 1) * block_rows);
          EXPECT_GE(bytes - full, per * std::min(n, window))
              << "n " << n << " chunk " << chunk << " block_rows " << block_rows;
          EXPECT_LE(bytes - full, per * bound_rows)
              << "n " << n << " chunk " << chunk << " block_rows " << block_rows;
        }
      }
    }
  }
}

}  // namespace
}  // namespace gemma_local
