// Gemma tokenizer core: vocabulary tables and the two segmentation algorithms Gemma checkpoints
// need, behind the public facade in include/gemma_local/tokenizer.h.
//
// Pipeline for Encode (both algorithms):
//   1. Added tokens (HF `added_tokens`; GGUF CONTROL / USER_DEFINED / UNKNOWN pieces) are cut out
//      of the raw text first, leftmost-longest (Hugging Face's AddedVocabulary semantics). Special
//      ones (HF `special: true`; GGUF CONTROL / UNKNOWN) only when the caller allows it.
//   2. Each remaining segment has ' ' replaced by U+2581 ("▁"); no dummy prefix is added.
//   3. The segment is split into UTF-8 characters and merged:
//      - kBpeMerges (tokenizer.json, GGUF "gemma4"): Hugging Face BPE. Characters missing from the
//        vocabulary become <0xNN> byte pieces up front; the adjacent pair with the lowest merge
//        rank (leftmost on ties) is merged until no ranked pair remains.
//      - kSpmScores (GGUF "llama"): llama.cpp's SentencePiece-BPE. Any adjacent pair whose
//        concatenation is a vocabulary piece is a candidate; the highest piece score wins (leftmost
//        on ties); leftover characters that are not pieces become <0xNN> bytes.
//   Before merging, a segment is cut into words before each "▁" that no piece can span (see
//   split_at_space_); each word merges alone, and within one Encode call a repeated word reuses
//   its ids. This changes no result, only the cost: merge heaps stay small and hot.
//   Gemma 4 GGUF vocabularies additionally pre-split each segment into newline runs and the text
//   between them (llama.cpp's `[^\n]+|[\n]+`), and a newline run that is itself a piece is kept
//   whole.
// Both merge loops use a binary heap over candidate pairs and a doubly linked list of symbols held
// in flat arrays: O(n log n) per segment, no string rebuilding (rejected alternative: the naive
// "rescan all pairs after every merge" loop is quadratic and takes minutes on a 1 MB input that
// has no spaces to split on; Gemma's tokenizer does not pre-split on whitespace at all).
//
// Thread-safety: a TokenizerModel is immutable after Build(); all methods are const and keep their
// scratch state on the stack, so one instance can serve any number of threads.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gemma_local/status.h"
#include "gemma_local/tokenizer.h"
#include "text/tokenizer_tables.h"

namespace gemma_local::gguf {
class GgufFile;
}

namespace gemma_local::text {

enum class Algorithm { kBpeMerges, kSpmScores };

// Piece kinds, mirroring llama.cpp's token types (GGUF tokenizer.ggml.token_type values 1..6).
enum class PieceKind : uint8_t { kNormal, kUnknown, kControl, kUserDefined, kUnused, kByte };

// Everything a loader extracts from a tokenizer file; TokenizerModel::Build validates it.
//
// Strings are views (no per-entry allocation while loading 262k pieces and 514k merges): they
// point into `owned` / `owned_lists`, or into the caller's source text, which must outlive
// Build().
struct MergeSpec {
  std::string_view a, b;
};
struct VocabSpec {
  std::string source;  // file name, for error messages
  Algorithm algorithm = Algorithm::kBpeMerges;
  bool split_newline_runs = false;       // Gemma 4 GGUF pre-split
  std::vector<std::string_view> pieces;  // by id; must be valid UTF-8
  std::vector<float> scores;             // by id (kSpmScores); empty means all 0
  std::vector<PieceKind> kinds;          // by id
  // BPE merges in rank order (kBpeMerges). A merge whose parts or result are not pieces is an
  // error, as in Hugging Face tokenizers.
  std::vector<MergeSpec> merges;
  // Ids whose piece strings must be pairwise distinct (Hugging Face model.vocab keys; a JSON
  // object with a repeated key is rejected), as a flag per id; empty: no such check.
  std::vector<uint8_t> distinct;
  // Ids matched in raw text before the model runs, and whether each needs parse_special.
  std::vector<std::pair<int32_t, bool>> added;  // (id, is_special)
  // Ids reported by IsSpecial() and dropped by Decode(skip_special).
  std::vector<int32_t> special_ids;
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false, add_eos = false;
  // Storage behind the views (a deque and moved vectors never relocate their strings).
  std::deque<std::string> owned;
  std::vector<std::vector<std::string>> owned_lists;
};

struct EncodeFlags {
  bool add_bos = false;  // prepend bos_id unless the encoded text already starts with it
  bool add_eos = false;
  bool parse_special = true;
  // Sorted, disjoint [begin, end) byte ranges in which special-token text is not matched (a
  // special match that would overlap one is not made); see EncodeOptions::literal_spans.
  std::span<const std::pair<size_t, size_t>> literal_spans;
};

class TokenizerModel {
 public:
  static Result<std::shared_ptr<const TokenizerModel>> Build(VocabSpec spec);

  // Appends the ids of `text` (valid UTF-8, else kInvalidArgument) to `out`.
  Status Encode(std::string_view text, const EncodeFlags& flags, std::vector<int32_t>& out) const;
  // The [begin, end) byte ranges of `text` that Encode with parse_special would take as special
  // tokens, in order.
  std::vector<std::pair<size_t, size_t>> FindSpecial(std::string_view text) const;
  // The bytes `id` stands for: a <0xNN> piece is that byte, anything else its text with "▁" as
  // ' '. Special pieces are empty when skip_special. kInvalidArgument for ids out of range.
  Status AppendTokenBytes(int32_t id, bool skip_special, std::string& out) const;
  // Hugging Face's decoder chain (Replace ▁, ByteFallback, Fuse): consecutive byte pieces are
  // joined, and a run that is not valid UTF-8 becomes one U+FFFD per byte.
  Result<std::string> Decode(std::span<const int32_t> ids, bool skip_special) const;

  int32_t vocab_size() const { return static_cast<int32_t>(kinds_.size()); }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  Algorithm algorithm() const { return algorithm_; }
  const std::string& source() const { return source_; }
  // -1 when absent. For duplicate piece strings the highest id wins (llama.cpp's rule).
  int32_t PieceToId(std::string_view piece) const;
  std::string_view Piece(int32_t id) const {
    const auto i = static_cast<size_t>(id);
    return std::string_view(piece_bytes_)
        .substr(piece_offsets_[i], piece_offsets_[i + 1] - piece_offsets_[i]);
  }
  PieceKind Kind(int32_t id) const { return kinds_[static_cast<size_t>(id)]; }
  bool IsSpecial(int32_t id) const { return is_special_[static_cast<size_t>(id)] != 0; }
  // 0..255 for byte pieces, -1 otherwise.
  int ByteValue(int32_t id) const { return byte_value_[static_cast<size_t>(id)]; }

 private:
  TokenizerModel() = default;
  TokenizerModel(const TokenizerModel&) = delete;
  TokenizerModel& operator=(const TokenizerModel&) = delete;

  struct AddedMatch {
    int32_t id = -1;
    size_t length = 0;
    bool special = false;
  };
  AddedMatch MatchAdded(std::string_view text, size_t pos, bool parse_special) const;
  struct EncodeState;  // per-call buffers and word cache (tokenizer.cc)
  void EncodeSegment(std::string_view raw, EncodeState& st, std::vector<int32_t>& out) const;
  // Cuts `text` into words at the "▁" positions SplitsBefore allows and merges each word alone.
  void EncodeWords(std::string_view text, EncodeState& st, std::vector<int32_t>& out) const;
  bool SplitsBefore(std::string_view text, size_t pos) const;
  void EncodeBpe(std::string_view word, EncodeState& st, std::vector<int32_t>& out) const;
  void EncodeSpm(std::string_view word, EncodeState& st, std::vector<int32_t>& out) const;
  void PushBytes(std::string_view bytes, std::vector<int32_t>& out) const;

  std::string source_;
  Algorithm algorithm_ = Algorithm::kBpeMerges;
  bool split_newline_runs_ = false;
  // Piece strings by id, back to back: piece i is piece_bytes_[piece_offsets_[i], [i + 1]).
  std::string piece_bytes_;
  std::vector<uint32_t> piece_offsets_;
  std::vector<float> scores_;
  std::vector<PieceKind> kinds_;
  std::vector<uint8_t> is_special_;
  std::vector<int16_t> byte_value_;
  int32_t byte_to_id_[256];
  PieceIndex piece_index_;  // points into piece_bytes_ (so the model is neither copied nor moved)
  int32_t ascii_id_[128];   // single-byte pieces, the commonest per-character lookup
  MergeTable merges_;
  // Word cutting (EncodeWords). Every symbol the merge loops build is a vocabulary piece whose
  // string is the concatenation of its initial symbols' strings, so no symbol can span a
  // boundary "c|▁" when no piece contains the byte c followed by "▁": the text on each side then
  // merges exactly as it would alone (and the heaps' tie-breaks keep each side's order). Exact for
  // every vocabulary; how often it cuts depends on it (Gemma: before nearly every space).
  bool split_at_space_ = false;        // "▁" is itself a piece
  bool piece_before_space_[256] = {};  // some piece contains this byte followed by "▁"

  // Added-token trie over bytes: node 0 is the root; edges keyed (node << 8) | byte.
  struct TrieNode {
    int32_t id = -1;
    bool special = false;
  };
  std::vector<TrieNode> trie_;
  std::unordered_map<uint64_t, int32_t> trie_edges_;
  bool added_first_byte_[256] = {};

  int32_t bos_id_ = -1, eos_id_ = -1, unk_id_ = -1, pad_id_ = -1;
  bool add_bos_ = false, add_eos_ = false;
};

// Loaders (tokenizer_load.cc). `config_json` may be empty (no tokenizer_config.json).
Result<VocabSpec> VocabSpecFromHfJson(std::string_view tokenizer_json, std::string_view config_json,
                                      const std::string& source);
Result<VocabSpec> VocabSpecFromGguf(const gguf::GgufFile& file);

// The tokenizer of an already-parsed GGUF file (the engine's checkpoint), so the file's metadata
// is not read twice.
Result<std::shared_ptr<const Tokenizer>> TokenizerFromGguf(const gguf::GgufFile& file);

}  // namespace gemma_local::text

namespace gemma_local {
// What the public Tokenizer holds.
struct Tokenizer::Impl {
  std::shared_ptr<const text::TokenizerModel> model;
};
}  // namespace gemma_local

namespace gemma_local::text {

// Streaming UTF-8 helper shared by the decoders: how many trailing bytes of `bytes` form an
// incomplete-but-still-valid UTF-8 prefix (0..3).
size_t IncompleteUtf8Tail(std::string_view bytes);
// Appends `bytes` to `out`, replacing each byte that does not start a complete valid character
// with U+FFFD.
void AppendUtf8Sanitized(std::string_view bytes, std::string& out);

}  // namespace gemma_local::text
