// Gemma 4 reply parsing (include/gemma_local/chat_output.h): a small state machine over decoded
// text. Every decision depends only on the text seen so far and on whether more may come, so the
// result does not depend on how the text was split into deltas; ParseGemma4Output is one Feed
// plus Finish.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "core/utf8.h"
#include "gemma_local/chat_output.h"

namespace gemma_local {
namespace {

constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kToolOpen = "<|tool_call>";
constexpr std::string_view kToolClose = "<tool_call|>";
constexpr std::string_view kQuote = "<|\"|>";
constexpr std::string_view kThoughtLabel = "thought";
constexpr std::string_view kStopMarkers[] = {"<turn|>", "<eos>", "<|tool_response>"};
constexpr std::string_view kCallPrefix = "call:";
// Nesting limit for tool-call arguments (the parser recurses once per level).
constexpr int kMaxArgDepth = 64;

enum class Match { kNo, kPartial, kFull };

// Whether `text[pos..]` starts with `marker` (kFull), or is a proper prefix of it (kPartial: more
// input could complete it).
Match MatchAt(std::string_view text, size_t pos, std::string_view marker) {
  const std::string_view rest = text.substr(pos);
  if (rest.size() >= marker.size()) {
    return rest.substr(0, marker.size()) == marker ? Match::kFull : Match::kNo;
  }
  return marker.substr(0, rest.size()) == rest ? Match::kPartial : Match::kNo;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Strings as JSON values: invalid UTF-8 becomes U+FFFD so that dump() cannot throw.
std::string Utf8OrReplaced(const std::string& s) {
  if (IsValidUtf8(s)) return s;
  const std::string dumped =
      nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // dump() wrote a valid JSON string, so this parses; checked all the same (no throwing parse).
  const nlohmann::json back = nlohmann::json::parse(dumped, nullptr, /*allow_exceptions=*/false);
  return back.is_string() ? back.get_ref<const std::string&>() : std::string();
}

// Reads the argument syntax of a Gemma 4 tool call into JSON. Errors are values (an offset and
// a reason); nesting is bounded by kMaxArgDepth.
class ArgReader {
 public:
  explicit ArgReader(std::string_view text) : s_(text) {}

  std::optional<nlohmann::ordered_json> ReadValue(int depth) {
    if (depth > kMaxArgDepth) return Fail("arguments nested deeper than 64 levels");
    SkipSpace();
    if (pos_ >= s_.size()) return Fail("value expected");
    if (MatchAt(s_, pos_, kQuote) == Match::kFull) {
      std::optional<std::string> str = ReadString();
      if (!str) return std::nullopt;
      return nlohmann::ordered_json(std::move(*str));
    }
    const char c = s_[pos_];
    if (c == '{') return ReadObject(depth);
    if (c == '[') return ReadArray(depth);
    if (Consume("true")) return nlohmann::ordered_json(true);
    if (Consume("false")) return nlohmann::ordered_json(false);
    // The template prints a Python None as "None"; both spellings mean null.
    if (Consume("null") || Consume("None")) return nlohmann::ordered_json(nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber();
    if (c == '}' || c == ']' || c == ',') return Fail("value expected");
    return Fail("unexpected character");
  }

  void SkipSpace() {
    while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
  }
  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

 private:
  std::nullopt_t Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }

  bool Consume(std::string_view word) {
    if (MatchAt(s_, pos_, word) != Match::kFull) return false;
    pos_ += word.size();
    return true;
  }

  // <|"|>text<|"|>; the text is taken verbatim (no escapes exist in this syntax).
  std::optional<std::string> ReadString() {
    const size_t start = pos_ + kQuote.size();
    const size_t end = s_.find(kQuote, start);
    if (end == std::string_view::npos) return Fail("unterminated <|\"|> string");
    pos_ = end + kQuote.size();
    return std::string(s_.substr(start, end - start));
  }

  std::optional<nlohmann::ordered_json> ReadNumber() {
    const size_t start = pos_;
    while (pos_ < s_.size() &&
           std::string_view("+-0123456789.eE").find(s_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
    const std::string_view token = s_.substr(start, pos_ - start);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(token, nullptr, false);
    if (j.is_discarded() || !j.is_number()) {
      pos_ = start;
      return Fail("invalid number");
    }
    return j;
  }

  // A bare key runs up to ':' and may not contain structure characters; a key may also be a
  // <|"|> string (the template quotes nested keys that way in tool declarations).
  std::optional<std::string> ReadKey() {
    SkipSpace();
    if (MatchAt(s_, pos_, kQuote) == Match::kFull) return ReadString();
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ':') {
      if (std::string_view("{}[],").find(s_[pos_]) != std::string_view::npos ||
          MatchAt(s_, pos_, kQuote) == Match::kFull) {
        return Fail("invalid key");
      }
      ++pos_;
    }
    std::string_view key = s_.substr(start, pos_ - start);
    while (!key.empty() && IsSpace(key.back())) key.remove_suffix(1);
    if (key.empty()) return Fail("empty key");
    return std::string(key);
  }

  std::optional<nlohmann::ordered_json> ReadObject(int depth) {
    ++pos_;  // '{'
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    for (;;) {
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      std::optional<std::string> key = ReadKey();
      if (!key) return std::nullopt;
      SkipSpace();
      if (!Consume(":")) return Fail("':' expected");
      std::optional<nlohmann::ordered_json> value = ReadValue(depth + 1);
      if (!value) return std::nullopt;
      obj[*key] = std::move(*value);  // a repeated key keeps the last value
      SkipSpace();
      if (Consume(",")) continue;  // a trailing comma before '}' is tolerated
      if (pos_ < s_.size() && s_[pos_] == '}') continue;
      return Fail("',' or '}' expected");
    }
  }

  std::optional<nlohmann::ordered_json> ReadArray(int depth) {
    ++pos_;  // '['
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (;;) {
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      std::optional<nlohmann::ordered_json> value = ReadValue(depth + 1);
      if (!value) return std::nullopt;
      arr.push_back(std::move(*value));
      SkipSpace();
      if (Consume(",")) continue;
      if (pos_ < s_.size() && s_[pos_] == ']') continue;
      return Fail("',' or ']' expected");
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

bool ValidToolName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || std::string_view("<>{}[]:,\"").find(c) != std::string_view::npos)
      return false;
  }
  return true;
}

// The body between <|tool_call> and <tool_call|>: "call:NAME{args}" (whitespace around allowed).
// Returns the name and the arguments as compact JSON, or a reason.
bool ParseToolCallBody(std::string_view body, std::string& name, std::string& arguments,
                       std::string& reason) {
  size_t pos = 0;
  while (pos < body.size() && IsSpace(body[pos])) ++pos;
  if (MatchAt(body, pos, kCallPrefix) != Match::kFull) {
    reason = "tool call does not start with \"call:\"";
    return false;
  }
  pos += kCallPrefix.size();
  const size_t brace = body.find('{', pos);
  if (brace == std::string_view::npos) {
    reason = "tool call has no '{' after its name";
    return false;
  }
  const std::string_view raw_name = body.substr(pos, brace - pos);
  if (!ValidToolName(raw_name)) {
    reason = "tool call has an invalid function name";
    return false;
  }
  ArgReader reader(body.substr(brace));
  std::optional<nlohmann::ordered_json> args = reader.ReadValue(0);
  if (!args) {
    reason = "tool call arguments: " + reader.error();
    return false;
  }
  reader.SkipSpace();
  if (brace + reader.pos() != body.size()) {
    reason = "tool call has text after its arguments";
    return false;
  }
  name = std::string(raw_name);
  arguments = args->dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return true;
}

}  // namespace

nlohmann::ordered_json ToolCall::ToJson() const {
  return {{"id", Utf8OrReplaced(id)},
          {"type", "function"},
          {"function", {{"name", Utf8OrReplaced(name)}, {"arguments", Utf8OrReplaced(arguments)}}}};
}

nlohmann::ordered_json ParsedReply::ToJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["content"] = Utf8OrReplaced(content);
  j["reasoning"] = reasoning.empty() ? nlohmann::ordered_json(nullptr)
                                     : nlohmann::ordered_json(Utf8OrReplaced(reasoning));
  j["tool_calls"] = nlohmann::ordered_json::array();
  for (const ToolCall& call : tool_calls) j["tool_calls"].push_back(call.ToJson());
  if (malformed) {
    j["malformed"] = true;
    j["malformed_reason"] = Utf8OrReplaced(malformed_reason);
  }
  return j;
}

bool IsGemma4OutputMarker(std::string_view piece) {
  for (std::string_view m : {kChannelOpen, kChannelClose, kToolOpen, kToolClose, kQuote}) {
    if (piece == m) return true;
  }
  return std::find(std::begin(kStopMarkers), std::end(kStopMarkers), piece) !=
         std::end(kStopMarkers);
}

ParsedReply ParseGemma4Output(std::string_view text) {
  Gemma4OutputParser parser;
  parser.Feed(text);
  parser.Finish();
  return parser.reply();
}

std::vector<ReplyEvent> Gemma4OutputParser::Feed(std::string_view text) {
  std::vector<ReplyEvent> out;
  if (finished_ || state_ == State::kDone) return out;
  pending_.append(text);
  Process(/*final=*/false, out);
  return out;
}

std::vector<ReplyEvent> Gemma4OutputParser::Finish() {
  std::vector<ReplyEvent> out;
  if (finished_) return out;
  finished_ = true;
  Process(/*final=*/true, out);
  switch (state_) {
    case State::kChannelLabel:
    case State::kReasoningLead:
    case State::kReasoning:
      MarkMalformed("thinking channel not closed (no <channel|>)");
      break;
    case State::kToolCall:
      AbandonToolCall("tool call not closed (no <tool_call|>)", out);
      break;
    case State::kContent:
    case State::kDone:
      break;
  }
  state_ = State::kDone;
  pending_.clear();
  return out;
}

void Gemma4OutputParser::Process(bool final, std::vector<ReplyEvent>& out) {
  for (;;) {
    bool progressed = false;
    switch (state_) {
      case State::kContent:
        progressed = StepContent(final, out);
        break;
      case State::kChannelLabel:
        progressed = StepChannelLabel(final, out);
        break;
      case State::kReasoningLead:
        progressed = StepReasoningLead(final);
        break;
      case State::kReasoning:
        progressed = StepReasoning(final, out);
        break;
      case State::kToolCall:
        progressed = StepToolCall(final, out);
        break;
      case State::kDone:
        pending_.clear();
        break;
    }
    if (!progressed) return;
  }
}

void Gemma4OutputParser::Emit(ReplyEvent::Kind kind, std::string_view text,
                              std::vector<ReplyEvent>& out) {
  if (text.empty()) return;
  (kind == ReplyEvent::Kind::kReasoning ? reply_.reasoning : reply_.content).append(text);
  if (!out.empty() && out.back().kind == kind) {
    out.back().text.append(text);
    return;
  }
  ReplyEvent e;
  e.kind = kind;
  e.text = std::string(text);
  out.push_back(std::move(e));
}

void Gemma4OutputParser::MarkMalformed(const std::string& reason) {
  if (reply_.malformed) reply_.malformed_reason += "; ";
  reply_.malformed = true;
  reply_.malformed_reason += reason;
}

bool Gemma4OutputParser::StepContent(bool final, std::vector<ReplyEvent>& out) {
  if (pending_.empty()) return false;
  const size_t lt = pending_.find('<');
  if (lt != 0) {
    const size_t n = lt == std::string::npos ? pending_.size() : lt;
    Emit(ReplyEvent::Kind::kContent, std::string_view(pending_).substr(0, n), out);
    pending_.erase(0, n);
    return true;
  }
  bool partial = false;
  auto take = [&](std::string_view marker) {
    const Match m = MatchAt(pending_, 0, marker);
    partial = partial || m == Match::kPartial;
    if (m != Match::kFull) return false;
    pending_.erase(0, marker.size());
    return true;
  };
  if (take(kChannelOpen)) {
    state_ = State::kChannelLabel;
    return true;
  }
  if (take(kChannelClose)) return true;  // a stray close: dropped
  if (take(kToolOpen)) {
    state_ = State::kToolCall;
    tool_body_.clear();
    tool_scan_ = 0;
    tool_in_string_ = false;
    return true;
  }
  for (std::string_view stop : kStopMarkers) {
    if (take(stop)) {
      reply_.stop_marker = std::string(stop);
      state_ = State::kDone;
      pending_.clear();
      return true;
    }
  }
  if (partial && !final) return false;  // wait: this may still become a marker
  Emit(ReplyEvent::Kind::kContent, "<", out);
  pending_.erase(0, 1);
  return true;
}

bool Gemma4OutputParser::StepChannelLabel(bool final, std::vector<ReplyEvent>& out) {
  const Match m = MatchAt(pending_, 0, kThoughtLabel);
  if (m == Match::kFull) {
    pending_.erase(0, kThoughtLabel.size());
    state_ = State::kReasoningLead;
    return true;
  }
  if (m == Match::kPartial && !final) return false;
  // Another (or a cut-off) label: the channel's whole body is reasoning, label included.
  state_ = State::kReasoning;
  return true;
}

bool Gemma4OutputParser::StepReasoningLead(bool final) {
  if (pending_.empty()) return false;
  if (IsSpace(pending_[0])) {
    const size_t n = std::min(pending_.find_first_not_of(" \t\r\n"), pending_.size());
    pending_.erase(0, n);
    return true;
  }
  state_ = State::kReasoning;
  return true;
}

bool Gemma4OutputParser::StepReasoning(bool final, std::vector<ReplyEvent>& out) {
  if (pending_.empty()) return false;
  const size_t lt = pending_.find('<');
  if (lt != 0) {
    const size_t n = lt == std::string::npos ? pending_.size() : lt;
    Emit(ReplyEvent::Kind::kReasoning, std::string_view(pending_).substr(0, n), out);
    pending_.erase(0, n);
    return true;
  }
  Match m = MatchAt(pending_, 0, kChannelClose);
  if (m == Match::kFull) {
    pending_.erase(0, kChannelClose.size());
    state_ = State::kContent;
    return true;
  }
  bool partial = m == Match::kPartial;
  for (std::string_view stop : kStopMarkers) {
    m = MatchAt(pending_, 0, stop);
    if (m == Match::kFull) {
      MarkMalformed("thinking channel not closed (no <channel|>)");
      reply_.stop_marker = std::string(stop);
      state_ = State::kDone;
      pending_.clear();
      return true;
    }
    partial = partial || m == Match::kPartial;
  }
  if (partial && !final) return false;
  Emit(ReplyEvent::Kind::kReasoning, "<", out);
  pending_.erase(0, 1);
  return true;
}

bool Gemma4OutputParser::StepToolCall(bool final, std::vector<ReplyEvent>& out) {
  tool_body_.append(pending_);
  pending_.clear();
  while (tool_scan_ < tool_body_.size()) {
    const size_t pos = tool_body_.find('<', tool_scan_);
    if (pos == std::string::npos) {
      tool_scan_ = tool_body_.size();
      break;
    }
    tool_scan_ = pos;
    Match m = MatchAt(tool_body_, pos, kQuote);
    if (m == Match::kFull) {
      tool_in_string_ = !tool_in_string_;
      tool_scan_ = pos + kQuote.size();
      continue;
    }
    bool partial = m == Match::kPartial;
    // Inside a <|"|> string every other marker is text.
    if (!tool_in_string_) {
      m = MatchAt(tool_body_, pos, kToolClose);
      if (m == Match::kFull) {
        pending_ = tool_body_.substr(pos + kToolClose.size());
        tool_body_.resize(pos);
        CloseToolCall(out);
        return true;
      }
      partial = partial || m == Match::kPartial;
      for (std::string_view stop : kStopMarkers) {
        m = MatchAt(tool_body_, pos, stop);
        if (m == Match::kFull) {
          tool_body_.resize(pos);
          AbandonToolCall("tool call not closed (no <tool_call|>)", out);
          reply_.stop_marker = std::string(stop);
          state_ = State::kDone;
          return true;
        }
        partial = partial || m == Match::kPartial;
      }
    }
    if (partial && !final) return false;  // rescan from `pos` when more text arrives
    tool_scan_ = pos + 1;
  }
  return false;
}

void Gemma4OutputParser::CloseToolCall(std::vector<ReplyEvent>& out) {
  state_ = State::kContent;
  ToolCall call;
  std::string reason;
  if (!ParseToolCallBody(tool_body_, call.name, call.arguments, reason)) {
    std::string raw = std::string(kToolOpen) + tool_body_ + std::string(kToolClose);
    Emit(ReplyEvent::Kind::kContent, raw, out);
    MarkMalformed(reason);
    tool_body_.clear();
    return;
  }
  tool_body_.clear();
  call.id = "call_" + std::to_string(reply_.tool_calls.size());
  reply_.tool_calls.push_back(call);
  ReplyEvent e;
  e.kind = ReplyEvent::Kind::kToolCall;
  e.tool_call = std::move(call);
  out.push_back(std::move(e));
}

void Gemma4OutputParser::AbandonToolCall(const std::string& reason, std::vector<ReplyEvent>& out) {
  state_ = State::kContent;
  Emit(ReplyEvent::Kind::kContent, std::string(kToolOpen) + tool_body_, out);
  tool_body_.clear();
  MarkMalformed(reason);
}

}  // namespace gemma_local
