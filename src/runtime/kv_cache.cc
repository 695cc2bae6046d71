#include "runtime/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace gemma_local {

KvCache::KvCache(const HParams& hp, int64_t block_rows)
    : block_rows_(std::max<int64_t>(1, block_rows)),
      geometry_(static_cast<size_t>(hp.n_layers)),
      storage_(static_cast<size_t>(hp.n_layers)),
      free_(static_cast<size_t>(hp.n_layers)) {
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) continue;
    geometry_[l].row_elems = hp.n_kv_heads[l] * hp.head_dim[l];
    if (hp.is_sliding(l) && hp.sliding_window > 0) geometry_[l].window = hp.sliding_window;
  }
}

float* KvCache::TakeBlock(int64_t layer) {
  const int64_t bytes = block_rows_ * geometry_[layer].row_elems * static_cast<int64_t>(sizeof(float));
  blocks_in_use_bytes_ += bytes;
  if (!free_[layer].empty()) {
    float* b = free_[layer].back();
    free_[layer].pop_back();
    return b;
  }
  storage_[layer].push_back(std::make_unique<float[]>(static_cast<size_t>(block_rows_ * geometry_[layer].row_elems)));
  return storage_[layer].back().get();
}

void KvCache::GiveBlock(int64_t layer, float* block) {
  if (block == nullptr) return;
  blocks_in_use_bytes_ -= block_rows_ * geometry_[layer].row_elems * static_cast<int64_t>(sizeof(float));
  free_[layer].push_back(block);
}

Status KvCache::Reserve(int32_t seq, int64_t n) {
  if (n < 0) return InvalidArgumentError("KV cache: cannot reserve " + std::to_string(n) + " positions");
  Sequence& s = seqs_[seq];
  if (s.layers.empty()) s.layers.resize(geometry_.size());
  const int64_t want = s.length + n;
  if (want <= s.reserved) return Status::Ok();
  const auto n_blocks = static_cast<size_t>((want + block_rows_ - 1) / block_rows_);
  for (size_t l = 0; l < geometry_.size(); ++l) {
    if (geometry_[l].row_elems == 0) continue;
    SeqLayer& sl = s.layers[l];
    while (sl.k.size() < n_blocks) {
      sl.k.push_back(TakeBlock(static_cast<int64_t>(l)));
      sl.v.push_back(TakeBlock(static_cast<int64_t>(l)));
    }
  }
  s.reserved = want;
  return Status::Ok();
}

Status KvCache::Reserve(const Batch& batch) {
  std::map<int32_t, int64_t> count;
  for (const BatchEntry& e : batch) ++count[e.seq];
  for (const auto& [seq, n] : count) GL_RETURN_IF_ERROR(Reserve(seq, n));
  return Status::Ok();
}

void KvCache::Commit(int32_t seq, int64_t n) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  Sequence& s = it->second;
  s.length = std::min(s.reserved, s.length + n);
  // The next token (at position `length`) sees positions >= length - window + 1 of a sliding
  // layer; whole blocks before that are never read again.
  for (size_t l = 0; l < geometry_.size(); ++l) {
    const int64_t window = geometry_[l].window;
    if (geometry_[l].row_elems == 0 || window == 0) continue;
    const int64_t first_needed = std::max<int64_t>(0, s.length - window + 1);
    const auto droppable = static_cast<size_t>(first_needed / block_rows_);
    SeqLayer& sl = s.layers[l];
    for (size_t b = 0; b < std::min(droppable, sl.k.size()); ++b) {
      if (sl.k[b] == nullptr) continue;
      GiveBlock(static_cast<int64_t>(l), sl.k[b]);
      GiveBlock(static_cast<int64_t>(l), sl.v[b]);
      sl.k[b] = sl.v[b] = nullptr;
    }
  }
}

void KvCache::Commit(const Batch& batch) {
  std::map<int32_t, int64_t> count;
  for (const BatchEntry& e : batch) ++count[e.seq];
  for (const auto& [seq, n] : count) Commit(seq, n);
}

void KvCache::Clear(int32_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (size_t l = 0; l < geometry_.size(); ++l) {
    if (it->second.layers.empty()) break;
    for (float* b : it->second.layers[l].k) GiveBlock(static_cast<int64_t>(l), b);
    for (float* b : it->second.layers[l].v) GiveBlock(static_cast<int64_t>(l), b);
  }
  seqs_.erase(it);
}

Status KvCache::Fork(int32_t from, int32_t to) {
  if (from == to) return InvalidArgumentError("KV cache: cannot fork sequence " + std::to_string(from) + " onto itself");
  auto it = seqs_.find(from);
  if (it == seqs_.end()) return NotFoundError("KV cache: no sequence " + std::to_string(from) + " to fork");
  Clear(to);
  const int64_t length = it->second.length;
  GL_RETURN_IF_ERROR(Reserve(to, length));
  const Sequence& src = seqs_.at(from);  // std::map: references survive the insertion of `to`
  Sequence& dst = seqs_.at(to);
  for (size_t l = 0; l < geometry_.size(); ++l) {
    const size_t bytes = static_cast<size_t>(block_rows_ * geometry_[l].row_elems) * sizeof(float);
    for (size_t b = 0; b < dst.layers[l].k.size() && b < src.layers[l].k.size(); ++b) {
      if (src.layers[l].k[b] == nullptr) continue;  // dropped from a window: nothing to copy
      std::memcpy(dst.layers[l].k[b], src.layers[l].k[b], bytes);
      std::memcpy(dst.layers[l].v[b], src.layers[l].v[b], bytes);
    }
  }
  Commit(to, length);  // also drops the window's dead blocks, as for the source
  return Status::Ok();
}

int64_t KvCache::Length(int32_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.length;
}

int64_t KvCache::Reserved(int32_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.reserved;
}

KvBlockTable KvCache::Table(int64_t layer, int32_t seq) const {
  KvBlockTable t;
  t.block_rows = block_rows_;
  t.row_elems = geometry_[layer].row_elems;
  auto it = seqs_.find(seq);
  if (it == seqs_.end() || it->second.layers.empty()) return t;
  const SeqLayer& sl = it->second.layers[layer];
  t.k = std::span<float* const>(sl.k.data(), sl.k.size());
  t.v = std::span<float* const>(sl.v.data(), sl.v.size());
  return t;
}

int64_t KvCache::BytesInUse() const { return blocks_in_use_bytes_; }

}  // namespace gemma_local
