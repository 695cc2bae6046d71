// A set of token ids over a vocabulary, as a bitset: the "allowed next tokens" a constraint hands
// to the sampler. 262,144 ids are 32 KiB, so a whole-mask copy or OR is a few microseconds.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

namespace gemma_local::constrain {

class TokenMask {
 public:
  TokenMask() = default;
  explicit TokenMask(int32_t size) { Resize(size); }

  // Resizes to `size` ids, all cleared.
  void Resize(int32_t size) {
    size_ = size;
    words_.assign((static_cast<size_t>(size) + 63) / 64, 0);
  }
  void Clear() { std::fill(words_.begin(), words_.end(), 0); }
  int32_t size() const { return size_; }

  void Set(int32_t id) { words_[Word(id)] |= Bit(id); }
  void Reset(int32_t id) { words_[Word(id)] &= ~Bit(id); }
  bool Test(int32_t id) const { return (words_[Word(id)] & Bit(id)) != 0; }

  // Element-wise with a mask of the same size.
  void Or(const TokenMask& other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] |= other.words_[i];
  }
  void AndNot(const TokenMask& other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= ~other.words_[i];
  }
  bool operator==(const TokenMask& other) const = default;

  int32_t Count() const {
    int32_t n = 0;
    for (uint64_t w : words_) n += std::popcount(w);
    return n;
  }
  bool Empty() const {
    for (uint64_t w : words_) {
      if (w != 0) return false;
    }
    return true;
  }
  // Calls f(id) for every set id in increasing order.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      for (uint64_t w = words_[i]; w != 0; w &= w - 1) {
        f(static_cast<int32_t>(i * 64 + static_cast<size_t>(std::countr_zero(w))));
      }
    }
  }
  std::vector<int32_t> Ids() const {
    std::vector<int32_t> ids;
    ForEach([&](int32_t id) { ids.push_back(id); });
    return ids;
  }
  std::span<const uint64_t> words() const { return words_; }

 private:
  static size_t Word(int32_t id) { return static_cast<size_t>(id) >> 6; }
  static uint64_t Bit(int32_t id) { return uint64_t{1} << (static_cast<unsigned>(id) & 63); }

  int32_t size_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace gemma_local::constrain
