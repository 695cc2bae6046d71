// A context-free grammar over lexemes: the compiled form of every constraint (JSON Schema, regex,
// choice list, GBNF). Lexemes are byte regexes (regex.h); rules combine them. The split follows
// llguidance: regular parts (string bodies, numbers) run in a lazy DFA, and only the structure
// above them goes through the Earley parser (earley.h), which keeps the parser off the per-byte
// path inside long strings.
//
// Lexing is maximal munch with one byte of lookahead: a lexeme ends only when the next byte
// cannot extend it. The grammar's authors (our compilers) keep that exact by making lexemes
// self-delimiting (strings end in '"', keys carry their ':'), so no string of the language is lost.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "constrain/regex.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

// A rule (>= 0) or a lexeme (stored as ~index, < 0).
struct Symbol {
  int32_t value = 0;
  static Symbol Rule(int32_t rule) { return Symbol{rule}; }
  static Symbol Lexeme(int32_t lexeme) { return Symbol{~lexeme}; }
  bool is_lexeme() const { return value < 0; }
  int32_t index() const { return value < 0 ? ~value : value; }
  bool operator==(const Symbol&) const = default;
};

class Grammar {
 public:
  struct Production {
    int32_t lhs = 0;
    uint32_t rhs_begin = 0, rhs_end = 0;  // into symbols()
  };

  explicit Grammar(std::shared_ptr<RegexArena> arena) : arena_(std::move(arena)) {}

  // Lexemes are deduplicated by regex id; one must not match the empty string.
  int32_t AddLexeme(RegexId regex);
  int32_t AddRule(std::string name);
  void AddProduction(int32_t rule, std::vector<Symbol> rhs);
  void set_start(int32_t rule) { start_ = rule; }

  // Checks the grammar (no lexeme matches the empty string or nothing, the start rule derives
  // some string), computes nullable rules, and drops alternatives that can never complete (a rule
  // without alternatives derives nothing).
  Status Finalize();

  RegexArena& arena() const { return *arena_; }
  int32_t start() const { return start_; }
  size_t lexeme_count() const { return lexemes_.size(); }
  RegexId lexeme(int32_t i) const { return lexemes_[static_cast<size_t>(i)]; }
  size_t rule_count() const { return rule_names_.size(); }
  const std::string& rule_name(int32_t r) const { return rule_names_[static_cast<size_t>(r)]; }
  bool nullable(int32_t r) const { return nullable_[static_cast<size_t>(r)] != 0; }
  // Bytes of the shortest string a symbol derives (kNoYield: none), for the always-complete
  // steering (matcher.h).
  static constexpr int64_t kNoYield = INT64_MAX / 4;
  int64_t min_yield(Symbol s) const {
    return s.is_lexeme() ? lexeme_min_[static_cast<size_t>(s.index())]
                         : rule_min_[static_cast<size_t>(s.index())];
  }
  const std::vector<Production>& productions() const { return productions_; }
  std::span<const Symbol> rhs(const Production& p) const {
    return std::span<const Symbol>(symbols_).subspan(p.rhs_begin, p.rhs_end - p.rhs_begin);
  }
  // Production ids of `rule`.
  const std::vector<uint32_t>& productions_of(int32_t rule) const {
    return by_rule_[static_cast<size_t>(rule)];
  }

 private:
  std::shared_ptr<RegexArena> arena_;
  std::vector<RegexId> lexemes_;
  std::vector<std::string> rule_names_;
  std::vector<Production> productions_;
  std::vector<Symbol> symbols_;
  std::vector<std::vector<uint32_t>> by_rule_;
  std::vector<uint8_t> nullable_;
  std::vector<int64_t> lexeme_min_, rule_min_;
  int32_t start_ = 0;
};

}  // namespace gemma_local::constrain
