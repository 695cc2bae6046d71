// Gemma 3 text decoder (spec §2.2): embedding * sqrt(H), per layer sandwich-normed GQA attention
// with QK-norm, NEOX RoPE (local base on sliding layers, scaled global base on full layers), a
// GeGLU (tanh) MLP, final norm and the tied LM head. Also serves checkpoints of other families
// whose layers have the same shape (none yet).
#pragma once

#include <memory>

#include "model/model.h"

namespace gemma_local {

Result<std::unique_ptr<Model>> LoadGemma3(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend);

}  // namespace gemma_local
