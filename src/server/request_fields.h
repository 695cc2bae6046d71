// Reading OpenAI request fields with the checks OpenAI makes: each bad field is a 400 naming it.
// Numbers are range-checked before conversion (a huge float cast to an integer is undefined).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "server/api_error.h"

namespace gemma_local::server {

// Optional number field in [lo, hi]: false with `error` when present (not null) but not a
// number in range; `out` unchanged when absent.
bool ReadFloat(const nlohmann::ordered_json& body, const char* field, double lo, double hi, float* out,
               ApiError* error);
bool ReadInt(const nlohmann::ordered_json& body, const char* field, int64_t lo, int64_t hi, int64_t* out,
             ApiError* error);
bool ReadBool(const nlohmann::ordered_json& body, const char* field, bool* out, ApiError* error);

// The fields chat and text completions share: sampling, seed, stop, n, max_tokens (or
// max_completion_tokens), stream and stream_options, and llama-server's and vLLM's ignore_eos
// (generate max_tokens whatever the model's stop tokens say; for benchmarks). `max_tokens` stays -1 when not given.
struct CommonFields {
  Request request;  // sampling and stop filled; input left empty
  int64_t max_tokens = -1;
  int n = 1;
  bool stream = false;
  bool include_usage = false;
};
bool ReadCommonFields(const nlohmann::ordered_json& body, int max_n, CommonFields* out, ApiError* error);

// Settles max_tokens against the context: an explicit one must fit (else 400
// context_length_exceeded saying by how much); without one, the rest of the context.
// `prompt_field` names the prompt in the error ("messages" or "prompt").
bool FitContext(int64_t prompt_tokens, int64_t context_limit, int64_t max_tokens,
                int64_t* settled, ApiError* error, const char* prompt_field = "messages");

}  // namespace gemma_local::server
