// The paged KV cache: one pool of fixed-size blocks for every sequence of the
// engine, under a byte budget, with a block table per sequence (ops/kv_view.h).
//
// Geometry. Layers that own K/V fall into groups by attention kind: the
// full-attention layers and the sliding-window layers. A block of a group holds
// `block_rows` positions of every layer in it (K then V per layer), so one
// table per group serves all its layers and a group's blocks are allocated and
// dropped together. Layers that read another layer's K/V (Gemma 4 KV sharing)
// own nothing. Rows are stored as the options' KvType (f16 by default; sizes
// are KvRowBytes of it), the same for every layer.
//
// Memory. Reserve takes the blocks a batch will write before the forward pass,
// all or nothing: it is the only call that can fail (kResourceExhausted when
// the budget cannot hold them), so the forward pass never allocates KV. Commit
// advances the length and hands back the blocks of the sliding group that no
// later position can read (every position before pos - window + 1 of the next
// token): a sliding sequence holds at most ceil((window - 1 + chunk) /
// block_rows) + 1 blocks whatever its length. Freed blocks go to their group's
// free list and are reused without touching the system allocator; a group short
// of blocks releases the other group's free ones when the budget is reached.
// The budget bounds the bytes of blocks allocated at any time.
//
// Prefix caching. Every full block a sequence commits is registered under a
// hash of (the parent block's hash, its tokens, the KV type); a new sequence
// attaches the longest registered prefix of its tokens (AttachPrefix) instead
// of recomputing it. Blocks carry reference counts: a block several sequences
// hold is never written (only positions past a sequence's length are written,
// and a shared prefix ends on a block boundary; Fork copies the partial last
// block). A registered block nobody holds stays cached and is evicted least
// recently released first, only when a block is needed and the budget allows no
// new one. Sliding-window layers: a prefix hit is shortened until the blocks
// its window still needs are all cached. Not thread-safe: the engine's
// scheduler thread owns the cache; geometry queries (BytesForSequence,
// GroupBlockBytes, budget_bytes) read only what the constructor fixed and may
// run on any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gemma_local/status.h"
#include "model/hparams.h"
#include "ops/batch.h"
#include "ops/kv_view.h"

namespace gemma_local {

struct KvCacheOptions {
  int64_t block_rows = 16;
  int64_t budget_bytes = 0;    // most bytes of blocks allocated at once; 0 = no limit
  bool prefix_caching = true;  // false: nothing is registered, AttachPrefix never hits
  KvType type = KvType::kF16;  // how rows are stored (KvCache::Validate must accept it)
};

struct KvCacheStats {
  int64_t blocks_in_use = 0;  // held by sequences (a shared block counts once)
  int64_t blocks_free = 0;    // allocated, held by nobody, not cached
  int64_t blocks_cached = 0;  // held by nobody, kept for prefix hits (evictable)
  int64_t bytes_in_use = 0;
  int64_t bytes_allocated = 0;     // in use + free lists
  int64_t budget_bytes = 0;        // 0 = no limit
  int64_t system_allocations = 0;  // blocks ever obtained from the system allocator
  int64_t prefix_queries = 0;      // positions looked up by AttachPrefix
  int64_t prefix_hits = 0;         // positions it found cached
  int64_t evictions = 0;           // cached blocks reused for other positions
};

class KvCache final : public KvView {
 public:
  static constexpr int64_t kDefaultBlockRows = 16;

  // Whether rows of `hp`'s layers can be stored as `type`: q8_0 needs every head of a layer
  // that owns K/V to be whole 32-element blocks (head_dim % 32 == 0). kInvalidArgument naming
  // the layer, its head_dim and the types that work otherwise. Engine::Open calls it.
  static Status Validate(const HParams& hp, KvType type);

  // Precondition: Validate(hp, options.type) is ok. A type it refuses is replaced by f16 (which
  // fits every layer), so a caller that skipped the check gets a working cache, never rows that
  // straddle heads; type() says what is stored.
  explicit KvCache(const HParams& hp, int64_t block_rows = kDefaultBlockRows);
  KvCache(const HParams& hp, const KvCacheOptions& options);
  ~KvCache() override;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Makes rows for `n` positions of `seq` after its current length (idempotent
  // up to the largest reservation since the last Commit). All or nothing.
  Status Reserve(int32_t seq, int64_t n);
  // Reserve for every sequence in `batch` (its entries per sequence); all or
  // nothing.
  Status Reserve(const Batch& batch);
  // Bytes that Reserve(seq, n) would take from the pool now (0 when already
  // reserved).
  int64_t BytesToReserve(int32_t seq, int64_t n) const;
  // Bytes the pool can still hand out (budget minus bytes in use; INT64_MAX
  // without a budget).
  int64_t BytesAvailable() const;
  // The most bytes one sequence of `positions` positions holds at any time when
  // it is fed in chunks of at most `chunk` positions (admission: can a request
  // ever fit in the budget).
  int64_t BytesForSequence(int64_t positions, int64_t chunk) const;

  // `n` more positions of `seq` hold valid K/V (they must have been reserved).
  // Commit(seq, n) knows no tokens: the sequence's later blocks are not
  // registered for prefix hits.
  void Commit(int32_t seq, int64_t n);
  // Commits every sequence of `batch` and registers the blocks it completed.
  void Commit(const Batch& batch);
  // Starts sequence `seq` (which must not exist) from the longest cached prefix
  // of `tokens` that ends on a block boundary, at most `max_positions` long;
  // returns its length (0: no hit).
  int64_t AttachPrefix(int32_t seq, std::span<const int32_t> tokens, int64_t max_positions);
  // Forgets a sequence and releases its blocks.
  void Clear(int32_t seq);
  // Makes `to` a copy of `from`'s committed positions (`to` is cleared first):
  // full blocks are shared, the partial last block is copied.
  Status Fork(int32_t from, int32_t to);

  int64_t Length(int32_t seq) const override;
  int64_t Reserved(int32_t seq) const override;
  KvBlockTable Table(int64_t layer, int32_t seq) const override;

  // Bytes of K/V blocks held by sequences (not counting the free lists).
  int64_t BytesInUse() const { return bytes_in_use_; }
  KvCacheStats Stats() const;
  int64_t block_rows() const { return block_rows_; }
  KvType type() const { return type_; }
  int64_t budget_bytes() const { return budget_bytes_; }
  // Bytes of one block of each group (in the order its first layer appears);
  // for reports.
  std::vector<int64_t> GroupBlockBytes() const;

 private:
  struct BlockRecord {
    std::unique_ptr<uint8_t[]> data;  // null: released to the system (the id is spare)
    int refs = 0;                   // sequences holding the block
    bool registered = false;        // in the prefix registry under `hash`
    uint64_t hash = 0;
    int32_t lru_prev = -1, lru_next = -1;  // among cached blocks nobody holds
    bool in_lru = false;
  };
  struct Group {
    int64_t window = 0;       // > 0: sliding window (positions a token sees, itself included)
    int64_t block_bytes = 0;  // block_rows * sum over layers of 2 * row_bytes
    std::vector<BlockRecord> blocks;  // by block id
    std::vector<int32_t> free_ids;    // allocated, held by nobody
    std::vector<int32_t> spare_ids;   // records without memory
    int32_t lru_oldest = -1,
            lru_newest = -1;  // cached blocks nobody holds, by release time
    int64_t lru_size = 0;
  };
  // A registered block: what it holds (checked on every hit, so a hash
  // collision is a miss) and its block in each group (-1: that group's block is
  // not cached).
  struct PrefixEntry {
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
    std::vector<int32_t> ids;
  };
  struct LayerSlot {
    int group = -1;  // -1: the layer owns no K/V
    int64_t row_elems = 0;
    int64_t row_bytes = 0;
    int64_t k_offset = 0, v_offset = 0;  // bytes from a block's base
  };
  struct SeqGroup {
    std::vector<int32_t> ids;   // by block index; -1 = dropped
    std::vector<uint8_t*> bases;  // the same blocks' memory (null = dropped), for the tables
  };
  struct Sequence {
    int64_t length = 0;
    int64_t reserved = 0;
    std::vector<SeqGroup> groups;  // by group
    // Prefix registration: the hash of each full block, the tokens of the
    // partial one.
    bool tracked = true;  // false once a Commit came without tokens
    std::vector<uint64_t> hashes;
    std::vector<int32_t> partial;
  };

  int64_t BlockBytes(int g) const { return groups_[g].block_bytes; }
  // Blocks group `g` of `s` (null: a new sequence) needs added to hold `want`
  // positions.
  int64_t MissingBlocks(const Sequence* s, int g, int64_t want) const;
  int32_t TakeBlock(int g);  // the caller checked the budget
  void DropRef(int g, int32_t id);
  void AddRef(int g, int32_t id);
  void CommitTokens(int32_t seq, int64_t n, std::span<const int32_t> tokens, bool with_tokens);
  // Fills batch_counts_ from `batch`.
  void CountBatch(const Batch& batch);
  void LruRemove(int g, int32_t id);
  // Drops a cached block nobody holds from the registry; its memory stays with
  // the record.
  void Evict(int g, int32_t id);
  uint64_t BlockHash(uint64_t parent, std::span<const int32_t> tokens) const;
  // Registers the block `index` of `s` just completed with `tokens`.
  void Register(Sequence& s, size_t index, std::span<const int32_t> tokens);
  const PrefixEntry* Lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) const;

  int64_t block_rows_;
  KvType type_;
  int64_t budget_bytes_;
  bool prefix_caching_;
  std::vector<Group> groups_;
  std::vector<LayerSlot> layers_;
  std::map<int32_t, Sequence> seqs_;
  // Reused by Reserve(batch) / Commit(batch): (sequence, entries) in order of first appearance,
  // and one sequence's tokens.
  std::vector<std::pair<int32_t, int64_t>> batch_counts_;
  std::vector<int32_t> batch_tokens_;
  std::unordered_map<uint64_t, PrefixEntry> registry_;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0, evictions_ = 0;
  int64_t blocks_in_use_ = 0;
  int64_t bytes_in_use_ = 0;
  int64_t bytes_allocated_ = 0;
  int64_t system_allocations_ = 0;
};

}  // namespace gemma_local
