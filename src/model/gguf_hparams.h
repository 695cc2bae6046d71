// GGUF metadata <-> HParams, with the key names and conventions of llama.cpp's converter and
// loader (spec §3.3, §3.4), so GGUF files from llama.cpp's tools and ours read the same.
#pragma once

#include "formats/gguf.h"
#include "model/hparams.h"

namespace gemma_local {

// Reads `{arch}.*` keys (general.architecture must be gemma3 or gemma4). Gemma 3's attention
// scale follows llama.cpp (1/sqrt(hidden/heads) for the 62-layer 27B, else 1/sqrt(head_dim))
// unless the file carries `{arch}.attention.scale`. Gemma 4's partial rotary factor is read from
// the `rope_freqs.weight` tensor (ones mark rotated pairs) and K=V layers from absent attn_v.
Result<HParams> HParamsFromGguf(const gguf::GgufFile& file);

// Writes general.architecture and the `{arch}.*` hyper-parameter keys (not the tokenizer), and
// for Gemma 4 with partial RoPE the generated `rope_freqs.weight` tensor, as llama.cpp's
// converter does. `attention.scale` is written only when llama.cpp's rule would differ.
Status WriteGgufHParams(const HParams& hp, gguf::GgufWriter& writer);

// llama.cpp's Gemma 3 attention-scale rule for GGUF files without an explicit scale.
double LlamaCppGemma3AttentionScale(const HParams& hp);

}  // namespace gemma_local
