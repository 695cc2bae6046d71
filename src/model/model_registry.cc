#include "model/gemma3.h"
#include "model/gemma4.h"
#include "model/model.h"

namespace gemma_local {

Result<std::unique_ptr<Model>> LoadModel(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend) {
  switch (checkpoint->hparams().family) {
    case ModelFamily::kGemma3:
      return LoadGemma3(std::move(checkpoint), backend);
    case ModelFamily::kGemma4:
      return LoadGemma4(std::move(checkpoint), backend);
  }
  return InternalError("unknown model family");
}

}  // namespace gemma_local
