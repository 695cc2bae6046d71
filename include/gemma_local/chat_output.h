// Gemma 4 reply parsing: splits decoded model output into the answer (content), the thinking
// (reasoning) and tool calls, whole or while it streams.
//
// The format (official Gemma 4 chat template; ../shared/spec/gemma-architectures.md §5.2):
//   <|channel>thought\n ... <channel|>       thinking; the label and the whitespace after it are
//                                            not part of the reasoning
//   <|tool_call>call:NAME{key:value,...}<tool_call|>
//                                            a tool call; keys are bare (or <|"|>-quoted),
//                                            strings are <|"|>text<|"|>, values nest as {...} and
//                                            [...], numbers are JSON numbers, true/false/null
//                                            (None is read as null: the template prints a Python
//                                            None that way)
//   <turn|>, <eos>, <|tool_response>        stop markers: the reply ends at the first one; the
//                                            marker and anything after it are dropped
// Everything else is content. A stray <channel|> outside a channel is dropped (the model is known
// to emit a lone one after its answer). The text must be decoded with these markers kept (they
// are special tokens in some vocabularies; see IsGemma4OutputMarker).
//
// Never fails: malformed or incomplete output (a tool call that does not parse or never closes,
// a thinking channel that never closes) comes back with `malformed` set and a reason. A bad tool
// call's raw text, markers included, becomes content; the text of an unclosed thinking channel
// stays reasoning (it has already been streamed as such). A prefix of a marker at the very end
// ("...<|chan") is plain text: markers are single tokens, so a partial one is ordinary text.
//
// Streaming: Gemma4OutputParser::Feed takes text deltas in any split; it emits content and
// reasoning as soon as they cannot be the start of a marker, and each tool call when it closes.
// The concatenated events of any split equal ParseGemma4Output of the whole text.
//
// Thread-safety: the functions are pure; a parser object holds per-stream state.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace gemma_local {

// One tool call, OpenAI Chat Completions style.
struct ToolCall {
  std::string id;         // "call_<n>", n = the call's index in this reply (unique per reply)
  std::string name;       // function name
  std::string arguments;  // a JSON object, compact (nlohmann dump order = order in the reply)

  // {"id", "type": "function", "function": {"name", "arguments"}}.
  nlohmann::ordered_json ToJson() const;
  bool operator==(const ToolCall&) const = default;
};

struct ParsedReply {
  std::string content;    // the answer text
  std::string reasoning;  // the thinking text ("" when the reply has none)
  std::vector<ToolCall> tool_calls;
  std::string stop_marker;  // the stop marker that ended the text, or ""
  bool malformed = false;
  std::string malformed_reason;  // "; "-joined reasons when malformed

  // {"content", "reasoning" (null when empty), "tool_calls": [...], and "malformed"/
  // "malformed_reason" only when malformed}. Invalid UTF-8 is replaced by U+FFFD.
  nlohmann::ordered_json ToJson() const;
  bool operator==(const ParsedReply&) const = default;
};

// One streamed piece. Consecutive pieces of the same kind may be merged by the caller.
struct ReplyEvent {
  enum class Kind { kContent, kReasoning, kToolCall };
  Kind kind = Kind::kContent;
  std::string text;    // kContent / kReasoning
  ToolCall tool_call;  // kToolCall
};

// Parses a whole reply.
ParsedReply ParseGemma4Output(std::string_view text);

// True for the marker strings the parser needs to see in decoded text (<|channel>, <channel|>,
// <|tool_call>, <tool_call|>, <|"|>) and the stop markers (<turn|>, <eos>, <|tool_response>).
// A decoder that skips special tokens should keep these.
bool IsGemma4OutputMarker(std::string_view piece);

class Gemma4OutputParser {
 public:
  // Consumes the next decoded text and returns what it settled, in reply order. Text that may
  // still be the start of a marker is held back until later input decides. After a stop marker
  // further input is ignored.
  std::vector<ReplyEvent> Feed(std::string_view text);
  // Ends the reply: held-back text is released and anything unfinished is reported (malformed).
  // Further Feed/Finish calls return nothing.
  std::vector<ReplyEvent> Finish();
  // Everything settled so far (after Finish: the whole reply, equal to ParseGemma4Output).
  const ParsedReply& reply() const { return reply_; }

 private:
  enum class State { kContent, kChannelLabel, kReasoningLead, kReasoning, kToolCall, kDone };
  // Consumes as much of pending_ as can be decided; with `final`, all of it.
  void Process(bool final, std::vector<ReplyEvent>& out);
  bool StepContent(bool final, std::vector<ReplyEvent>& out);
  bool StepChannelLabel(bool final, std::vector<ReplyEvent>& out);
  bool StepReasoningLead(bool final);
  bool StepReasoning(bool final, std::vector<ReplyEvent>& out);
  bool StepToolCall(bool final, std::vector<ReplyEvent>& out);
  void Emit(ReplyEvent::Kind kind, std::string_view text, std::vector<ReplyEvent>& out);
  void CloseToolCall(std::vector<ReplyEvent>& out);
  void AbandonToolCall(const std::string& reason, std::vector<ReplyEvent>& out);
  void MarkMalformed(const std::string& reason);

  State state_ = State::kContent;
  std::string pending_;    // input not yet consumed
  std::string tool_body_;  // text after <|tool_call>, scanned up to tool_scan_
  size_t tool_scan_ = 0;
  bool tool_in_string_ = false;
  bool finished_ = false;
  ParsedReply reply_;
};

}  // namespace gemma_local
