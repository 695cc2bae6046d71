#include "runtime/kv_cache.h"

#include <algorithm>
#include <climits>
#include <cstring>

namespace gemma_local {

KvCache::KvCache(const HParams& hp, int64_t block_rows) : KvCache(hp, KvCacheOptions{block_rows, 0}) {}

KvCache::KvCache(const HParams& hp, const KvCacheOptions& options)
    : block_rows_(std::max<int64_t>(1, options.block_rows)),
      budget_bytes_(std::max<int64_t>(0, options.budget_bytes)),
      layers_(static_cast<size_t>(hp.n_layers)) {
  int full = -1, sliding = -1;
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l)) continue;
    const bool is_sliding = hp.is_sliding(l) && hp.sliding_window > 0;
    int& g = is_sliding ? sliding : full;
    if (g < 0) {
      g = static_cast<int>(groups_.size());
      groups_.emplace_back();
      groups_.back().window = is_sliding ? hp.sliding_window : 0;
    }
    LayerSlot& slot = layers_[l];
    slot.group = g;
    slot.row_elems = hp.n_kv_heads[l] * hp.head_dim[l];
    slot.k_offset = groups_[g].block_elems;
    slot.v_offset = slot.k_offset + block_rows_ * slot.row_elems;
    groups_[g].block_elems += 2 * block_rows_ * slot.row_elems;
  }
}

KvCache::~KvCache() = default;

int64_t KvCache::MissingBlocks(const Sequence* s, int g, int64_t want) const {
  const int64_t need = (want + block_rows_ - 1) / block_rows_;
  const int64_t have = s == nullptr ? 0 : static_cast<int64_t>(s->groups[g].ids.size());
  return std::max<int64_t>(0, need - have);
}

int32_t KvCache::TakeBlock(int g) {
  Group& group = groups_[g];
  const int64_t bytes = BlockBytes(g);
  int32_t id;
  if (!group.free_ids.empty()) {
    id = group.free_ids.back();
    group.free_ids.pop_back();
  } else {
    // Make room under the budget from the other groups' free blocks (Reserve checked that the
    // bytes in use leave enough).
    for (size_t o = 0; budget_bytes_ > 0 && bytes_allocated_ + bytes > budget_bytes_ && o < groups_.size(); ++o) {
      Group& other = groups_[o];
      while (bytes_allocated_ + bytes > budget_bytes_ && !other.free_ids.empty()) {
        const int32_t victim = other.free_ids.back();
        other.free_ids.pop_back();
        other.blocks[victim].data.reset();
        other.spare_ids.push_back(victim);
        bytes_allocated_ -= BlockBytes(static_cast<int>(o));
      }
    }
    if (!group.spare_ids.empty()) {
      id = group.spare_ids.back();
      group.spare_ids.pop_back();
    } else {
      id = static_cast<int32_t>(group.blocks.size());
      group.blocks.emplace_back();
    }
    group.blocks[id].data = std::make_unique<float[]>(static_cast<size_t>(group.block_elems));
    bytes_allocated_ += bytes;
    ++system_allocations_;
  }
  group.blocks[id].refs = 1;
  bytes_in_use_ += bytes;
  ++blocks_in_use_;
  return id;
}

void KvCache::DropRef(int g, int32_t id) {
  if (id < 0) return;
  BlockRecord& b = groups_[g].blocks[id];
  if (--b.refs > 0) return;
  groups_[g].free_ids.push_back(id);
  bytes_in_use_ -= BlockBytes(g);
  --blocks_in_use_;
}

int64_t KvCache::BytesToReserve(int32_t seq, int64_t n) const {
  auto it = seqs_.find(seq);
  const Sequence* s = it == seqs_.end() ? nullptr : &it->second;
  const int64_t want = (s == nullptr ? 0 : s->length) + std::max<int64_t>(0, n);
  int64_t bytes = 0;
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) bytes += MissingBlocks(s, g, want) * BlockBytes(g);
  return bytes;
}

int64_t KvCache::BytesAvailable() const {
  return budget_bytes_ > 0 ? budget_bytes_ - bytes_in_use_ : INT64_MAX;
}

int64_t KvCache::BytesForSequence(int64_t positions, int64_t chunk) const {
  int64_t bytes = 0;
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    int64_t blocks = (positions + block_rows_ - 1) / block_rows_;
    if (groups_[g].window > 0) {
      // Held at once: the window before the chunk plus the chunk, over block boundaries.
      const int64_t span = groups_[g].window - 1 + std::max<int64_t>(1, chunk);
      blocks = std::min(blocks, (span + block_rows_ - 1) / block_rows_ + 1);
    }
    bytes += blocks * BlockBytes(g);
  }
  return bytes;
}

Status KvCache::Reserve(int32_t seq, int64_t n) {
  if (n < 0) return InvalidArgumentError("KV cache: cannot reserve " + std::to_string(n) + " positions");
  const int64_t bytes = BytesToReserve(seq, n);
  if (bytes > BytesAvailable()) {
    return ResourceExhaustedError("KV cache: " + std::to_string(n) + " positions of sequence " + std::to_string(seq) +
                                  " need " + std::to_string(bytes) + " bytes of blocks, " +
                                  std::to_string(BytesAvailable()) + " of the " + std::to_string(budget_bytes_) +
                                  "-byte budget are free");
  }
  Sequence& s = seqs_[seq];
  if (s.groups.empty()) s.groups.resize(groups_.size());
  const int64_t want = s.length + n;
  if (want <= s.reserved) return Status::Ok();
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    SeqGroup& sg = s.groups[g];
    for (int64_t k = MissingBlocks(&s, g, want); k > 0; --k) {
      const int32_t id = TakeBlock(g);
      sg.ids.push_back(id);
      sg.bases.push_back(groups_[g].blocks[id].data.get());
    }
  }
  s.reserved = want;
  return Status::Ok();
}

Status KvCache::Reserve(const Batch& batch) {
  // Per sequence: its entries are consecutive positions (the forward contract), so the count is
  // what it appends. Check the whole batch against the budget before taking anything.
  std::map<int32_t, int64_t> count;
  for (const BatchEntry& e : batch) ++count[e.seq];
  int64_t bytes = 0;
  for (const auto& [seq, n] : count) {
    if (n < 0) continue;
    bytes += BytesToReserve(seq, n);
  }
  if (bytes > BytesAvailable()) {
    return ResourceExhaustedError("KV cache: the batch needs " + std::to_string(bytes) + " bytes of blocks, " +
                                  std::to_string(BytesAvailable()) + " of the " + std::to_string(budget_bytes_) +
                                  "-byte budget are free");
  }
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
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const int64_t window = groups_[g].window;
    if (window == 0) continue;
    const int64_t first_needed = std::max<int64_t>(0, s.length - window + 1);
    SeqGroup& sg = s.groups[g];
    const size_t droppable = std::min(static_cast<size_t>(first_needed / block_rows_), sg.ids.size());
    for (size_t b = 0; b < droppable; ++b) {
      if (sg.ids[b] < 0) continue;
      DropRef(g, sg.ids[b]);
      sg.ids[b] = -1;
      sg.bases[b] = nullptr;
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
  for (int g = 0; g < static_cast<int>(it->second.groups.size()); ++g) {
    for (int32_t id : it->second.groups[g].ids) DropRef(g, id);
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
  for (size_t g = 0; g < groups_.size(); ++g) {
    const size_t bytes = static_cast<size_t>(BlockBytes(static_cast<int>(g)));
    const SeqGroup& a = src.groups[g];
    const SeqGroup& b = dst.groups[g];
    for (size_t i = 0; i < b.bases.size() && i < a.bases.size(); ++i) {
      if (a.bases[i] == nullptr) continue;  // dropped from a window: nothing to copy
      std::memcpy(b.bases[i], a.bases[i], bytes);
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
  const LayerSlot& slot = layers_[layer];
  t.row_elems = slot.row_elems;
  t.k_offset = slot.k_offset;
  t.v_offset = slot.v_offset;
  auto it = seqs_.find(seq);
  if (slot.group < 0 || it == seqs_.end() || it->second.groups.empty()) return t;
  const SeqGroup& sg = it->second.groups[slot.group];
  t.blocks = std::span<float* const>(sg.bases.data(), sg.bases.size());
  return t;
}

KvCacheStats KvCache::Stats() const {
  KvCacheStats s;
  s.blocks_in_use = blocks_in_use_;
  for (const Group& g : groups_) s.blocks_free += static_cast<int64_t>(g.free_ids.size());
  s.bytes_in_use = bytes_in_use_;
  s.bytes_allocated = bytes_allocated_;
  s.budget_bytes = budget_bytes_;
  s.system_allocations = system_allocations_;
  return s;
}

std::vector<int64_t> KvCache::GroupBlockBytes() const {
  std::vector<int64_t> out;
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) out.push_back(BlockBytes(g));
  return out;
}

}  // namespace gemma_local
