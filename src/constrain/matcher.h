// Per-request constraint state: which tokens may come next (FillMask), advancing by the token the
// sampler chose (Accept), and whether the value is complete (a stop token is allowed only then).
//
// The state is a stack of (lexer state, parser rows) entries, one per byte, so a trie walk can
// push a byte, look deeper and pop it again. The lexer state is the set of lexemes still alive in
// the current token of text with each one's regex derivative, interned into a lazily built DFA
// whose transitions are a flat table.
//
// A mask is never empty: an empty one is kInternal naming the byte offset (a dead end is an
// error, never a hang). Not thread-safe: one Matcher per generating sequence, and all Matchers of
// one grammar on one thread, since lexing grows the grammar's arena and they share LexerTables.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "constrain/earley.h"
#include "constrain/grammar.h"
#include "constrain/state_masks.h"
#include "constrain/token_mask.h"
#include "constrain/vocab_index.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

// The lexer DFA and the per-state masks of one grammar over one vocabulary. Every matcher of the
// grammar computes them the same way, so the matchers of a shared compiled constraint (requests
// with the same schema) share them: only the first to reach a lexer state pays for its mask, a
// walk of the whole vocabulary (milliseconds for 262k tokens). Same thread rule as Matcher.
class LexerTables {
 public:
  LexerTables() = default;
  LexerTables(const LexerTables&) = delete;
  LexerTables& operator=(const LexerTables&) = delete;
  size_t states() const { return states_.size(); }
  size_t masks() const { return inner_.size(); }

 private:
  friend class Matcher;
  struct LexState {
    std::vector<std::pair<int32_t, RegexId>> alive;  // (lexeme, derivative), sorted
    std::vector<int32_t> ended;                      // lexemes that may end here
    std::array<int32_t, 256> next;                   // lazily: state id, kEnd or kDead
  };
  const Grammar* grammar_ = nullptr;  // bound by the first matcher
  const VocabIndex* vocab_ = nullptr;
  std::vector<LexState> states_;
  std::map<std::vector<std::pair<int32_t, RegexId>>, int32_t> state_ids_;
  std::map<std::vector<int32_t>, int32_t> start_states_;  // by expected lexemes
  std::map<int32_t, std::shared_ptr<const StateMasks>> inner_;
  RegexArena::FingerprintMemo fingerprints_;  // at the vocabulary's horizon
};

class Matcher {
 public:
  // `grammar` must be finalized. `stop_ids` end the value (allowed only when it is complete).
  // `tables` (optional) are shared with the grammar's other matchers; tables bound to another
  // grammar or vocabulary are not used (the matcher keeps its own).
  Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const VocabIndex> vocab,
          std::vector<int32_t> stop_ids, std::shared_ptr<LexerTables> tables = nullptr);

  // The tokens that may come next, never empty.
  Status FillMask(TokenMask* mask);
  // Advances by one token; kInvalidArgument (state unchanged) when the token is not allowed.
  // Accepting a stop token finishes the matcher.
  Status Accept(int32_t id);
  // Advances by raw bytes (tests, forced text); same contract as Accept.
  Status AcceptBytes(std::string_view bytes);
  // The text so far is a whole value of the grammar.
  bool Complete();
  // Always complete: bytes of the shortest way to finish the value from here (each byte has a
  // token, so also an upper bound on the tokens), Grammar::kNoYield if none.
  int64_t CompletionBytes();
  // The same after `id` (not accepted); kNoYield when `id` is not allowed.
  int64_t CompletionBytesAfter(int32_t id);
  // The allowed token that brings the value closest to complete: a stop token when it is
  // complete, else the single-byte token whose byte starts a shortest completion.
  int32_t SteerToken(const TokenMask& mask);

  // A stop token was accepted.
  bool finished() const { return finished_; }
  size_t bytes_accepted() const { return bytes_accepted_; }

  // One byte onto the stack: false (nothing pushed) when the grammar rejects it here. Public for
  // the trie walk's visitor.
  bool PushByte(uint8_t b);
  void PopByte();

 private:
  static constexpr int32_t kUnknown = -3, kDead = -2, kEnd = -1;
  using LexState = LexerTables::LexState;
  struct Entry {
    int32_t lex;
    size_t rows;  // parser rows at this point
    bool fresh;   // no byte of the current lexeme read yet
  };
  int32_t Intern(std::vector<std::pair<int32_t, RegexId>> alive);
  int32_t Transition(int32_t state, uint8_t b);
  // The lexer state at the start of a lexeme, for the parser's top row.
  int32_t StartState();

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const VocabIndex> vocab_;
  std::vector<int32_t> stop_ids_;
  EarleyParser parser_;
  std::shared_ptr<LexerTables> lex_;
  // The state's masks: from this grammar's tables, else the vocabulary's cache (a state with the
  // same behaviour in another grammar), else a walk of the trie.
  const StateMasks& Inner(int32_t state);
  std::vector<Entry> stack_;
  bool finished_ = false;
  size_t bytes_accepted_ = 0;
};

}  // namespace gemma_local::constrain
