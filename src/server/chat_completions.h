// POST /v1/chat/completions, non-streaming so far (issue 14, work in progress): an OpenAI
// request body to an engine Request, and a Completion back to OpenAI's response body.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "gemma_local/status.h"

namespace gemma_local::server {

// An error for the client: HTTP status and OpenAI's error fields.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field ("" = none)
  std::string code;
  nlohmann::json Body() const;
};

// How the reply is sent.
struct ChatDelivery {
  bool stream = false;         // server-sent events of chat.completion.chunk objects
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
};

// The engine request for `body`, or the error naming the first bad field. Unknown fields are
// ignored, as OpenAI does.
Result<Request> ParseChatRequest(const nlohmann::json& body, ChatDelivery* delivery,
                                 ApiError* error);

// The chat.completion.chunk objects for one engine event (none when it carries no text and is
// not final); `first` adds the assistant role to the first chunk and is cleared.
std::vector<nlohmann::json> ChatChunks(const Event& e, const std::string& id,
                                       const std::string& model, int64_t created,
                                       bool include_usage, bool* first, int* tool_index);

// OpenAI's chat.completion object for `c`.
nlohmann::json ChatCompletionBody(const Completion& c, const std::string& id,
                                  const std::string& model, int64_t created);

// The HTTP status and error type an engine Status maps to.
ApiError FromStatus(const Status& status);

}  // namespace gemma_local::server
