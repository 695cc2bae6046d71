#include "runtime/reply_assembler.h"

#include <algorithm>

namespace gemma_local {

ReplyAssembler::ReplyAssembler(std::shared_ptr<const Tokenizer> tokenizer, std::vector<int32_t> stop_tokens,
                               std::vector<std::string> stop_strings, bool parse_gemma4)
    : tokenizer_(std::move(tokenizer)), stop_tokens_(std::move(stop_tokens)), stop_strings_(std::move(stop_strings)) {
  if (tokenizer_) decoder_.emplace(tokenizer_, DecodeOptions{/*skip_special=*/!parse_gemma4});
  if (parse_gemma4) parser_.emplace();
  for (const std::string& s : stop_strings_) longest_stop_ = std::max(longest_stop_, s.size());
}

bool ReplyAssembler::Push(int32_t id, std::vector<ReplyEvent>* out) {
  if (!decoder_ || stopped_ || finished_) return false;
  if (std::find(stop_tokens_.begin(), stop_tokens_.end(), id) != stop_tokens_.end()) return false;
  if (parser_ && tokenizer_->IsSpecial(id)) {
    // Special tokens are skipped except the markers the Gemma 4 parser reads.
    Result<std::string> marker = tokenizer_->IdToPiece(id);
    if (!marker.ok() || !IsGemma4OutputMarker(*marker)) return false;
  }
  Result<std::string> piece = decoder_->Push(id);
  if (!piece.ok() || piece->empty()) return false;
  const size_t before = text_.size();
  text_ += *piece;
  // A stop string that completes now ends inside the new piece.
  if (CutAtStopString(before >= longest_stop_ ? before - longest_stop_ + 1 : 0)) {
    Release(text_.size(), out);
    if (parser_) {
      std::vector<ReplyEvent> rest = parser_->Finish();
      out->insert(out->end(), rest.begin(), rest.end());
    }
    finished_ = true;
    return true;
  }
  Release(SafeEnd(), out);
  return false;
}

void ReplyAssembler::Finish(std::vector<ReplyEvent>* out) {
  if (finished_) return;
  finished_ = true;
  if (decoder_ && !stopped_) {
    const size_t before = text_.size();
    text_ += decoder_->Finish();
    CutAtStopString(before >= longest_stop_ ? before - longest_stop_ + 1 : 0);
  }
  Release(text_.size(), out);
  if (parser_) {
    std::vector<ReplyEvent> rest = parser_->Finish();
    out->insert(out->end(), rest.begin(), rest.end());
  }
}

bool ReplyAssembler::CutAtStopString(size_t from) {
  // The earliest occurrence of any stop string (list order only breaks ties).
  size_t cut = std::string::npos;
  for (const std::string& stop : stop_strings_) {
    if (!stop.empty()) cut = std::min(cut, text_.find(stop, from));
  }
  if (cut == std::string::npos) return false;
  text_.resize(cut);
  stopped_ = true;
  return true;
}

size_t ReplyAssembler::SafeEnd() const {
  // The longest tail of text_ that is a proper prefix of a stop string may still complete one.
  size_t hold = 0;
  for (const std::string& stop : stop_strings_) {
    for (size_t n = std::min(stop.size() - (stop.empty() ? 0 : 1), text_.size()); n > hold; --n) {
      if (text_.compare(text_.size() - n, n, stop, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  size_t end = text_.size() - hold;
  // Never split a UTF-8 character (a stop string that is not valid UTF-8 could ask for that).
  while (end > released_ && end < text_.size() && (static_cast<unsigned char>(text_[end]) & 0xC0) == 0x80) --end;
  return std::max(released_, end);
}

void ReplyAssembler::Release(size_t end, std::vector<ReplyEvent>* out) {
  if (end <= released_) return;
  const std::string_view piece(text_.data() + released_, end - released_);
  released_ = end;
  if (parser_) {
    std::vector<ReplyEvent> events = parser_->Feed(piece);
    out->insert(out->end(), events.begin(), events.end());
    return;
  }
  if (!out->empty() && out->back().kind == ReplyEvent::Kind::kContent) {
    out->back().text += piece;
  } else {
    ReplyEvent e;
    e.kind = ReplyEvent::Kind::kContent;
    e.text = std::string(piece);
    out->push_back(std::move(e));
  }
}

}  // namespace gemma_local
