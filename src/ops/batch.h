// One forward-pass batch: tokens from one or more sequences, each at its position, with a flag
// saying which ones need logits. Prompt chunks and decode steps of many sequences all go through
// the same Model::Forward call. Lives below the model layer: the runtime builds batches, the model
// and the backend ops consume them.
#pragma once

#include <cstdint>
#include <vector>

namespace gemma_local {

struct BatchEntry {
  int32_t seq = 0;         // sequence id (KV cache slot)
  int64_t pos = 0;         // absolute position in that sequence (RoPE and masks use it)
  int32_t token = 0;
  bool want_logits = false;
};

// Contract for Forward: within one sequence, entries appear in strictly increasing position
// order and continue that sequence's cache (the first new position equals the number of
// positions already cached for it).
using Batch = std::vector<BatchEntry>;

}  // namespace gemma_local
