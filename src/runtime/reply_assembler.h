// Turns a request's generated ids into the text its stream carries: UTF-8-safe incremental
// detokenization, stop strings (the text is cut before the earliest occurrence of any of them and
// nothing after it is released), and, for Gemma 4 replies, the reasoning / tool-call parser (chat_output.h).
//
// Text is released as soon as it cannot change any more: bytes of an unfinished UTF-8 character,
// a tail that may still grow into a stop string, and a possible marker start are held back. The
// concatenation of everything released equals the whole-text result (the cut text, or
// ParseGemma4Output of it). Without a tokenizer no text is produced (ids only).
//
// One assembler per request; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gemma_local/chat_output.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local {

class ReplyAssembler {
 public:
  // `tokenizer` may be null. `stop_tokens` never become text. With `parse_gemma4` the Gemma 4
  // markers are kept in the decoded text and parsed; other special tokens are skipped either way.
  ReplyAssembler(std::shared_ptr<const Tokenizer> tokenizer, std::vector<int32_t> stop_tokens,
                 std::vector<std::string> stop_strings, bool parse_gemma4);

  // Feeds the next generated id and appends what it settled. Returns true when a stop string
  // completed (the text was cut and everything before the cut released).
  bool Push(int32_t id, std::vector<ReplyEvent>* out);
  // Ends the stream: held-back text is released (after a last stop-string check) and the parser
  // finished. Idempotent.
  void Finish(std::vector<ReplyEvent>* out);

  bool stopped() const { return stopped_; }
  bool parsing() const { return parser_.has_value(); }
  // The parsed reply so far (Gemma 4 parsing only; whole after Finish).
  const ParsedReply* reply() const { return parser_ ? &parser_->reply() : nullptr; }

 private:
  // Cuts text_ at the earliest stop string occurrence at or after `from`.
  bool CutAtStopString(size_t from);
  // Releases text_[released_, end).
  void Release(size_t end, std::vector<ReplyEvent>* out);
  // How much of text_ is safe to release (not a possible stop-string start).
  size_t SafeEnd() const;

  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<TokenStreamDecoder> decoder_;
  std::optional<Gemma4OutputParser> parser_;
  std::vector<int32_t> stop_tokens_;
  std::vector<std::string> stop_strings_;
  size_t longest_stop_ = 0;
  std::string text_;     // decoded text so far (cut at a stop string)
  size_t released_ = 0;  // bytes of text_ handed out
  bool stopped_ = false;
  bool finished_ = false;
};

}  // namespace gemma_local
