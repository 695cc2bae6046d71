#include "runtime/kv_cache.h"

#include <algorithm>
#include <climits>
#include <cstring>

namespace gemma_local {

Status KvCache::Validate(const HParams& hp, KvType type) {
  if (type != KvType::kQ8_0) return Status::Ok();
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    if (!hp.owns_kv(l) || hp.head_dim[l] % kKvQ8BlockElems == 0) continue;
    return InvalidArgumentError(
        "KV cache type q8_0 stores blocks of " + std::to_string(kKvQ8BlockElems) +
        " elements and needs head_dim to be a multiple of it, but layer " + std::to_string(l) +
        " has head_dim " + std::to_string(hp.head_dim[l]) + " (use kv_type f16 or f32)");
  }
  return Status::Ok();
}

KvCache::KvCache(const HParams& hp, int64_t block_rows)
    : KvCache(hp, KvCacheOptions{block_rows, 0, true}) {}

KvCache::KvCache(const HParams& hp, const KvCacheOptions& options)
    : block_rows_(std::max<int64_t>(1, options.block_rows)),
      type_(Validate(hp, options.type).ok() ? options.type : KvType::kF16),
      budget_bytes_(std::max<int64_t>(0, options.budget_bytes)),
      prefix_caching_(options.prefix_caching),
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
    slot.row_bytes = KvRowBytes(type_, slot.row_elems);
    slot.k_offset = groups_[g].block_bytes;
    slot.v_offset = slot.k_offset + block_rows_ * slot.row_bytes;
    groups_[g].block_bytes += 2 * block_rows_ * slot.row_bytes;
  }
}

KvCache::~KvCache() = default;

int64_t KvCache::MissingBlocks(const Sequence* s, int g, int64_t want) const {
  const int64_t need = (want + block_rows_ - 1) / block_rows_;
  const int64_t have = s == nullptr ? 0 : static_cast<int64_t>(s->groups[g].ids.size());
  return std::max<int64_t>(0, need - have);
}

void KvCache::LruRemove(int g, int32_t id) {
  Group& group = groups_[g];
  BlockRecord& r = group.blocks[id];
  if (!r.in_lru) return;
  (r.lru_prev >= 0 ? group.blocks[r.lru_prev].lru_next : group.lru_oldest) = r.lru_next;
  (r.lru_next >= 0 ? group.blocks[r.lru_next].lru_prev : group.lru_newest) = r.lru_prev;
  r.lru_prev = r.lru_next = -1;
  r.in_lru = false;
  --group.lru_size;
}

void KvCache::Evict(int g, int32_t id) {
  LruRemove(g, id);
  BlockRecord& r = groups_[g].blocks[id];
  if (!r.registered) return;
  auto it = registry_.find(r.hash);
  if (it != registry_.end() && it->second.ids[g] == id) {
    it->second.ids[g] = -1;
    if (std::all_of(it->second.ids.begin(), it->second.ids.end(),
                    [](int32_t x) { return x < 0; })) {
      registry_.erase(it);
    }
  }
  r.registered = false;
  ++evictions_;
}

int32_t KvCache::TakeBlock(int g) {
  Group& group = groups_[g];
  const int64_t bytes = BlockBytes(g);
  const auto fits = [&] { return budget_bytes_ == 0 || bytes_allocated_ + bytes <= budget_bytes_; };
  int32_t id = -1;
  if (!group.free_ids.empty()) {
    id = group.free_ids.back();
    group.free_ids.pop_back();
  } else if (!fits() && group.lru_oldest >= 0) {
    // The budget is reached: reuse this group's least recently released cached
    // block.
    id = group.lru_oldest;
    Evict(g, id);
  } else {
    // Make room under the budget from the other groups' free blocks, then their
    // cached ones (Reserve checked that the bytes in use leave enough).
    for (int pass = 0; pass < 2 && !fits(); ++pass) {
      for (int o = 0; o < static_cast<int>(groups_.size()) && !fits(); ++o) {
        Group& other = groups_[o];
        while (!fits()) {
          int32_t victim = -1;
          if (pass == 0 && !other.free_ids.empty()) {
            victim = other.free_ids.back();
            other.free_ids.pop_back();
          } else if (pass == 1 && other.lru_oldest >= 0) {
            victim = other.lru_oldest;
            Evict(o, victim);
          } else {
            break;
          }
          other.blocks[victim].data.reset();
          other.spare_ids.push_back(victim);
          bytes_allocated_ -= BlockBytes(o);
        }
      }
    }
    if (!group.spare_ids.empty()) {
      id = group.spare_ids.back();
      group.spare_ids.pop_back();
    } else {
      id = static_cast<int32_t>(group.blocks.size());
      group.blocks.emplace_back();
    }
    group.blocks[id].data = std::make_unique<uint8_t[]>(static_cast<size_t>(group.block_bytes));
    bytes_allocated_ += bytes;
    ++system_allocations_;
  }
  group.blocks[id].refs = 1;
  bytes_in_use_ += bytes;
  ++blocks_in_use_;
  return id;
}

void KvCache::AddRef(int g, int32_t id) {
  BlockRecord& r = groups_[g].blocks[id];
  if (r.refs++ > 0) return;
  LruRemove(g, id);
  bytes_in_use_ += BlockBytes(g);
  ++blocks_in_use_;
}

void KvCache::DropRef(int g, int32_t id) {
  if (id < 0) return;
  Group& group = groups_[g];
  BlockRecord& r = group.blocks[id];
  if (--r.refs > 0) return;
  bytes_in_use_ -= BlockBytes(g);
  --blocks_in_use_;
  if (!r.registered) {
    group.free_ids.push_back(id);
    return;
  }
  // Cached for prefix hits: the newest end of the eviction order.
  r.lru_prev = group.lru_newest;
  r.lru_next = -1;
  (group.lru_newest >= 0 ? group.blocks[group.lru_newest].lru_next : group.lru_oldest) = id;
  group.lru_newest = id;
  r.in_lru = true;
  ++group.lru_size;
}

uint64_t KvCache::BlockHash(uint64_t parent, std::span<const int32_t> tokens) const {
  // splitmix64 steps over (KV type, parent, tokens): a 64-bit key; every hit
  // also compares the tokens and the parent, so a collision costs a miss, never
  // a wrong answer. The type is part of the key: a block's bytes mean
  // something only together with it.
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ mix(static_cast<uint64_t>(type_) + 1));
  for (int32_t t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h;
}

const KvCache::PrefixEntry* KvCache::Lookup(uint64_t hash, uint64_t parent,
                                            std::span<const int32_t> tokens) const {
  auto it = registry_.find(hash);
  if (it == registry_.end() || it->second.parent != parent) return nullptr;
  if (!std::equal(tokens.begin(), tokens.end(), it->second.tokens.begin(), it->second.tokens.end()))
    return nullptr;
  return &it->second;
}

void KvCache::Register(Sequence& s, size_t index, std::span<const int32_t> tokens) {
  const uint64_t parent = index == 0 ? 0 : s.hashes[index - 1];
  const uint64_t h = BlockHash(parent, tokens);
  s.hashes.push_back(h);
  auto [it, inserted] = registry_.try_emplace(h);
  PrefixEntry& e = it->second;
  if (inserted) {
    e.parent = parent;
    e.tokens.assign(tokens.begin(), tokens.end());
    e.ids.assign(groups_.size(), -1);
  } else if (e.parent != parent ||
             !std::equal(tokens.begin(), tokens.end(), e.tokens.begin(), e.tokens.end())) {
    return;  // a different block under the same hash stays registered
  }
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const SeqGroup& sg = s.groups[g];
    if (index >= sg.ids.size() || sg.ids[index] < 0 || e.ids[g] >= 0) continue;
    BlockRecord& r = groups_[g].blocks[sg.ids[index]];
    if (r.registered) continue;
    e.ids[g] = sg.ids[index];
    r.registered = true;
    r.hash = h;
  }
}

int64_t KvCache::BytesToReserve(int32_t seq, int64_t n) const {
  auto it = seqs_.find(seq);
  const Sequence* s = it == seqs_.end() ? nullptr : &it->second;
  const int64_t want = (s == nullptr ? 0 : s->length) + std::max<int64_t>(0, n);
  int64_t bytes = 0;
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g)
    bytes += MissingBlocks(s, g, want) * BlockBytes(g);
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
      // Held at once: the window before the chunk plus the chunk, over block
      // boundaries.
      const int64_t span = groups_[g].window - 1 + std::max<int64_t>(1, chunk);
      blocks = std::min(blocks, (span + block_rows_ - 1) / block_rows_ + 1);
    }
    bytes += blocks * BlockBytes(g);
  }
  return bytes;
}

Status KvCache::Reserve(int32_t seq, int64_t n) {
  if (n < 0)
    return InvalidArgumentError("KV cache: cannot reserve " + std::to_string(n) + " positions");
  const int64_t bytes = BytesToReserve(seq, n);
  if (bytes > BytesAvailable()) {
    return ResourceExhaustedError(
        "KV cache: " + std::to_string(n) + " positions of sequence " + std::to_string(seq) +
        " need " + std::to_string(bytes) + " bytes of blocks, " + std::to_string(BytesAvailable()) +
        " of the " + std::to_string(budget_bytes_) + "-byte budget are free");
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
  // Per sequence: its entries are consecutive positions (the forward contract),
  // so the count is what it appends. Check the whole batch against the budget
  // before taking anything.
  CountBatch(batch);
  int64_t bytes = 0;
  for (const auto& [seq, n] : batch_counts_) bytes += BytesToReserve(seq, n);
  if (bytes > BytesAvailable()) {
    return ResourceExhaustedError("KV cache: the batch needs " + std::to_string(bytes) +
                                  " bytes of blocks, " + std::to_string(BytesAvailable()) +
                                  " of the " + std::to_string(budget_bytes_) +
                                  "-byte budget are free");
  }
  for (const auto& [seq, n] : batch_counts_) GL_RETURN_IF_ERROR(Reserve(seq, n));
  return Status::Ok();
}

void KvCache::CountBatch(const Batch& batch) {
  // A linear search per entry: a batch holds few sequences (prompt chunks are runs of one), and
  // the reused vector keeps a decode step free of allocations.
  batch_counts_.clear();
  for (const BatchEntry& e : batch) {
    auto it = std::find_if(batch_counts_.rbegin(), batch_counts_.rend(),
                           [&](const std::pair<int32_t, int64_t>& c) { return c.first == e.seq; });
    if (it == batch_counts_.rend()) {
      batch_counts_.emplace_back(e.seq, 1);
    } else {
      ++it->second;
    }
  }
}

void KvCache::Commit(int32_t seq, int64_t n) { CommitTokens(seq, n, {}, false); }

void KvCache::CommitTokens(int32_t seq, int64_t n, std::span<const int32_t> tokens,
                           bool with_tokens) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  Sequence& s = it->second;
  const int64_t before = s.length;
  s.length = std::min(s.reserved, s.length + n);
  if ((!with_tokens || !prefix_caching_) && s.length > before) s.tracked = false;
  if (s.tracked) {
    // Blocks completed by these positions join the prefix registry (before a
    // window drops them: dropped registered blocks stay cached).
    for (int64_t i = 0; i < s.length - before && i < static_cast<int64_t>(tokens.size()); ++i) {
      s.partial.push_back(tokens[static_cast<size_t>(i)]);
      if (static_cast<int64_t>(s.partial.size()) == block_rows_) {
        Register(s, s.hashes.size(), s.partial);
        s.partial.clear();
      }
    }
  }
  // The next token (at position `length`) sees positions >= length - window + 1
  // of a sliding layer; whole blocks before that are never read again.
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const int64_t window = groups_[g].window;
    if (window == 0) continue;
    const int64_t first_needed = std::max<int64_t>(0, s.length - window + 1);
    SeqGroup& sg = s.groups[g];
    const size_t droppable =
        std::min(static_cast<size_t>(first_needed / block_rows_), sg.ids.size());
    for (size_t b = 0; b < droppable; ++b) {
      if (sg.ids[b] < 0) continue;
      DropRef(g, sg.ids[b]);
      sg.ids[b] = -1;
      sg.bases[b] = nullptr;
    }
  }
}

void KvCache::Commit(const Batch& batch) {
  // Entries of one sequence are consecutive positions in batch order (the
  // forward contract).
  CountBatch(batch);
  for (const auto& [seq, n] : batch_counts_) {
    batch_tokens_.clear();
    for (const BatchEntry& e : batch) {
      if (e.seq == seq) batch_tokens_.push_back(e.token);
    }
    CommitTokens(seq, n, batch_tokens_, true);
  }
}

int64_t KvCache::AttachPrefix(int32_t seq, std::span<const int32_t> tokens, int64_t max_positions) {
  if (!prefix_caching_ || seqs_.count(seq) != 0) return 0;
  const int64_t limit = std::min<int64_t>(max_positions, static_cast<int64_t>(tokens.size()));
  if (limit <= 0) return 0;
  prefix_queries_ += limit;
  // The registered chain: every full-attention group must hold each block.
  std::vector<const PrefixEntry*> chain;
  std::vector<uint64_t> hashes;
  uint64_t parent = 0;
  for (int64_t b = 0; b < limit / block_rows_; ++b) {
    const std::span<const int32_t> block =
        tokens.subspan(static_cast<size_t>(b * block_rows_), static_cast<size_t>(block_rows_));
    const uint64_t h = BlockHash(parent, block);
    const PrefixEntry* e = Lookup(h, parent, block);
    if (e == nullptr) break;
    bool complete = true;
    for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
      if (groups_[g].window == 0 && e->ids[g] < 0) complete = false;
    }
    if (!complete) break;
    chain.push_back(e);
    hashes.push_back(h);
    parent = h;
  }
  // The longest prefix whose sliding windows are cached too.
  auto first_kept = [&](int g, int64_t length) {
    return static_cast<size_t>(std::max<int64_t>(0, length - groups_[g].window + 1) / block_rows_);
  };
  size_t n = chain.size();
  for (; n > 0; --n) {
    bool ok = true;
    for (int g = 0; g < static_cast<int>(groups_.size()) && ok; ++g) {
      if (groups_[g].window == 0) continue;
      for (size_t b = first_kept(g, static_cast<int64_t>(n) * block_rows_); b < n && ok; ++b)
        ok = chain[b]->ids[g] >= 0;
    }
    if (ok) break;
  }
  if (n == 0) return 0;
  const int64_t length = static_cast<int64_t>(n) * block_rows_;
  Sequence& s = seqs_[seq];
  s.groups.resize(groups_.size());
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const size_t first = groups_[g].window > 0 ? first_kept(g, length) : 0;
    SeqGroup& sg = s.groups[g];
    for (size_t b = 0; b < n; ++b) {
      const int32_t id = b < first ? -1 : chain[b]->ids[g];
      if (id >= 0) AddRef(g, id);
      sg.ids.push_back(id);
      sg.bases.push_back(id >= 0 ? groups_[g].blocks[id].data.get() : nullptr);
    }
  }
  s.length = s.reserved = length;
  s.hashes.assign(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(n));
  prefix_hits_ += length;
  return length;
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
  if (from == to)
    return InvalidArgumentError("KV cache: cannot fork sequence " + std::to_string(from) +
                                " onto itself");
  if (seqs_.count(from) == 0)
    return NotFoundError("KV cache: no sequence " + std::to_string(from) + " to fork");
  Clear(to);
  const Sequence& src = seqs_.at(from);  // std::map: references survive the insertion of `to`
  const auto full = static_cast<size_t>(src.length / block_rows_);
  const auto held = static_cast<size_t>((src.length + block_rows_ - 1) / block_rows_);
  int64_t bytes = 0;  // the partial last block is copied, full blocks are shared
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    if (held > full && full < src.groups[g].ids.size() && src.groups[g].ids[full] >= 0)
      bytes += BlockBytes(g);
  }
  if (bytes > BytesAvailable()) {
    return ResourceExhaustedError("KV cache: forking sequence " + std::to_string(from) + " needs " +
                                  std::to_string(bytes) + " bytes of blocks, " +
                                  std::to_string(BytesAvailable()) + " are free");
  }
  Sequence& dst = seqs_[to];
  dst.length = dst.reserved = src.length;
  dst.tracked = src.tracked;
  dst.hashes = src.hashes;
  dst.partial = src.partial;
  dst.groups.resize(groups_.size());
  for (int g = 0; g < static_cast<int>(groups_.size()); ++g) {
    const SeqGroup& a = src.groups[g];
    SeqGroup& b = dst.groups[g];
    for (size_t i = 0; i < held && i < a.ids.size(); ++i) {
      int32_t id = a.ids[i];
      if (id >= 0 && i < full) {
        AddRef(g, id);
      } else if (id >= 0) {
        id = TakeBlock(g);
        std::memcpy(groups_[g].blocks[id].data.get(), a.bases[i],
                    static_cast<size_t>(BlockBytes(g)));
      }
      b.ids.push_back(id);
      b.bases.push_back(id >= 0 ? groups_[g].blocks[id].data.get() : nullptr);
    }
  }
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
  t.type = type_;
  t.block_rows = block_rows_;
  const LayerSlot& slot = layers_[layer];
  t.row_elems = slot.row_elems;
  t.row_bytes = slot.row_bytes;
  t.k_offset = slot.k_offset;
  t.v_offset = slot.v_offset;
  auto it = seqs_.find(seq);
  if (slot.group < 0 || it == seqs_.end() || it->second.groups.empty()) return t;
  const SeqGroup& sg = it->second.groups[slot.group];
  t.blocks = std::span<uint8_t* const>(sg.bases.data(), sg.bases.size());
  return t;
}

KvCacheStats KvCache::Stats() const {
  KvCacheStats s;
  s.blocks_in_use = blocks_in_use_;
  for (const Group& g : groups_) {
    s.blocks_free += static_cast<int64_t>(g.free_ids.size());
    s.blocks_cached += g.lru_size;
  }
  s.prefix_queries = prefix_queries_;
  s.prefix_hits = prefix_hits_;
  s.evictions = evictions_;
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
