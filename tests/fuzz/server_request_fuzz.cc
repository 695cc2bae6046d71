// libFuzzer target: any bytes as an HTTP request body of the server. Parsing under the limits
// (depth, string length), then reading it as a chat completions and as a text completions request,
// must give a request or an error naming a field; every error must serialize as OpenAI's error
// body. ValidUtf8 must return valid UTF-8 for any bytes. An exception, crash, hang or leak is a bug
// (these run on every request a client sends).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/request_body.h"
#include "server/token_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gemma_local::server;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string valid = ValidUtf8(std::string(text));
  // Valid UTF-8 serializes without the replacement handler.
  (void)nlohmann::json(valid).dump();

  nlohmann::ordered_json body;
  ApiError error;
  if (!ParseBody(text, BodyLimits{16, 4096}, &body, &error)) {
    (void)Dump(error.Body());
    return 0;
  }
  ChatRequest chat;
  if (!ParseChatRequest(body, 64, 8, &chat, &error)) (void)Dump(error.Body());
  CompletionRequest completion;
  if (!ParseCompletionRequest(body, 8, &completion, &error)) (void)Dump(error.Body());
  int64_t settled = 0;
  const int64_t prompt = body.is_object() ? static_cast<int64_t>(body.size()) : 1;
  if (!FitContext(prompt, 8, chat.common.max_tokens, &settled, &error)) (void)Dump(error.Body());
  return 0;
}
