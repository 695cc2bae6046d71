#include "constrain/vocab_index.h"

#include <algorithm>
#include <numeric>

#include "text/tokenizer.h"

namespace gemma_local::constrain {
namespace {

// Marker pieces that tokenizers list as ordinary (non-special) added tokens but that no output
// means as text: Gemma's <unusedN> slots, <mask> and [multimodal].
bool IsMarkerPiece(std::string_view piece) {
  if (piece == "<mask>" || piece == "[multimodal]") return true;
  constexpr std::string_view kUnused = "<unused";
  if (piece.size() > kUnused.size() + 1 && piece.substr(0, kUnused.size()) == kUnused &&
      piece.back() == '>') {
    const std::string_view digits = piece.substr(kUnused.size(), piece.size() - kUnused.size() - 1);
    return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  return false;
}

}  // namespace

Result<std::shared_ptr<const VocabIndex>> VocabIndex::Build(const Tokenizer& tokenizer) {
  const text::TokenizerModel& model = *tokenizer.impl().model;
  const int32_t n = model.vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<bool> excluded(static_cast<size_t>(n), false);
  for (int32_t id = 0; id < n; ++id) {
    const text::PieceKind kind = model.Kind(id);
    if (model.IsSpecial(id) || kind == text::PieceKind::kControl ||
        kind == text::PieceKind::kUnknown || kind == text::PieceKind::kUnused ||
        IsMarkerPiece(model.Piece(id))) {
      excluded[static_cast<size_t>(id)] = true;
      continue;
    }
    GL_RETURN_IF_ERROR(
        model.AppendTokenBytes(id, /*skip_special=*/false, bytes[static_cast<size_t>(id)]));
  }
  return FromTokens(bytes, excluded);
}

std::shared_ptr<const VocabIndex> VocabIndex::FromTokens(const std::vector<std::string>& bytes,
                                                         const std::vector<bool>& excluded) {
  std::shared_ptr<VocabIndex> index(new VocabIndex());
  const auto n = static_cast<int32_t>(bytes.size());
  index->excluded_.Resize(n);
  index->offsets_.reserve(bytes.size() + 1);
  index->offsets_.push_back(0);
  std::fill(std::begin(index->single_byte_), std::end(index->single_byte_), -1);
  for (int32_t id = 0; id < n; ++id) {
    const std::string& b = bytes[static_cast<size_t>(id)];
    const bool skip = b.empty() || (static_cast<size_t>(id) < excluded.size() &&
                                    excluded[static_cast<size_t>(id)]);
    if (skip) {
      index->excluded_.Set(id);
    } else {
      index->bytes_ += b;
      index->max_token_bytes_ = std::max(index->max_token_bytes_, b.size());
      if (b.size() == 1 && index->single_byte_[static_cast<uint8_t>(b[0])] < 0) {
        index->single_byte_[static_cast<uint8_t>(b[0])] = id;
      }
    }
    index->offsets_.push_back(static_cast<uint32_t>(index->bytes_.size()));
  }
  index->BuildTrie();
  return index;
}

// Sorted byte strings are the trie's DFS preorder: each string adds nodes for the part past its
// longest common prefix with the previous one, and closes the subtrees that prefix leaves.
void VocabIndex::BuildTrie() {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab_size(); ++id) {
    if (!excluded_.Test(id)) ids.push_back(id);
  }
  // Equal byte strings keep id order. (std::sort with the id as tie-break rather than
  // std::stable_sort, whose temporary buffer comes from the nothrow operator new.)
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const std::string_view x = TokenBytes(a), y = TokenBytes(b);  // compare as unsigned bytes
    return x != y ? x < y : a < b;
  });
  std::vector<uint32_t> path;  // node indices from depth 1 down
  std::string_view previous;
  for (int32_t id : ids) {
    const std::string_view s = TokenBytes(id);
    size_t common = 0;
    while (common < s.size() && common < previous.size() && s[common] == previous[common]) {
      ++common;
    }
    while (path.size() > common) {
      nodes_[path.back()].subtree_end = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t k = common; k < s.size(); ++k) {
      Node node;
      node.byte = static_cast<uint8_t>(s[k]);
      node.depth = static_cast<uint16_t>(k + 1);
      path.push_back(static_cast<uint32_t>(nodes_.size()));
      nodes_.push_back(node);
    }
    Node& last = nodes_[path.back()];
    if (last.tokens_begin == last.tokens_end) {
      last.tokens_begin = static_cast<uint32_t>(trie_tokens_.size());
    }
    trie_tokens_.push_back(id);
    last.tokens_end = static_cast<uint32_t>(trie_tokens_.size());
    previous = s;
  }
  while (!path.empty()) {
    nodes_[path.back()].subtree_end = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
}

}  // namespace gemma_local::constrain
