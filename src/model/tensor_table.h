// The tensors a Gemma text decoder with given HParams must (or may) have, under canonical names
// with GGUF dimension order. One table serves checkpoint validation and the test-model generator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/hparams.h"

namespace gemma_local {

enum class TensorRole {
  kEmbedding,   // token / per-layer embedding tables
  kMatrix,      // projections (any dtype, quantized included)
  kNorm,        // RMSNorm weights applied to a branch input or a head (Gemma 3: stored w, used 1+w)
  kPostNorm,    // RMSNorm weights on a branch output (post-attention / post-FFN / post-PLE)
  kLayerScalar, // Gemma 4 per-layer residual scale, shape {1}
  kScale,       // other learned 1-D scales (MoE router scale, per-expert scale)
};

struct ExpectedTensor {
  std::string name;          // canonical, e.g. "blk.3.attn_q.weight"
  std::vector<int64_t> ne;   // innermost first
  TensorRole role;
  bool required = true;      // false: may be present (then its shape must match) or absent
};

// Every tensor, in a stable order (model-level first, then per layer).
// Optional entries: `output.weight` (an untied/duplicated LM head), `rope_freqs.weight` (Gemma 4
// proportional RoPE as llama.cpp's converter generates it), unused K/V weights on Gemma 4
// KV-shared layers (some checkpoints carry them), and `layer_output_scale` (HF initialises it to 1
// when absent).
std::vector<ExpectedTensor> ExpectedDecoderTensors(const HParams& hp);

}  // namespace gemma_local
