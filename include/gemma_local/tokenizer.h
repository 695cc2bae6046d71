// Gemma tokenizers (Gemma 3 and Gemma 4): text <-> token ids.
//
// Sources: a Hugging Face tokenizer.json (+ tokenizer_config.json beside it), or the
// tokenizer.ggml.* metadata of a GGUF file ("llama" SentencePiece-style vocabularies with scores,
// as Gemma 3 GGUFs carry, and "gemma4" merges-based BPE). Encoding matches Hugging Face
// tokenizers for tokenizer.json and llama.cpp for GGUF files; see src/text/tokenizer.h for the
// algorithms and tests/conformance for the documented differences.
//
// Thread-safety: a Tokenizer is immutable after Load; share the shared_ptr freely between
// threads. A TokenStreamDecoder holds per-stream state and is not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

struct EncodeOptions {
  // Put the model's BOS token first. nullopt: the model's rule (tokenizer_config add_bos_token,
  // GGUF tokenizer.ggml.add_bos_token; always for Gemma 4 GGUFs). A BOS is never added when the
  // encoded text already starts with one (a rendered chat template that begins with "<bos>").
  std::optional<bool> add_bos;
  // Recognize special-token text ("<start_of_turn>", "<bos>", "<|turn>", ...) as those tokens.
  // On for trusted text (a rendered chat template); OFF for user-supplied content, so a user who
  // types "<end_of_turn>" gets ordinary text pieces and cannot inject a turn marker. Non-special
  // added tokens (newline runs, <unusedN>, Gemma 4's tool markup) are matched either way, as in
  // Hugging Face (split_special_tokens) and llama.cpp (parse_special = false).
  bool parse_special = true;
  // With parse_special: sorted, disjoint [begin, end) byte ranges of the text in which special
  // tokens are NOT recognized (a match overlapping one is not made). For a rendered chat template
  // whose own markers are trusted while the messages' text is not: a user who types
  // "<end_of_turn>" gets ordinary pieces, everything else tokenizes as the whole text would.
  std::vector<std::pair<size_t, size_t>> literal_spans;
};

struct DecodeOptions {
  // Drop special tokens (<bos>, <eos>, <start_of_turn>, ...) from the text.
  bool skip_special = false;
};

class Tokenizer {
 public:
  // `path`: a checkpoint directory (its tokenizer.json and, if present, tokenizer_config.json),
  // a tokenizer.json file (tokenizer_config.json is read from the same directory if present), or
  // a GGUF file (recognized by its magic bytes). Errors name the file and the field.
  static Result<std::shared_ptr<const Tokenizer>> Load(const std::string& path);
  // From in-memory tokenizer.json / tokenizer_config.json text (`config_json` may be empty);
  // `source` names them in errors.
  static Result<std::shared_ptr<const Tokenizer>> FromHfJson(std::string_view tokenizer_json,
                                                             std::string_view config_json,
                                                             const std::string& source);

  // Token ids for `text`. kInvalidArgument if `text` is not valid UTF-8.
  Result<std::vector<int32_t>> Encode(std::string_view text,
                                      const EncodeOptions& options = {}) const;
  // Text for `ids`. Byte pieces (<0xNN>) are fused; a run of them that is not valid UTF-8 becomes
  // one U+FFFD per byte (Hugging Face's ByteFallback decoder). kInvalidArgument for an id outside
  // [0, vocab_size()). decode(encode(x)) == x for every valid UTF-8 x.
  Result<std::string> Decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;  // -1 when the vocabulary has none
  int32_t eos_id() const;
  bool adds_bos() const;  // the model's default for EncodeOptions::add_bos
  // The [begin, end) byte ranges of `text` that Encode with parse_special would read as special
  // tokens ("<start_of_turn>", "<eos>", ...), in order.
  std::vector<std::pair<size_t, size_t>> FindSpecialText(std::string_view text) const;
  // The id of a piece string (as stored: spaces are "▁"), or nullopt.
  std::optional<int32_t> PieceToId(std::string_view piece) const;
  // The stored piece string of `id` ("▁Hello", "<0x0A>", "<start_of_turn>").
  Result<std::string> IdToPiece(int32_t id) const;
  // True for special tokens (HF `special: true`; GGUF CONTROL / UNKNOWN types).
  bool IsSpecial(int32_t id) const;

  // The implementation (opaque here; defined in src/text). Use Load / FromHfJson.
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// Incremental detokenizer for generated tokens: Push returns only complete UTF-8 characters, and
// holds back the bytes of a character split across byte tokens until it completes. For id
// sequences whose byte-piece runs are valid UTF-8, the concatenation of every Push result and
// Finish() equals Tokenizer::Decode of the whole sequence.
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(std::shared_ptr<const Tokenizer> tokenizer,
                              DecodeOptions options = {});
  // The text that `id` completes (possibly empty). kInvalidArgument for an id out of range (the
  // decoder's state is unchanged then).
  Result<std::string> Push(int32_t id);
  // Ends the stream: held-back bytes of an unfinished character come out as U+FFFD each. The
  // decoder is then empty and can be reused.
  std::string Finish();
  // Bytes currently held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  DecodeOptions options_;
  std::string pending_;  // bytes of an unfinished character from byte pieces
};

}  // namespace gemma_local
