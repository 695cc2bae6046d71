// Compiled constraints by content: requests with the same schema (an `extract` run, a server's
// clients sharing a response_format) share one grammar and its LexerTables, so a lexer state's
// mask is computed once, not once per request. Bounded (least recently used out); thread-safe.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "constrain/constraint_compile.h"

namespace gemma_local::constrain {

class CompileCache {
 public:
  explicit CompileCache(size_t capacity = 32) : capacity_(capacity) {}

  // The compiled form of `constraint`, compiled on a miss (errors are not cached).
  Result<std::shared_ptr<const CompiledConstraint>> Get(const Constraint& constraint);

  size_t hits() const;
  size_t misses() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CompiledConstraint>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t hits_ = 0;
  size_t misses_ = 0;
};

}  // namespace gemma_local::constrain
