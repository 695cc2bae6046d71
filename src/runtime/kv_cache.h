// KV cache: per layer, per sequence, the K and V vectors of every cached position.
//
// KvCache is the interface the forward pass uses; the paged, sliding-window-aware cache of the
// scheduler will implement it later. SimpleKvCache is the first implementation: contiguous
// storage per (layer, sequence); full-attention layers grow with the context, sliding-window
// layers keep a ring of the last `window + max_batch` positions (the batch's own positions must
// stay visible while it is processed). Layers that read another layer's cache (Gemma 4 KV
// sharing) get no storage. Not thread-safe: one forward pass at a time per cache.
#pragma once

#include <cstdint>
#include <vector>

#include "gemma_local/status.h"
#include "model/hparams.h"

namespace gemma_local {

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Stores K and V (each kv_dim(layer) floats) for `pos` of `seq`. Positions of a sequence are
  // written in increasing order without gaps.
  virtual Status Write(int64_t layer, int32_t seq, int64_t pos, const float* k, const float* v) = 0;
  // K or V of `pos`, or nullptr when that position is not held (never written, or evicted from a
  // sliding window).
  virtual const float* K(int64_t layer, int32_t seq, int64_t pos) const = 0;
  virtual const float* V(int64_t layer, int32_t seq, int64_t pos) const = 0;
  // Number of positions written so far for `seq` (0 for an unknown sequence).
  virtual int64_t Length(int32_t seq) const = 0;
  // Forgets a sequence.
  virtual void Clear(int32_t seq) = 0;
};

class SimpleKvCache final : public KvCache {
 public:
  // `max_batch`: the most positions of one sequence a single forward call appends.
  SimpleKvCache(const HParams& hp, int32_t n_seq, int64_t max_context, int64_t max_batch);

  Status Write(int64_t layer, int32_t seq, int64_t pos, const float* k, const float* v) override;
  const float* K(int64_t layer, int32_t seq, int64_t pos) const override;
  const float* V(int64_t layer, int32_t seq, int64_t pos) const override;
  int64_t Length(int32_t seq) const override;
  void Clear(int32_t seq) override;

 private:
  struct LayerStore {
    int64_t dim = 0;        // floats per position for K (and for V)
    int64_t capacity = 0;   // positions held (ring size for sliding layers)
    bool ring = false;
    std::vector<std::vector<float>> k, v;  // per sequence
  };
  const float* Slot(const LayerStore& s, const std::vector<float>& data, int32_t seq, int64_t pos) const;

  std::vector<LayerStore> layers_;  // indexed by layer; dim 0 for layers without storage
  std::vector<int64_t> length_;     // per sequence
  int64_t max_context_;
};

}  // namespace gemma_local
