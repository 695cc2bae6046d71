// What a constraint needs to know about a vocabulary, built once per tokenizer: each token's
// bytes, the tokens that may never appear inside a constrained value, and a byte trie of the rest
// for mask computation.
//
// Grammars are byte-level (src/constrain/regex.h), so a token is allowed when its bytes drive the
// grammar to a live state. The trie is stored flat in DFS preorder (llguidance's toktrie layout):
// a walker pushes one byte per node and skips a rejected node's whole subtree with one jump, so a
// mask costs only the nodes whose prefix the grammar still accepts.
//
// Excluded tokens: special and control pieces, <unk>, unused slots and marker pieces such as
// <mask> and [multimodal] (text no model output means literally). Their bytes are never in the
// trie, so no byte grammar can reach them; stop tokens are added by the matcher, only when the
// value is complete.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "constrain/state_masks.h"
#include "constrain/token_mask.h"
#include "gemma_local/status.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local::constrain {

class VocabIndex {
 public:
  // One node of the flat trie: the byte that leads to it from its parent, its depth (root
  // children are depth 1), the index one past its subtree, and the tokens whose bytes end here
  // (trie_tokens()[tokens_begin, tokens_end)).
  struct Node {
    uint8_t byte = 0;
    uint16_t depth = 0;
    uint32_t subtree_end = 0;
    uint32_t tokens_begin = 0;
    uint32_t tokens_end = 0;
  };

  static Result<std::shared_ptr<const VocabIndex>> Build(const Tokenizer& tokenizer);
  // From explicit token bytes (tests, other tokenizers): `excluded[i]` marks ids that never
  // appear in a value; ids with empty bytes are excluded too.
  static std::shared_ptr<const VocabIndex> FromTokens(const std::vector<std::string>& bytes,
                                                      const std::vector<bool>& excluded);

  int32_t vocab_size() const { return static_cast<int32_t>(offsets_.size()) - 1; }
  std::string_view TokenBytes(int32_t id) const {
    const auto i = static_cast<size_t>(id);
    return std::string_view(bytes_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  bool Excluded(int32_t id) const { return excluded_.Test(id); }
  const TokenMask& excluded() const { return excluded_; }
  int32_t excluded_count() const { return excluded_.Count(); }
  // A token whose bytes are exactly `b` (-1 if none): with one for every byte, any live byte
  // state can be left by some token, which is why a byte-level grammar never dead-ends.
  int32_t SingleByteToken(uint8_t b) const { return single_byte_[b]; }
  size_t max_token_bytes() const { return max_token_bytes_; }

  // Lexer states' masks shared by every grammar over this vocabulary (thread-safe).
  StateMaskCache& state_masks() const { return *state_masks_; }

  std::span<const Node> trie() const { return nodes_; }
  std::span<const int32_t> trie_tokens() const { return trie_tokens_; }

  // Depth-first walk over the trie. The visitor provides
  //   bool Push(uint8_t byte, uint32_t node)  // extend the prefix; false skips the subtree
  //   void Pop()                              // undo the last successful Push
  //   void Token(int32_t id)                  // a token whose bytes are the current prefix
  template <typename Visitor>
  void Walk(Visitor& visitor) const {
    WalkRange(0, static_cast<uint32_t>(nodes_.size()), 0, visitor);
  }
  // The subtree of `node` (the node included), with the visitor already holding its parent's
  // prefix.
  template <typename Visitor>
  void WalkSubtree(uint32_t node, Visitor& visitor) const {
    WalkRange(node, nodes_[node].subtree_end, nodes_[node].depth - 1, visitor);
  }

 private:
  template <typename Visitor>
  void WalkRange(uint32_t begin, uint32_t end, int base_depth, Visitor& visitor) const {
    int depth = base_depth;
    uint32_t i = begin;
    while (i < end) {
      const Node& node = nodes_[i];
      while (depth >= node.depth) {
        visitor.Pop();
        --depth;
      }
      if (!visitor.Push(node.byte, i)) {
        i = node.subtree_end;
        continue;
      }
      ++depth;
      for (uint32_t t = node.tokens_begin; t < node.tokens_end; ++t) visitor.Token(trie_tokens_[t]);
      ++i;
    }
    while (depth > base_depth) {
      visitor.Pop();
      --depth;
    }
  }

  VocabIndex() = default;
  void BuildTrie();

  std::string bytes_;              // token bytes back to back
  std::vector<uint32_t> offsets_;  // token i is bytes_[offsets_[i], offsets_[i + 1])
  TokenMask excluded_;
  int32_t single_byte_[256] = {};
  size_t max_token_bytes_ = 0;
  std::vector<Node> nodes_;
  std::vector<int32_t> trie_tokens_;
  std::shared_ptr<StateMaskCache> state_masks_ = std::make_shared<StateMaskCache>();
};

}  // namespace gemma_local::constrain
