// A loaded model: weights bound to one family's forward pass. The registry (model_registry.cc)
// picks the family from the checkpoint; adding a family is one file and one registry line.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gemma_local/status.h"
#include "model/checkpoint.h"
#include "ops/ops.h"
#include "runtime/batch.h"
#include "runtime/kv_cache.h"

namespace gemma_local {

class Model {
 public:
  virtual ~Model() = default;
  virtual const HParams& hparams() const = 0;
  // Runs `batch` through the decoder, appending its K/V to `cache`. `logits` receives one row of
  // hparams().vocab_size floats per entry with want_logits, in batch order. Errors (bad token id,
  // position discontinuity, cache full) leave the cache holding only whole earlier calls' data
  // for the sequences whose validation failed before any write.
  virtual Status Forward(const Batch& batch, KvCache& cache, std::vector<float>* logits) const = 0;
};

// Binds `checkpoint` (kept alive by the model) to its family's implementation, computing with
// `ctx` (its thread pool must outlive the model). Errors name the tensor whose dtype cannot be
// computed yet.
Result<std::unique_ptr<Model>> LoadModel(std::shared_ptr<const Checkpoint> checkpoint, const ops::Context& ctx);

}  // namespace gemma_local
