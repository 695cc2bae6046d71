// Flat open-addressing hash tables for the tokenizer's hot lookups: piece string -> id and
// (left id, right id) -> merge. Built once at load and read-only afterwards (thread-safe reads).
//
// Why not std::unordered_map: it allocates one node per entry (262k pieces, 514k merges) and every
// lookup chases a pointer into a cold node; the encode loop does one lookup per character and per
// candidate pair, so those cache misses dominated. Linear probing over a power-of-two array at load
// factor <= 0.5 keeps a lookup to about one cache line.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gemma_local::text {

// 64-bit hash of a short byte string (pieces are mostly < 16 bytes): 8-byte words folded with a
// multiply-xorshift mix. Not for untrusted-key hash-flooding resistance (keys are the vocabulary,
// fixed at load; queries only probe).
inline uint64_t HashBytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return h ^ (h >> 32);
}

inline size_t TableCapacity(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  return cap;
}

// piece string -> id over a piece arena (piece i is bytes[offsets[i], offsets[i + 1])), owned by
// the caller. Each slot keeps 32 bits of the hash beside the id, so a probe compares piece bytes
// (a second cache miss) only when the tags agree.
class PieceIndex {
 public:
  // Later ids win for duplicate strings (llama.cpp's rule), so the result is deterministic. Each
  // duplicate found is reported as (earlier id, later id) in `duplicates` when it is not null.
  void Build(std::string_view bytes, const std::vector<uint32_t>& offsets,
             std::vector<std::pair<int32_t, int32_t>>* duplicates) {
    bytes_ = bytes;
    offsets_ = offsets.data();
    const size_t n = offsets.size() - 1;
    slots_.assign(TableCapacity(n), Slot{-1, 0});
    mask_ = slots_.size() - 1;
    constexpr size_t kBatch = 64;  // hashes computed and slots prefetched a batch ahead
    uint64_t hashes[kBatch];
    for (size_t id = 0; id < n; ++id) {
      if (id % kBatch == 0) {
        for (size_t k = 0; k < kBatch && id + k < n; ++k) {
          hashes[k] = HashBytes(Get(static_cast<int32_t>(id + k)));
          __builtin_prefetch(&slots_[hashes[k] & mask_], 1);
        }
      }
      const std::string_view p = Get(static_cast<int32_t>(id));
      const uint64_t h = hashes[id % kBatch];
      const auto tag = static_cast<uint32_t>(h >> 32);
      size_t i = h & mask_;
      while (slots_[i].id >= 0 && !(slots_[i].tag == tag && Get(slots_[i].id) == p)) {
        i = (i + 1) & mask_;
      }
      if (slots_[i].id >= 0 && duplicates) duplicates->emplace_back(slots_[i].id, id);
      slots_[i] = Slot{static_cast<int32_t>(id), tag};
    }
  }

  // Find() for `count` keys at once: the cache misses of all keys (slot, offset, piece bytes) are
  // started together by prefetches, so a bulk lookup at load (1.5M for Gemma 3's merges) waits
  // for memory once per batch instead of up to three times per key.
  void FindBatch(const std::string_view* keys, size_t count, uint64_t* hashes, int32_t* ids) const {
    if (slots_.empty()) {
      for (size_t k = 0; k < count; ++k) ids[k] = -1;
      return;
    }
    for (size_t k = 0; k < count; ++k) {
      hashes[k] = HashBytes(keys[k]);
      __builtin_prefetch(&slots_[hashes[k] & mask_]);
    }
    for (size_t k = 0; k < count; ++k) {
      const Slot& slot = slots_[hashes[k] & mask_];
      ids[k] = slot.id;
      if (slot.id >= 0) __builtin_prefetch(offsets_ + slot.id);
    }
    for (size_t k = 0; k < count; ++k) {
      if (ids[k] >= 0) __builtin_prefetch(bytes_.data() + offsets_[static_cast<size_t>(ids[k])]);
    }
    for (size_t k = 0; k < count; ++k) ids[k] = FindHashed(keys[k], hashes[k]);
  }

  int32_t Find(std::string_view s) const {
    if (slots_.empty()) return -1;
    return FindHashed(s, HashBytes(s));
  }

 private:
  int32_t FindHashed(std::string_view s, uint64_t h) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    size_t i = h & mask_;
    for (;;) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && Get(slot.id) == s) return slot.id;
      i = (i + 1) & mask_;
    }
  }

  struct Slot {
    int32_t id;
    uint32_t tag;
  };
  std::string_view Get(int32_t id) const {
    const auto i = static_cast<size_t>(id);
    return bytes_.substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  std::string_view bytes_;
  const uint32_t* offsets_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// (left id, right id) -> (rank, result id). The first insertion of a pair keeps its rank.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t result;
  };
  static constexpr uint64_t kEmpty = ~0ull;  // ids are < 2^30, so no real key is all ones

  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void Reserve(size_t n) {
    slots_.assign(TableCapacity(n), Entry{kEmpty, 0, 0});
    mask_ = slots_.size() - 1;
  }

  void Prefetch(int32_t a, int32_t b) const { __builtin_prefetch(&slots_[Slot(Key(a, b))], 1); }

  // Returns false when the pair was already present (its first rank is kept).
  bool Insert(int32_t a, int32_t b, int32_t rank, int32_t result) {
    const uint64_t key = Key(a, b);
    size_t i = Slot(key);
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) return false;
      i = (i + 1) & mask_;
    }
    slots_[i] = Entry{key, rank, result};
    return true;
  }

  const Entry* Find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(a, b);
    size_t i = Slot(key);
    for (;;) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }

 private:
  size_t Slot(uint64_t key) const {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (h >> 31)) & mask_;
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

}  // namespace gemma_local::text
