// Earley parser over a Grammar's lexemes, as a stack of rows: Scan pushes the row after one
// lexeme and Pop drops it, which is what a token-trie walk needs (try a lexeme, look deeper,
// backtrack). Earley rather than a pushdown automaton because compiled schemas are ambiguous
// (anyOf branches that share a prefix) and GBNF grammars may be; it also handles empty rules
// (Aycock-Horspool: predicting a nullable rule also steps over it).
//
// Not thread-safe; one parser per generating sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <unordered_set>
#include <vector>

#include "constrain/grammar.h"

namespace gemma_local::constrain {

class EarleyParser {
 public:
  explicit EarleyParser(const Grammar* grammar);

  // Back to the single row predicting the start rule.
  void Reset();
  // Scans, at the top row, a lexeme that matched (any of `lexemes`, when the text matched several
  // at once). Pushes the resulting row and returns true, or pushes nothing and returns false when
  // no item expects any of them.
  bool Scan(std::span<const int32_t> lexemes);
  // Drops the top row (never the first).
  void Pop();
  size_t rows() const { return rows_.size(); }
  void Truncate(size_t rows) {
    while (rows_.size() > rows) Pop();
  }

  // Lexemes some item at the top row expects (sorted, unique).
  std::span<const int32_t> Expected() const;
  // Bytes of the shortest way to finish the parse from the top row. `current(lexeme)` is the cost
  // to finish the lexeme being read if it is `lexeme` and still alive, or -1; null means no
  // lexeme has started (every expected lexeme costs its shortest match). Grammar::kNoYield when
  // the parse cannot finish.
  int64_t CompletionCost(const std::function<int64_t(int32_t)>* current) const;

  // The start rule is complete over everything scanned.
  bool Accepting() const { return rows_.back().accepting; }

 private:
  struct Item {
    uint32_t production;
    uint32_t dot;
    uint32_t origin;  // row where the production's match began
  };
  struct Row {
    uint32_t items_begin, items_end;
    uint32_t expected_begin, expected_end;
    bool accepting;
    uint64_t id;  // unique per row computed; a restored row keeps its id
  };
  // The last row popped (or scan refused), kept to answer the same scan at the same row again
  // without the closure: a trie walk scans the same lexeme from the same row many times
  // (llguidance's row reuse).
  struct ScanMemo {
    bool valid = false;
    uint64_t parent = 0;
    std::vector<int32_t> lexemes;
    bool accepted = false;
    Row row{};
    std::vector<Item> items;
    std::vector<int32_t> expected;
  };
  // Adds `item` to the row under construction (items_[row_begin..]) unless present.
  void Add(const Item& item);
  // Predict / complete to a fixed point over the row that starts at `row_begin_` and seals it.
  void Close();

  const Grammar* grammar_;
  std::vector<Item> items_;
  std::vector<int32_t> expected_;
  std::vector<Row> rows_;
  uint32_t row_begin_ = 0;
  struct ItemHash {
    size_t operator()(const Item& i) const {
      return (static_cast<size_t>(i.production) * 0x9E3779B97F4A7C15ull) ^
             (static_cast<size_t>(i.dot) * 0xC2B2AE3D27D4EB4Full) ^ i.origin;
    }
  };
  struct ItemEq {
    bool operator()(const Item& a, const Item& b) const {
      return a.production == b.production && a.dot == b.dot && a.origin == b.origin;
    }
  };
  std::unordered_set<Item, ItemHash, ItemEq> seen_;  // items of the row under construction
  std::vector<std::vector<int32_t>> scanned_;        // per row: the lexemes whose scan made it
  uint64_t next_row_id_ = 0;
  ScanMemo memo_;
};

}  // namespace gemma_local::constrain
