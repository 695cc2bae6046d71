// A loaded model: weights bound to one family's forward pass. The registry (model_registry.cc)
// picks the family from the checkpoint; adding a family is one file and one registry line.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gemma_local/status.h"
#include "model/checkpoint.h"
#include "ops/backend.h"
#include "ops/batch.h"
#include "ops/kv_view.h"

namespace gemma_local {

class Model {
 public:
  virtual ~Model() = default;
  virtual const HParams& hparams() const = 0;
  // Runs `batch` through the decoder on `ctx`, writing its K/V into the rows the caller reserved
  // in `kv` (ops/kv_view.h) and reading earlier positions from it. `logits` receives one row of
  // hparams().vocab_size floats per entry with want_logits, in batch order, from one LM head
  // product. Every check (token ids, position continuity, reserved rows) runs before anything is
  // computed or written, and nothing after it can fail, so an error leaves `kv` untouched.
  // Const and stateless between calls: any number of threads may run forward passes on one model
  // with their own contexts and caches.
  virtual Status Forward(const Batch& batch, const KvView& kv, const ops::ForwardContext& ctx,
                         std::vector<float>* logits) const = 0;
};

// Binds `checkpoint` (kept alive by the model) to its family's implementation, with weights
// prepared for `backend` (its layouts; the model then runs on backends of that kind). Errors name
// the tensor whose dtype cannot be computed yet.
Result<std::unique_ptr<Model>> LoadModel(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend);

}  // namespace gemma_local
