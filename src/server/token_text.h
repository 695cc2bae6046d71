// A token's text for log-probability entries: OpenAI's `token` (the text) and `bytes` (its exact
// UTF-8 bytes, which may be part of a character: byte-fallback pieces carry one byte each).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local::server {

// The bytes token `id` stands for ("▁" is a space, "<0xNN>" the byte NN); a special token's
// piece text; "" without a tokenizer or for an unknown id.
std::string TokenBytes(const Tokenizer* tokenizer, int32_t id);

// `text` with each byte that is not part of a valid UTF-8 character replaced by U+FFFD (for
// JSON object keys, which must be valid text).
std::string ValidUtf8(const std::string& text);

// Chat Completions' choice.logprobs: {"content": [{token, logprob, bytes, top_logprobs}],
// "refusal": null}.
nlohmann::json ChatLogprobs(const std::vector<TokenLogprob>& logprobs, const Tokenizer* tokenizer);

}  // namespace gemma_local::server
