// POST /v1/chat/completions: an OpenAI request body to an engine Request, and engine events and
// completions back to OpenAI's chat.completion and chat.completion.chunk objects.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "server/api_error.h"
#include "server/request_fields.h"

namespace gemma_local::server {

struct ChatRequest {
  CommonFields common;  // common.request.input is the chat
  bool logprobs = false;
  int top_logprobs = 0;
};

// The request, or false with `error` naming the first bad field. Unknown fields are ignored, as
// OpenAI does; known ones this server cannot honour (a forced tool_choice, logit_bias) are 400
// "unsupported" rather than silently dropped. response_format json_object / json_schema become a
// Request::constraint.
bool ParseChatRequest(const nlohmann::ordered_json& body, int max_messages, int max_n, ChatRequest* out,
                      ApiError* error);

// What every object of one response repeats.
struct ResponseHeader {
  std::string id;
  std::string model;
  int64_t created = 0;
};

// A streamed choice's state between events.
struct ChatChoiceStream {
  bool first = true;  // the first chunk carries the assistant role
  int tool_index = 0;
};

// The chunks for one engine event of choice `index` (none when it settles no text and is not
// final; the final one carries finish_reason).
std::vector<nlohmann::json> ChatChunks(const Event& e, int index, const ResponseHeader& h,
                                       ChatChoiceStream* state, const Tokenizer* tokenizer,
                                       bool logprobs);

// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
nlohmann::json UsageChunk(const ResponseHeader& h, const std::string& object,
                          const Usage& usage);
nlohmann::json UsageJson(const Usage& usage);

// The chat.completion object for choices `c` (index = position).
nlohmann::json ChatCompletionBody(const std::vector<Completion>& c, const ResponseHeader& h,
                                  const Tokenizer* tokenizer, bool logprobs);

// Usage of n choices of one prompt: the prompt once, completions summed.
Usage SumUsage(const std::vector<Usage>& usages);

}  // namespace gemma_local::server
