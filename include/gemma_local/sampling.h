// Sampling parameters with Hugging Face transformers semantics, applied in its order:
// repetition penalty (over prompt + generated tokens), presence/frequency penalties (OpenAI
// style, over generated tokens), temperature, top-k, top-p, min-p, then a draw from the
// remaining distribution with a seeded generator. temperature == 0 means greedy (argmax, ties to
// the lower id), which is bit-reproducible.
#pragma once

#include <cstdint>
#include <string>

#include "gemma_local/status.h"

namespace gemma_local {

struct SamplingParams {
  float temperature = 0.0f;       // 0 = greedy
  int32_t top_k = 0;              // 0 = off
  float top_p = 1.0f;             // 1 = off
  float min_p = 0.0f;             // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; >1 discourages repeats (HF: divide positive logits)
  float presence_penalty = 0.0f;  // subtracted once from every generated token's logit
  float frequency_penalty = 0.0f; // subtracted per occurrence in the generated tokens
  uint64_t seed = 0;

  // An error naming the first out-of-range field.
  Status Validate() const;
};

}  // namespace gemma_local
