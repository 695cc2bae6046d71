// POST /v1/completions (OpenAI's legacy text completions: a raw prompt, no chat template),
// POST /tokenize and POST /detokenize (llama-server's shapes).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "server/api_error.h"
#include "server/chat_completions.h"
#include "server/request_fields.h"

namespace gemma_local::server {

struct CompletionRequest {
  CommonFields common;  // common.request.input: the prompt's text or ids
  bool echo = false;
  int logprobs = -1;  // -1: none; k >= 0: the chosen token's and the k most likely
};

// `prompt` is a string, an array of one string, an array of token ids or an array of one array of
// ids (several prompts per request are refused: send one request each).
bool ParseCompletionRequest(const nlohmann::json& body, int max_n, CompletionRequest* out,
                            ApiError* error);

// A streamed choice's state: characters sent so far (for logprobs' text_offset).
struct CompletionChoiceStream {
  int64_t offset = 0;
};

// text_completion chunks for one engine event of choice `index` (`prefix`: text sent first,
// the echoed prompt, on the choice's first chunk).
std::vector<nlohmann::json> CompletionChunks(const Event& e, int index, const ResponseHeader& h,
                                             CompletionChoiceStream* state,
                                             const Tokenizer* tokenizer, int logprobs,
                                             const std::string& prefix);

nlohmann::json CompletionBody(const std::vector<Completion>& c, const ResponseHeader& h,
                              const Tokenizer* tokenizer, int logprobs, const std::string& echo);

// {"content", "add_special" (default false), "parse_special" (default true), "with_pieces"}
// -> {"tokens": [id, ...]} or, with pieces, [{"id", "piece"}, ...].
bool Tokenize(const nlohmann::json& body, const Tokenizer& tokenizer, nlohmann::json* out,
              ApiError* error);
// {"tokens": [id, ...]} -> {"content": text}.
bool Detokenize(const nlohmann::json& body, const Tokenizer& tokenizer, nlohmann::json* out,
                ApiError* error);

}  // namespace gemma_local::server
