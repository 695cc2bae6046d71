// Gemma 4 text decoder (spec §2.3): per-layer embeddings (E2B/E4B), KV sharing, per-layer-type
// head dims and KV heads, proportional partial RoPE on full layers, weighted Q/K norms and a
// scale-free V norm, K=V full layers (31B, 26B-A4B), attention scale 1, dense or MoE (26B-A4B)
// feed-forward, the per-layer residual scale, and final logit soft-capping.
#pragma once

#include <memory>

#include "model/model.h"

namespace gemma_local {

Result<std::unique_ptr<Model>> LoadGemma4(std::shared_ptr<const Checkpoint> checkpoint, const ops::Backend& backend);

}  // namespace gemma_local
