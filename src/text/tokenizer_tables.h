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

// piece string -> id; the strings live in the caller's piece vector (by id).
class PieceIndex {
 public:
  // Later ids win for duplicate strings (llama.cpp's rule), so the result is deterministic.
  void Build(const std::vector<std::string>& pieces) {
    pieces_ = &pieces;
    slots_.assign(TableCapacity(pieces.size()), -1);
    mask_ = slots_.size() - 1;
    for (size_t id = 0; id < pieces.size(); ++id) {
      size_t i = HashBytes(pieces[id]) & mask_;
      while (slots_[i] >= 0 && pieces[static_cast<size_t>(slots_[i])] != pieces[id]) {
        i = (i + 1) & mask_;
      }
      slots_[i] = static_cast<int32_t>(id);
    }
  }

  int32_t Find(std::string_view s) const {
    if (slots_.empty()) return -1;
    size_t i = HashBytes(s) & mask_;
    for (;;) {
      const int32_t id = slots_[i];
      if (id < 0) return -1;
      if ((*pieces_)[static_cast<size_t>(id)] == s) return id;
      i = (i + 1) & mask_;
    }
  }

 private:
  const std::vector<std::string>* pieces_ = nullptr;
  std::vector<int32_t> slots_;
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
