#include "constrain/compile_cache.h"

namespace gemma_local::constrain {
namespace {

// Everything compilation depends on, unambiguously (each part is length-prefixed).
std::string Key(const Constraint& c) {
  std::string key;
  auto part = [&key](const std::string& s) {
    key += std::to_string(s.size());
    key += ':';
    key += s;
  };
  part(std::to_string(static_cast<int>(c.kind)));
  part(c.best_effort ? "1" : "0");
  part(c.schema.dump());
  part(c.pattern);
  part(c.grammar);
  part(std::to_string(c.choices.size()));
  for (const std::string& choice : c.choices) part(choice);
  return key;
}

}  // namespace

Result<std::shared_ptr<const CompiledConstraint>> CompileCache::Get(const Constraint& constraint) {
  std::string key = Key(constraint);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  // Compiled outside the lock: a schema can take milliseconds and other requests must not wait.
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledConstraint> compiled,
                      CompileConstraint(constraint));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) return it->second->second;  // raced
  lru_.emplace_front(key, compiled);
  index_[std::move(key)] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return compiled;
}

size_t CompileCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

size_t CompileCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

}  // namespace gemma_local::constrain
