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
// ids (several prompts per request are refused: send one request each). With echo and logprobs
// the prompt is also scored (Engine::Score) for its own log-probabilities.
bool ParseCompletionRequest(const nlohmann::ordered_json& body, int max_n, CompletionRequest* out,
                            ApiError* error);

// The echoed prompt of a choice: its text and, when logprobs are asked for, the prompt tokens'
// legacy logprobs object (PromptLogprobs).
struct Echo {
  std::string text;
  nlohmann::json logprobs;  // null, or {tokens, token_logprobs, top_logprobs, text_offset}
};

// The legacy logprobs of a prompt scored by Engine::Score: null for its first token (nothing
// predicts it, as OpenAI sends), then each token's log-probability given the ones before it,
// with the `top` most likely alternatives.
nlohmann::json PromptLogprobs(const ScoreResult& scored, const Tokenizer* tokenizer, int top);

// A streamed choice's state.
struct CompletionChoiceStream {
  int64_t offset = 0;  // bytes of text sent so far (logprobs' text_offset)
  bool echoed = false;  // the echo went out (on the choice's first chunk)
};

// text_completion chunks for one engine event of choice `index`.
std::vector<nlohmann::json> CompletionChunks(const Event& e, int index, const ResponseHeader& h,
                                             CompletionChoiceStream* state,
                                             const Tokenizer* tokenizer, int logprobs,
                                             const Echo& echo);

nlohmann::json CompletionBody(const std::vector<Completion>& c, const ResponseHeader& h,
                              const Tokenizer* tokenizer, int logprobs, const Echo& echo);

// {"content", "add_special" (default false), "parse_special" (default true), "with_pieces"}
// -> {"tokens": [id, ...]} or, with pieces, [{"id", "piece"}, ...].
bool Tokenize(const nlohmann::ordered_json& body, const Tokenizer& tokenizer, nlohmann::json* out,
              ApiError* error);
// {"tokens": [id, ...]} -> {"content": text}.
bool Detokenize(const nlohmann::ordered_json& body, const Tokenizer& tokenizer, nlohmann::json* out,
                ApiError* error);

}  // namespace gemma_local::server
