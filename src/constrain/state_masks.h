// A lexer state's token masks, and the per-vocabulary cache that shares them across grammars.
//
// Per lexer state, the tokens it allows whatever the parser holds (every byte continues a
// lexeme: xgrammar's context-independent tokens) and the trie nodes where a lexeme must end,
// whose subtrees depend on the parser and are walked at each mask. Inside a JSON string that
// turns a walk of the whole vocabulary into a bitset copy plus the few hundred tokens that
// contain a closing quote.
//
// Computing them walks the vocabulary's trie (milliseconds for 262k tokens), and they depend only
// on how the state's lexemes behave on strings no longer than the longest token. So they are
// cached per vocabulary by that behaviour (RegexArena::BehaviorFingerprint): the inside of a JSON
// string, a date-time, an email, or a string with 20 characters left is the same state in every
// schema, and only the first grammar to reach it walks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "constrain/regex.h"
#include "constrain/token_mask.h"

namespace gemma_local::constrain {

struct StateMasks {
  TokenMask inner;
  std::vector<std::pair<uint32_t, std::string>> boundaries;  // (trie node, bytes before it)
  size_t MemoryBytes() const;
};

// Least recently used out past `capacity_bytes`. Thread-safe (matchers of different grammars may
// run on different threads).
class StateMaskCache {
 public:
  explicit StateMaskCache(size_t capacity_bytes = size_t{64} << 20);
  StateMaskCache(const StateMaskCache&) = delete;
  StateMaskCache& operator=(const StateMaskCache&) = delete;

  std::shared_ptr<const StateMasks> Find(const RegexFingerprint& key);
  void Insert(const RegexFingerprint& key, std::shared_ptr<const StateMasks> masks);

  struct Stats {
    size_t entries = 0, bytes = 0, hits = 0, misses = 0;
  };
  Stats stats() const;
  // A random secret seeding the fingerprints this cache compares (RegexArena::
  // BehaviorFingerprint), so no request can aim a collision at another's states.
  uint64_t key() const { return key_; }

 private:
  struct KeyHash {
    size_t operator()(const RegexFingerprint& f) const { return static_cast<size_t>(f.lo); }
  };
  using Entry = std::pair<RegexFingerprint, std::shared_ptr<const StateMasks>>;
  const size_t capacity_bytes_;
  const uint64_t key_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<RegexFingerprint, std::list<Entry>::iterator, KeyHash> index_;
  size_t bytes_ = 0;
  size_t hits_ = 0, misses_ = 0;
};

}  // namespace gemma_local::constrain
