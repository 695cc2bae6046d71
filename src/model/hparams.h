// Hyper-parameters of a Gemma text decoder, in one typed struct filled from either a Hugging Face
// config.json or GGUF metadata. The same model from either source yields the same struct
// (HParams::operator== is what tests compare).
//
// Per-layer geometry is explicit (vectors of length n_layers) so Gemma 4's heterogeneous layers
// (head_dim 256/512, per-layer KV heads, double-wide MLP, KV sharing) need no special cases in
// consumers. Defaults for absent config.json keys equal transformers' Gemma3TextConfig /
// Gemma4TextConfig defaults (see docs and spec §1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

enum class ModelFamily { kGemma3, kGemma4 };
const char* ModelFamilyName(ModelFamily family);  // "gemma3" / "gemma4" (GGUF architecture)

enum class LayerType { kSliding, kFull };

// Real-valued hyper-parameters are float: GGUF stores them as f32, so rounding config.json's
// doubles to float makes both sources compare equal.
struct RopeParams {
  float theta = 10000.0f;
  float linear_factor = 1.0f;            // positions divided by this ("linear" scaling)
  float partial_rotary_factor = 1.0f;    // Gemma 4 "proportional": fraction of dims rotated
  bool operator==(const RopeParams&) const = default;
};

struct HParams {
  ModelFamily family = ModelFamily::kGemma3;
  int64_t n_layers = 0;
  int64_t hidden_size = 0;
  int64_t n_heads = 0;
  int64_t vocab_size = 0;            // embedding rows as stored
  int64_t context_length = 0;        // max_position_embeddings
  int64_t sliding_window = 0;        // W positions including the current one; 0 = none
  float rms_norm_eps = 1e-6f;
  RopeParams rope_full;
  RopeParams rope_sliding;
  // Attention logits are q·k * attention_scale. Gemma 3: query_pre_attn_scalar^-1/2; Gemma 4: 1.
  float attention_scale = 1.0f;
  std::optional<float> final_logit_softcap;
  std::optional<float> attn_logit_softcap;

  // Per layer, length n_layers.
  std::vector<LayerType> layer_types;
  std::vector<int64_t> head_dim;     // 256 for Gemma 3 (128 for 27B); Gemma 4: 256 sliding, 512 full
  std::vector<int64_t> n_kv_heads;
  std::vector<int64_t> ffn_size;     // MLP intermediate size (Gemma 4 E2B: 2x on shared layers)
  std::vector<bool> has_v_proj;      // false on Gemma 4 k_eq_v full layers (V from raw K);
                                     // on KV-shared layers it mirrors the donor
  std::vector<int64_t> kv_source;    // layer whose KV cache this layer reads (itself if it owns KV)

  // Gemma 4 extras (zero/false for Gemma 3).
  int64_t n_kv_shared_layers = 0;
  int64_t per_layer_input_size = 0;  // PLE width P (0 = no per-layer embeddings)
  int64_t per_layer_vocab_size = 0;
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  int64_t expert_ffn_size = 0;

  bool operator==(const HParams&) const = default;

  bool is_sliding(int64_t layer) const { return layer_types[layer] == LayerType::kSliding; }
  bool owns_kv(int64_t layer) const { return kv_source[layer] == layer; }
  int64_t n_full_layers() const;

  // Checks internal consistency (positive sizes, vector lengths, heads divisible by KV heads,
  // donors valid). Errors name the field and `source` (a file path).
  Status Validate(const std::string& source) const;
};

// Fills kv_source from n_kv_shared_layers and layer_types (a shared layer reads the last earlier
// KV-owning layer of its own type) and makes has_v_proj of shared layers mirror their donor.
// Used by both loaders so sharing is computed in exactly one place. Errors when a shared layer has
// no donor of its type.
Status ComputeKvSources(HParams& hp, const std::string& source);

// The Gemma 3 full/sliding rule: layer i is full iff (i + 1) % pattern == 0 (pattern 6 = 5:1).
std::vector<LayerType> PeriodicLayerTypes(int64_t n_layers, int64_t pattern);

}  // namespace gemma_local
