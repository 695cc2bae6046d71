// KV cache of the engine: per layer that owns K/V, per sequence, a block table over fixed-size
// blocks of rows (ops/kv_view.h).
//
// Memory follows the sequences: Reserve allocates the blocks a batch will write before the
// forward pass (the only place that can fail: out of the configured positions), Commit advances
// the length afterwards and hands back the blocks of sliding-window layers that no later
// position can read (every position before pos - window + 1 of the next token), so a sliding
// layer holds at most window + batch + one block of rows whatever the context length. Layers that
// read another layer's K/V (Gemma 4 KV sharing) own nothing. Freed blocks are kept for reuse by
// the same layer.
//
// The scheduler's paged pool (one budget for every request, prefix sharing, preemption) will
// replace the per-cache allocation behind the same KvView. Not thread-safe: one forward pass at a
// time per cache.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "gemma_local/status.h"
#include "model/hparams.h"
#include "ops/batch.h"
#include "ops/kv_view.h"

namespace gemma_local {

class KvCache final : public KvView {
 public:
  static constexpr int64_t kDefaultBlockRows = 16;

  explicit KvCache(const HParams& hp, int64_t block_rows = kDefaultBlockRows);

  // Makes rows for `n` positions of `seq` after its current length (idempotent up to the largest
  // reservation since the last Commit).
  Status Reserve(int32_t seq, int64_t n);
  // Reserve for every sequence in `batch` (its entries per sequence).
  Status Reserve(const Batch& batch);
  // `n` more positions of `seq` hold valid K/V (they must have been reserved).
  void Commit(int32_t seq, int64_t n);
  void Commit(const Batch& batch);
  // Forgets a sequence and frees its blocks.
  void Clear(int32_t seq);
  // Makes `to` a copy of `from`'s committed positions (for n > 1 samples of one prompt; `to` is
  // cleared first). Copies the blocks: sharing them copy-on-write is the scheduler's paged pool.
  Status Fork(int32_t from, int32_t to);

  int64_t Length(int32_t seq) const override;
  int64_t Reserved(int32_t seq) const override;
  KvBlockTable Table(int64_t layer, int32_t seq) const override;

  // Bytes of K/V blocks held by sequences (not counting the free lists).
  int64_t BytesInUse() const;
  int64_t block_rows() const { return block_rows_; }

 private:
  struct LayerGeometry {
    int64_t row_elems = 0;  // 0: the layer owns no K/V
    int64_t window = 0;     // > 0: sliding window (positions a token sees, itself included)
  };
  struct SeqLayer {
    std::vector<float*> k, v;  // by block index; null = dropped
  };
  struct Sequence {
    int64_t length = 0;
    int64_t reserved = 0;
    std::vector<SeqLayer> layers;  // by layer
  };
  float* TakeBlock(int64_t layer);
  void GiveBlock(int64_t layer, float* block);

  int64_t block_rows_;
  std::vector<LayerGeometry> geometry_;
  std::map<int32_t, Sequence> seqs_;
  std::vector<std::vector<std::unique_ptr<float[]>>> storage_;  // by layer: every block ever made
  std::vector<std::vector<float*>> free_;                       // by layer: blocks to reuse
  int64_t blocks_in_use_bytes_ = 0;
};

}  // namespace gemma_local
