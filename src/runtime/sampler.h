// Turns a row of logits into the next token under SamplingParams (see gemma_local/sampling.h for
// the order and semantics). One Sampler per sequence: it owns the RNG state, so a sequence's
// draws do not depend on other sequences. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "gemma_local/sampling.h"

namespace gemma_local {

class Sampler {
 public:
  // `params` must have passed Validate().
  explicit Sampler(const SamplingParams& params);

  // `logits` (modified in place) has one entry per vocabulary id. `context` holds the prompt and
  // the tokens generated so far; `n_generated` of them (at its end) are generated ones.
  int32_t Next(std::vector<float>& logits, const std::vector<int32_t>& context, size_t n_generated);

 private:
  double NextUniform();  // [0, 1), xoshiro256** (same stream on every platform)
  SamplingParams params_;
  uint64_t state_[4];
};

}  // namespace gemma_local
