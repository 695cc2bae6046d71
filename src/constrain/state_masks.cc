#include "constrain/state_masks.h"

#include <random>

namespace gemma_local::constrain {

namespace {

uint64_t RandomKey() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

StateMaskCache::StateMaskCache(size_t capacity_bytes)
    : capacity_bytes_(capacity_bytes), key_(RandomKey()) {}

size_t StateMasks::MemoryBytes() const {
  size_t n = sizeof(StateMasks) + inner.words().size() * sizeof(uint64_t) +
             boundaries.capacity() * sizeof(boundaries[0]);
  for (const auto& [node, prefix] : boundaries) n += prefix.capacity();
  return n;
}

std::shared_ptr<const StateMasks> StateMaskCache::Find(const RegexFingerprint& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void StateMaskCache::Insert(const RegexFingerprint& key, std::shared_ptr<const StateMasks> masks) {
  if (masks == nullptr) return;
  const size_t size = masks->MemoryBytes();
  std::lock_guard<std::mutex> lock(mu_);
  if (size > capacity_bytes_ || index_.count(key) != 0) return;
  lru_.emplace_front(key, std::move(masks));
  index_.emplace(key, lru_.begin());
  bytes_ += size;
  while (bytes_ > capacity_bytes_ && !lru_.empty()) {
    bytes_ -= lru_.back().second->MemoryBytes();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

StateMaskCache::Stats StateMaskCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{lru_.size(), bytes_, hits_, misses_};
}

}  // namespace gemma_local::constrain
