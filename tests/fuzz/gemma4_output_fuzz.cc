// libFuzzer target: any bytes as a Gemma 4 reply must parse without crash, hang or leak, and
// the streaming parser fed the same bytes in two pieces (split where the first input byte says)
// must settle exactly the whole-text result. The first byte picks the split; the rest is the
// reply.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gemma_local/chat_output.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const gemma_local::ParsedReply whole = gemma_local::ParseGemma4Output(text);
  (void)whole.ToJson().dump();  // must not throw, whatever the bytes

  const size_t split = text.empty() ? 0 : data[0] % (text.size() + 1);
  gemma_local::Gemma4OutputParser parser;
  gemma_local::ParsedReply streamed;
  auto take = [&](const std::vector<gemma_local::ReplyEvent>& events) {
    for (const auto& e : events) {
      if (e.kind == gemma_local::ReplyEvent::Kind::kContent) streamed.content += e.text;
      if (e.kind == gemma_local::ReplyEvent::Kind::kReasoning) streamed.reasoning += e.text;
      if (e.kind == gemma_local::ReplyEvent::Kind::kToolCall)
        streamed.tool_calls.push_back(e.tool_call);
    }
  };
  take(parser.Feed(text.substr(0, split)));
  take(parser.Feed(text.substr(split)));
  take(parser.Finish());
  streamed.stop_marker = parser.reply().stop_marker;
  streamed.malformed = parser.reply().malformed;
  streamed.malformed_reason = parser.reply().malformed_reason;
  if (!(streamed == whole) || !(parser.reply() == whole)) std::abort();
  return 0;
}
