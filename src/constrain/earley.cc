#include "constrain/earley.h"

#include <algorithm>

namespace gemma_local::constrain {

EarleyParser::EarleyParser(const Grammar* grammar) : grammar_(grammar) { Reset(); }

void EarleyParser::Reset() {
  items_.clear();
  expected_.clear();
  rows_.clear();
  scanned_.clear();
  memo_.valid = false;
  row_begin_ = 0;
  seen_.clear();
  for (uint32_t p : grammar_->productions_of(grammar_->start())) Add(Item{p, 0, 0});
  Close();
}

void EarleyParser::Add(const Item& item) {
  if (seen_.insert(item).second) items_.push_back(item);
}

void EarleyParser::Close() {
  const auto row_index = static_cast<uint32_t>(rows_.size());
  const auto& productions = grammar_->productions();
  for (size_t i = row_begin_; i < items_.size(); ++i) {
    const Item item = items_[i];
    const Grammar::Production& p = productions[item.production];
    std::span<const Symbol> rhs = grammar_->rhs(p);
    if (item.dot == rhs.size()) {
      // Complete: advance the items of the origin row waiting for this rule. An origin equal to
      // this row is a nullable completion, already covered by the prediction step below.
      if (item.origin == row_index) continue;
      const Row& origin = rows_[item.origin];
      for (uint32_t k = origin.items_begin; k < origin.items_end; ++k) {
        const Item& waiting = items_[k];
        std::span<const Symbol> wrhs = grammar_->rhs(productions[waiting.production]);
        if (waiting.dot < wrhs.size() && !wrhs[waiting.dot].is_lexeme() &&
            wrhs[waiting.dot].index() == p.lhs) {
          Add(Item{waiting.production, waiting.dot + 1, waiting.origin});
        }
      }
      continue;
    }
    const Symbol next = rhs[item.dot];
    if (next.is_lexeme()) continue;
    for (uint32_t q : grammar_->productions_of(next.index())) Add(Item{q, 0, row_index});
    if (grammar_->nullable(next.index())) Add(Item{item.production, item.dot + 1, item.origin});
  }
  Row row;
  row.items_begin = row_begin_;
  row.items_end = static_cast<uint32_t>(items_.size());
  row.expected_begin = static_cast<uint32_t>(expected_.size());
  row.accepting = false;
  row.id = next_row_id_++;
  for (size_t i = row_begin_; i < items_.size(); ++i) {
    const Item& item = items_[i];
    const Grammar::Production& p = productions[item.production];
    std::span<const Symbol> rhs = grammar_->rhs(p);
    if (item.dot < rhs.size()) {
      if (rhs[item.dot].is_lexeme()) expected_.push_back(rhs[item.dot].index());
    } else if (item.origin == 0 && p.lhs == grammar_->start()) {
      row.accepting = true;
    }
  }
  std::sort(expected_.begin() + row.expected_begin, expected_.end());
  expected_.erase(std::unique(expected_.begin() + row.expected_begin, expected_.end()),
                  expected_.end());
  row.expected_end = static_cast<uint32_t>(expected_.size());
  rows_.push_back(row);
  row_begin_ = static_cast<uint32_t>(items_.size());
  seen_.clear();
}

bool EarleyParser::Scan(std::span<const int32_t> lexemes) {
  const Row& top = rows_.back();
  if (memo_.valid && memo_.parent == top.id &&
      std::equal(lexemes.begin(), lexemes.end(), memo_.lexemes.begin(), memo_.lexemes.end())) {
    if (!memo_.accepted) return false;
    Row row = memo_.row;
    row.items_begin = static_cast<uint32_t>(items_.size());
    items_.insert(items_.end(), memo_.items.begin(), memo_.items.end());
    row.items_end = static_cast<uint32_t>(items_.size());
    row.expected_begin = static_cast<uint32_t>(expected_.size());
    expected_.insert(expected_.end(), memo_.expected.begin(), memo_.expected.end());
    row.expected_end = static_cast<uint32_t>(expected_.size());
    rows_.push_back(row);
    scanned_.emplace_back(lexemes.begin(), lexemes.end());
    row_begin_ = static_cast<uint32_t>(items_.size());
    return true;
  }
  const uint64_t parent = top.id;
  const auto& productions = grammar_->productions();
  for (uint32_t k = top.items_begin; k < top.items_end; ++k) {
    const Item item = items_[k];
    std::span<const Symbol> rhs = grammar_->rhs(productions[item.production]);
    if (item.dot < rhs.size() && rhs[item.dot].is_lexeme() &&
        std::find(lexemes.begin(), lexemes.end(), rhs[item.dot].index()) != lexemes.end()) {
      Add(Item{item.production, item.dot + 1, item.origin});
    }
  }
  if (items_.size() == row_begin_) {
    seen_.clear();
    memo_.valid = true;
    memo_.parent = parent;
    memo_.lexemes.assign(lexemes.begin(), lexemes.end());
    memo_.accepted = false;
    return false;
  }
  Close();
  scanned_.emplace_back(lexemes.begin(), lexemes.end());
  return true;
}

void EarleyParser::Pop() {
  if (rows_.size() <= 1) return;
  const Row& top = rows_.back();
  memo_.valid = true;
  memo_.parent = rows_[rows_.size() - 2].id;
  memo_.lexemes = std::move(scanned_.back());
  scanned_.pop_back();
  memo_.accepted = true;
  memo_.row = top;
  memo_.items.assign(items_.begin() + top.items_begin, items_.begin() + top.items_end);
  memo_.expected.assign(expected_.begin() + top.expected_begin,
                        expected_.begin() + top.expected_end);
  items_.resize(top.items_begin);
  expected_.resize(top.expected_begin);
  rows_.pop_back();
  row_begin_ = static_cast<uint32_t>(items_.size());
}

std::span<const int32_t> EarleyParser::Expected() const {
  const Row& top = rows_.back();
  return std::span<const int32_t>(expected_).subspan(top.expected_begin,
                                                     top.expected_end - top.expected_begin);
}

}  // namespace gemma_local::constrain

namespace gemma_local::constrain {

int64_t EarleyParser::CompletionCost(const std::function<int64_t(int32_t)>* current) const {
  const auto& productions = grammar_->productions();
  constexpr int64_t kNone = Grammar::kNoYield;
  auto suffix = [&](const Item& item, uint32_t from) {
    int64_t cost = 0;
    std::span<const Symbol> rhs = grammar_->rhs(productions[item.production]);
    for (size_t k = from; k < rhs.size(); ++k)
      cost = std::min(kNone, cost + grammar_->min_yield(rhs[k]));
    return cost;
  };
  // up(row, rule): the cost after `rule`, begun at `row`, completes. Same-row cycles (unit
  // rules) are cut by the placeholder, which can only overestimate: steering then starts early.
  std::map<std::pair<uint32_t, int32_t>, int64_t> memo;
  std::function<int64_t(uint32_t, int32_t)> up = [&](uint32_t row, int32_t rule) -> int64_t {
    const auto key = std::make_pair(row, rule);
    if (auto it = memo.find(key); it != memo.end()) return it->second;
    memo[key] = kNone;
    int64_t best = row == 0 && rule == grammar_->start() ? 0 : kNone;
    const Row& r = rows_[row];
    for (uint32_t k = r.items_begin; k < r.items_end; ++k) {
      const Item& item = items_[k];
      std::span<const Symbol> rhs = grammar_->rhs(productions[item.production]);
      if (item.dot >= rhs.size() || rhs[item.dot].is_lexeme() || rhs[item.dot].index() != rule) {
        continue;
      }
      const int64_t rest = suffix(item, item.dot + 1);
      if (rest >= best) continue;
      best = std::min(best, rest + up(item.origin, productions[item.production].lhs));
    }
    memo[key] = best;
    return best;
  };
  const Row& top = rows_.back();
  int64_t best = current == nullptr && top.accepting ? 0 : kNone;
  for (uint32_t k = top.items_begin; k < top.items_end; ++k) {
    const Item& item = items_[k];
    std::span<const Symbol> rhs = grammar_->rhs(productions[item.production]);
    if (item.dot >= rhs.size() || !rhs[item.dot].is_lexeme()) continue;
    int64_t cost;
    if (current == nullptr) {
      cost = suffix(item, item.dot);
    } else {
      const int64_t finish = (*current)(rhs[item.dot].index());
      if (finish < 0) continue;
      cost = std::min(kNone, finish + suffix(item, item.dot + 1));
    }
    if (cost >= best) continue;
    best = std::min(best, cost + up(item.origin, productions[item.production].lhs));
  }
  return std::min(best, kNone);
}

}  // namespace gemma_local::constrain
