#include "constrain/grammar.h"

#include <algorithm>

namespace gemma_local::constrain {

int32_t Grammar::AddLexeme(RegexId regex) {
  auto it = std::find(lexemes_.begin(), lexemes_.end(), regex);
  if (it != lexemes_.end()) return static_cast<int32_t>(it - lexemes_.begin());
  lexemes_.push_back(regex);
  return static_cast<int32_t>(lexemes_.size()) - 1;
}

int32_t Grammar::AddRule(std::string name) {
  rule_names_.push_back(std::move(name));
  by_rule_.emplace_back();
  return static_cast<int32_t>(rule_names_.size()) - 1;
}

void Grammar::AddProduction(int32_t rule, std::vector<Symbol> rhs) {
  Production p;
  p.lhs = rule;
  p.rhs_begin = static_cast<uint32_t>(symbols_.size());
  symbols_.insert(symbols_.end(), rhs.begin(), rhs.end());
  p.rhs_end = static_cast<uint32_t>(symbols_.size());
  by_rule_[static_cast<size_t>(rule)].push_back(static_cast<uint32_t>(productions_.size()));
  productions_.push_back(p);
}

Status Grammar::Finalize() {
  if (start_ < 0 || static_cast<size_t>(start_) >= rule_names_.size()) {
    return InvalidArgumentError("grammar has no start rule");
  }
  lexeme_min_.assign(lexemes_.size(), kNoYield);
  for (size_t i = 0; i < lexemes_.size(); ++i) {
    if (arena_->Nullable(lexemes_[i])) {
      return InternalError("grammar lexeme " + std::to_string(i) + " matches the empty string");
    }
    GL_ASSIGN_OR_RETURN(int32_t min_length, arena_->MinLength(lexemes_[i]));
    lexeme_min_[i] = min_length;
    if (min_length < 0) {
      return InvalidArgumentError("grammar lexeme " + arena_->DebugString(lexemes_[i]) +
                                  " matches nothing");
    }
  }
  // Nullable and productive rules by fixed point.
  nullable_.assign(rule_names_.size(), 0);
  std::vector<uint8_t> productive(rule_names_.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (const Production& p : productions_) {
      bool all_nullable = true, all_productive = true;
      for (Symbol s : rhs(p)) {
        if (s.is_lexeme()) {
          all_nullable = false;
        } else {
          all_nullable = all_nullable && nullable_[static_cast<size_t>(s.index())];
          all_productive = all_productive && productive[static_cast<size_t>(s.index())];
        }
      }
      const auto lhs = static_cast<size_t>(p.lhs);
      if (all_nullable && !nullable_[lhs]) nullable_[lhs] = 1, changed = true;
      if (all_productive && !productive[lhs]) productive[lhs] = 1, changed = true;
    }
  }
  if (!productive[static_cast<size_t>(start_)]) {
    return InvalidArgumentError("grammar derives no finite string (every alternative recurses)");
  }
  // Shortest yields: a fixed point from "none" down (costs only fall).
  rule_min_.assign(rule_names_.size(), kNoYield);
  for (bool changed = true; changed;) {
    changed = false;
    for (const Production& p : productions_) {
      int64_t cost = 0;
      for (Symbol s : rhs(p)) cost = std::min(kNoYield, cost + min_yield(s));
      if (cost < rule_min_[static_cast<size_t>(p.lhs)]) {
        rule_min_[static_cast<size_t>(p.lhs)] = cost;
        changed = true;
      }
    }
  }
  // Alternatives through a rule that derives no finite string could never complete: drop them,
  // so the parser never offers a path that dead-ends.
  for (auto& ids : by_rule_) {
    std::erase_if(ids, [&](uint32_t id) {
      for (Symbol s : rhs(productions_[id])) {
        if (!s.is_lexeme() && !productive[static_cast<size_t>(s.index())]) return true;
      }
      return false;
    });
  }
  return Status::Ok();
}

}  // namespace gemma_local::constrain
