// The KV storage a forward call reads and writes, as block tables.
//
// Ownership is split on purpose: the KV cache (runtime) owns memory and decides which blocks
// exist; the model owns the math. Before Model::Forward the caller reserves a row for every
// position the batch appends (KvCache::Reserve), so the forward pass never allocates KV and cannot
// fail half-way on it; afterwards the caller commits the new length (KvCache::Commit).
//
// Position p of a sequence lives in block `p / block_rows` of its table, at row `p % block_rows`
// of that block; a contiguous cache is the one-block case. A null block is one the cache has
// dropped (it lies before every sliding window that could still read it). Rows hold `row_elems`
// elements of `type`, for K and separately for V. The storage type is the cache's choice (f32
// now; f16 and q8_0 next), not the model's.
#pragma once

#include <cstdint>
#include <span>

namespace gemma_local {

enum class KvType : uint8_t { kF32 };

struct KvBlockTable {
  KvType type = KvType::kF32;
  int64_t block_rows = 0;
  int64_t row_elems = 0;  // n_kv_heads * head_dim of the layer
  // Base of each block (null = dropped). A block holds the rows of several layers (every layer
  // of one attention kind, so they are allocated and dropped together): this layer's K rows
  // start `k_offset` elements after the base, its V rows `v_offset`.
  std::span<float* const> blocks;
  int64_t k_offset = 0;
  int64_t v_offset = 0;

  // The K (V) row of `pos`, or nullptr when its block is not held.
  float* KRow(int64_t pos) const { return Row(k_offset, pos); }
  float* VRow(int64_t pos) const { return Row(v_offset, pos); }

 private:
  float* Row(int64_t offset, int64_t pos) const {
    if (pos < 0 || block_rows <= 0) return nullptr;
    const auto b = static_cast<size_t>(pos / block_rows);
    if (b >= blocks.size() || blocks[b] == nullptr) return nullptr;
    return blocks[b] + offset + (pos % block_rows) * row_elems;
  }
};

// What Model::Forward sees of the cache, valid for one forward call (the cache may move its
// tables between calls). Rows are written through the table pointers.
class KvView {
 public:
  virtual ~KvView() = default;
  // Positions already cached for `seq` (0 for a sequence the cache does not know).
  virtual int64_t Length(int32_t seq) const = 0;
  // Positions of `seq` that have a row: Length plus what was reserved for this call.
  virtual int64_t Reserved(int32_t seq) const = 0;
  // The table of `layer` for `seq`. `layer` must own its K/V (HParams::owns_kv); Gemma 4 layers
  // that share another layer's K/V read their source layer's table.
  virtual KvBlockTable Table(int64_t layer, int32_t seq) const = 0;
};

}  // namespace gemma_local
