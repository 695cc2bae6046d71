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
// elements stored as `type` (`row_bytes` bytes), for K and separately for V. The storage type is
// the cache's choice, not the model's: writers convert f32 rows with StoreKvRow, attention reads
// the stored type directly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/dtype.h"

namespace gemma_local {

// How K/V rows are stored. f16 (the default, as llama.cpp's cache) halves f32's memory at a
// relative rounding error of 2^-11; q8_0 (GGML's: blocks of 32 elements, an f16 scale and 32
// int8) takes 34/128 of f32's. q8_0 needs every head's slice of a row to be whole blocks
// (head_dim a multiple of 32, as llama.cpp requires for a quantized cache), so that attention
// reads one head without touching its neighbour's blocks: KvCache::Validate checks it.
enum class KvType : uint8_t { kF32, kF16, kQ8_0 };

inline constexpr int64_t kKvQ8BlockElems = 32;
inline constexpr int64_t kKvQ8BlockBytes = 34;  // f16 scale + 32 int8

// Bytes of `n` elements stored as `type`; for q8_0, n must be a whole number of blocks.
constexpr int64_t KvRowBytes(KvType type, int64_t n) {
  switch (type) {
    case KvType::kF16:
      return 2 * n;
    case KvType::kQ8_0:
      return n / kKvQ8BlockElems * kKvQ8BlockBytes;
    case KvType::kF32:
      break;
  }
  return 4 * n;
}

// The element type with the same byte layout (ref::QuantizeBlocks / DequantizeBlocks read it).
DType KvDType(KvType type);
// "f32", "f16", "q8_0".
const char* KvTypeName(KvType type);
// Accepts the names KvTypeName returns (lower case only); nullopt otherwise.
std::optional<KvType> KvTypeFromName(std::string_view name);
// The accepted names for messages: "f16, q8_0, f32".
const char* KvTypeNames();

// dst = src[0..n) stored as `type`: f16 rounds to nearest even (F32ToF16); q8_0 writes the bytes
// of GGML's quantize_row_q8_0_ref (ref::QuantizeBlocks). For q8_0, n is a whole number of blocks.
void StoreKvRow(KvType type, const float* src, int64_t n, uint8_t* dst);
// dst[0..n) = the values of the n elements stored at src (exact: ref::DequantizeBlocks).
void LoadKvRow(KvType type, const uint8_t* src, int64_t n, float* dst);

struct KvBlockTable {
  KvType type = KvType::kF32;
  int64_t block_rows = 0;
  int64_t row_elems = 0;  // n_kv_heads * head_dim of the layer
  int64_t row_bytes = 0;  // KvRowBytes(type, row_elems)
  // Base of each block (null = dropped). A block holds the rows of several layers (every layer
  // of one attention kind, so they are allocated and dropped together): this layer's K rows
  // start `k_offset` bytes after the base, its V rows `v_offset` bytes.
  std::span<uint8_t* const> blocks;
  int64_t k_offset = 0;
  int64_t v_offset = 0;

  // The K (V) row of `pos`, or nullptr when its block is not held.
  uint8_t* KRow(int64_t pos) const { return Row(k_offset, pos); }
  uint8_t* VRow(int64_t pos) const { return Row(v_offset, pos); }

 private:
  uint8_t* Row(int64_t offset, int64_t pos) const {
    if (pos < 0 || block_rows <= 0) return nullptr;
    const auto b = static_cast<size_t>(pos / block_rows);
    if (b >= blocks.size() || blocks[b] == nullptr) return nullptr;
    return blocks[b] + offset + (pos % block_rows) * row_bytes;
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
