#include "constrain/matcher.h"

#include <algorithm>
#include <functional>

namespace gemma_local::constrain {

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const VocabIndex> vocab,
                 std::vector<int32_t> stop_ids, std::shared_ptr<LexerTables> tables)
    : grammar_(std::move(grammar)),
      vocab_(std::move(vocab)),
      stop_ids_(std::move(stop_ids)),
      parser_(grammar_.get()),
      lex_(std::move(tables)) {
  if (lex_ == nullptr || (lex_->grammar_ != nullptr && lex_->grammar_ != grammar_.get()) ||
      (lex_->vocab_ != nullptr && lex_->vocab_ != vocab_.get())) {
    lex_ = std::make_shared<LexerTables>();
  }
  lex_->grammar_ = grammar_.get();
  lex_->vocab_ = vocab_.get();
  std::erase_if(stop_ids_, [&](int32_t id) { return id < 0 || id >= vocab_->vocab_size(); });
  stack_.push_back(Entry{StartState(), parser_.rows(), true});
}

int32_t Matcher::Intern(std::vector<std::pair<int32_t, RegexId>> alive) {
  auto [it, inserted] =
      lex_->state_ids_.try_emplace(alive, static_cast<int32_t>(lex_->states_.size()));
  if (!inserted) return it->second;
  LexState s;
  for (auto [lexeme, r] : alive) {
    if (grammar_->arena().Nullable(r)) s.ended.push_back(lexeme);
  }
  s.alive = std::move(alive);
  s.next.fill(kUnknown);
  lex_->states_.push_back(std::move(s));
  return it->second;
}

int32_t Matcher::StartState() {
  std::span<const int32_t> expected = parser_.Expected();
  std::vector<int32_t> key(expected.begin(), expected.end());
  if (auto it = lex_->start_states_.find(key); it != lex_->start_states_.end()) return it->second;
  std::vector<std::pair<int32_t, RegexId>> alive;
  for (int32_t lexeme : key) alive.emplace_back(lexeme, grammar_->lexeme(lexeme));
  const int32_t id = Intern(std::move(alive));
  lex_->start_states_.emplace(std::move(key), id);
  return id;
}

int32_t Matcher::Transition(int32_t state, uint8_t b) {
  int32_t cached = lex_->states_[static_cast<size_t>(state)].next[b];
  if (cached != kUnknown) return cached;
  RegexArena& arena = grammar_->arena();
  std::vector<std::pair<int32_t, RegexId>> next;
  for (auto [lexeme, r] : lex_->states_[static_cast<size_t>(state)].alive) {
    const RegexId d = arena.Derivative(r, b);
    if (d == RegexArena::kNothing) continue;
    // A derivative that matches nothing is dead even if it is not the empty regex (an
    // intersection or complement can be); the state budget bounds this search.
    Result<int32_t> min = arena.MinLength(d);
    if (min.ok() && *min < 0) continue;
    next.emplace_back(lexeme, d);
  }
  int32_t result;
  if (!next.empty()) {
    result = Intern(std::move(next));
  } else {
    result = lex_->states_[static_cast<size_t>(state)].ended.empty() ? kDead : kEnd;
  }
  lex_->states_[static_cast<size_t>(state)].next[b] = result;
  return result;
}

bool Matcher::PushByte(uint8_t b) {
  const Entry top = stack_.back();
  const int32_t t = Transition(top.lex, b);
  if (t >= 0) {
    stack_.push_back(Entry{t, top.rows, false});
    return true;
  }
  if (t == kDead) return false;
  // Maximal munch: the byte extends no lexeme, so the lexemes that can end here end, and the byte
  // starts the next one.
  const std::vector<int32_t> ended = lex_->states_[static_cast<size_t>(top.lex)].ended;
  if (!parser_.Scan(ended)) return false;
  const int32_t t2 = Transition(StartState(), b);
  if (t2 < 0) {  // lexemes are never empty, so kEnd cannot happen at a lexeme's start
    parser_.Pop();
    return false;
  }
  stack_.push_back(Entry{t2, parser_.rows(), false});
  return true;
}

void Matcher::PopByte() {
  stack_.pop_back();
  parser_.Truncate(stack_.back().rows);
}

bool Matcher::Complete() {
  const Entry top = stack_.back();
  const std::vector<int32_t>& ended = lex_->states_[static_cast<size_t>(top.lex)].ended;
  // Between lexemes (nothing of the next one read): complete when the parse so far is.
  if (ended.empty()) return top.fresh && parser_.Accepting();
  const std::vector<int32_t> copy = ended;
  if (!parser_.Scan(copy)) return false;
  const bool accepting = parser_.Accepting();
  parser_.Pop();
  return accepting;
}

int64_t Matcher::CompletionBytes() {
  const Entry top = stack_.back();
  if (top.fresh) return parser_.CompletionCost(nullptr);
  const LexState& state = lex_->states_[static_cast<size_t>(top.lex)];
  RegexArena& arena = grammar_->arena();
  const std::function<int64_t(int32_t)> current = [&](int32_t lexeme) -> int64_t {
    for (const auto& [l, r] : state.alive) {
      if (l != lexeme) continue;
      Result<int32_t> n = arena.MinLength(r);
      return n.ok() ? *n : -1;
    }
    return -1;
  };
  return parser_.CompletionCost(&current);
}

int64_t Matcher::CompletionBytesAfter(int32_t id) {
  if (std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) {
    return Complete() ? 0 : Grammar::kNoYield;
  }
  if (id < 0 || id >= vocab_->vocab_size() || vocab_->Excluded(id)) return Grammar::kNoYield;
  const std::string_view bytes = vocab_->TokenBytes(id);
  size_t pushed = 0;
  while (pushed < bytes.size() && PushByte(static_cast<uint8_t>(bytes[pushed]))) ++pushed;
  const int64_t cost = pushed == bytes.size() ? CompletionBytes() : Grammar::kNoYield;
  while (pushed-- > 0) PopByte();
  return cost;
}

int32_t Matcher::SteerToken(const TokenMask& mask) {
  for (int32_t id : stop_ids_) {
    if (id < mask.size() && mask.Test(id)) return id;
  }
  int32_t best = -1;
  int64_t best_cost = Grammar::kNoYield;
  for (int b = 0; b < 256; ++b) {
    const int32_t id = vocab_->SingleByteToken(static_cast<uint8_t>(b));
    if (id < 0 || !mask.Test(id)) continue;
    const int64_t cost = CompletionBytesAfter(id);
    if (cost < best_cost) {
      best = id;
      best_cost = cost;
    }
  }
  return best;
}

namespace {

struct MaskVisitor {
  Matcher* matcher;
  TokenMask* mask;
  bool Push(uint8_t b, uint32_t /*node*/) { return matcher->PushByte(b); }
  void Pop() { matcher->PopByte(); }
  void Token(int32_t id) { mask->Set(id); }
};

}  // namespace

const StateMasks& Matcher::Inner(int32_t state) {
  auto& slot = lex_->inner_[state];
  if (slot) return *slot;
  // The state's behaviour over token-length strings, as the vocabulary cache's key.
  const auto horizon = static_cast<uint32_t>(vocab_->max_token_bytes());
  StateMaskCache& shared = vocab_->state_masks();
  std::vector<RegexFingerprint> parts;
  for (const auto& [lexeme, r] : lex_->states_[static_cast<size_t>(state)].alive) {
    parts.push_back(
        grammar_->arena().BehaviorFingerprint(r, horizon, shared.key(), &lex_->fingerprints_));
  }
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  const RegexFingerprint key = CombineFingerprints(parts);
  if (std::shared_ptr<const StateMasks> hit = shared.Find(key)) {
    slot = std::move(hit);
    return *slot;
  }
  auto masks = std::make_shared<StateMasks>();
  masks->inner.Resize(vocab_->vocab_size());
  // The lexer alone: a transition to a state continues the lexemes (inner); an end needs the
  // parser, so that subtree is recorded instead of walked. A node's state is a function of its
  // parent's, so the walk keeps the state and the byte at each depth and never pops: one table
  // lookup per visited node (a transition not computed yet is computed once).
  std::span<const VocabIndex::Node> nodes = vocab_->trie();
  std::span<const int32_t> trie_tokens = vocab_->trie_tokens();
  std::vector<int32_t> at(horizon + 1, state);  // at[d]: the state after the path's d bytes
  std::string prefix(horizon + 1, '\0');        // prefix[d]: the path's byte d
  StateMasks* out = masks.get();
  const auto end = static_cast<uint32_t>(nodes.size());
  for (uint32_t i = 0; i < end;) {
    const VocabIndex::Node& node = nodes[i];
    const int32_t parent = at[node.depth - 1u];
    int32_t t = lex_->states_[static_cast<size_t>(parent)].next[node.byte];
    if (t == kUnknown) t = Transition(parent, node.byte);
    if (t < 0) {
      if (t == kEnd) out->boundaries.emplace_back(i, prefix.substr(0, node.depth - 1u));
      i = node.subtree_end;
      continue;
    }
    at[node.depth] = t;
    prefix[node.depth - 1u] = static_cast<char>(node.byte);
    for (uint32_t k = node.tokens_begin; k < node.tokens_end; ++k) out->inner.Set(trie_tokens[k]);
    ++i;
  }
  shared.Insert(key, masks);
  slot = std::move(masks);
  return *slot;
}

Status Matcher::FillMask(TokenMask* mask) {
  if (mask->size() != vocab_->vocab_size()) mask->Resize(vocab_->vocab_size());
  mask->Clear();
  if (finished_) return InvalidArgumentError("the constrained value is already finished");
  const StateMasks& cached = Inner(stack_.back().lex);
  *mask = cached.inner;
  MaskVisitor visitor{this, mask};
  for (const auto& [node, prefix] : cached.boundaries) {
    size_t pushed = 0;
    while (pushed < prefix.size() && PushByte(static_cast<uint8_t>(prefix[pushed]))) ++pushed;
    if (pushed == prefix.size()) vocab_->WalkSubtree(node, visitor);
    while (pushed-- > 0) PopByte();
  }
  // A stop id only once the value is complete, even one that is also an ordinary text token.
  const bool complete = Complete();
  for (int32_t id : stop_ids_) {
    if (complete) {
      mask->Set(id);
    } else {
      mask->Reset(id);
    }
  }
  if (mask->Empty()) {
    return InternalError("constraint dead end after " + std::to_string(bytes_accepted_) +
                         " bytes: no token continues the value");
  }
  return Status::Ok();
}

Status Matcher::AcceptBytes(std::string_view bytes) {
  const size_t depth = stack_.size();
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (!PushByte(static_cast<uint8_t>(bytes[i]))) {
      while (stack_.size() > depth) PopByte();
      return InvalidArgumentError("byte " + std::to_string(bytes_accepted_ + i) +
                                  " is not allowed by the constraint");
    }
  }
  bytes_accepted_ += bytes.size();
  // Keep only the top entry: nothing pops below an accepted token.
  const Entry top = stack_.back();
  stack_.assign(1, top);
  return Status::Ok();
}

Status Matcher::Accept(int32_t id) {
  if (finished_) return InvalidArgumentError("the constrained value is already finished");
  if (id < 0 || id >= vocab_->vocab_size()) {
    return InvalidArgumentError("token " + std::to_string(id) + " is out of range");
  }
  if (std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end()) {
    if (!Complete()) {
      return InvalidArgumentError("stop token " + std::to_string(id) +
                                  " before the constrained value is complete");
    }
    finished_ = true;
    return Status::Ok();
  }
  if (vocab_->Excluded(id)) {
    return InvalidArgumentError("token " + std::to_string(id) +
                                " is never allowed inside a constrained value");
  }
  return AcceptBytes(vocab_->TokenBytes(id));
}

}  // namespace gemma_local::constrain
