// Hugging Face config.json <-> HParams for Gemma 3 (Gemma3ForCausalLM, text keys at top level;
// Gemma3ForConditionalGeneration, text keys under text_config) and Gemma 4
// (Gemma4ForConditionalGeneration / text_config, or a bare gemma4_text config).
//
// Absent keys take transformers' Gemma3TextConfig / Gemma4TextConfig defaults. Both the legacy
// keys (rope_theta, rope_local_base_freq, rope_scaling, sliding_window_pattern) and the v5 keys
// (rope_parameters, layer_types) are understood. Keys we cannot honour (an unknown activation, a
// RoPE type other than default/linear/proportional, bidirectional text attention) are errors, not
// silently ignored.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "model/hparams.h"

namespace gemma_local {

Result<HParams> HParamsFromConfigJson(const nlohmann::json& config, const std::string& source);
// Reads and parses `path` (capped at 16 MiB), then HParamsFromConfigJson.
Result<HParams> LoadHfConfig(const std::string& path);

// Which config.json shape to emit.
enum class HfConfigLayout {
  kCausalLm,               // Gemma3ForCausalLM, model_type gemma3_text, keys at top level
  kConditionalGeneration,  // Gemma{3,4}ForConditionalGeneration with text_config
};
// The config.json transformers would write for `hp` (legacy Gemma 3 keys, v5 Gemma 4 keys).
nlohmann::json ConfigJsonFromHParams(const HParams& hp, HfConfigLayout layout);

}  // namespace gemma_local
