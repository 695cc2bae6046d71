// The one table mapping Hugging Face Gemma tensor names to the canonical (GGUF / llama.cpp) names
// the model code uses (spec §3.1, §3.2). Formats stay Gemma-agnostic; this is where names bind.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gemma_local {

// Canonical name for an HF text-decoder tensor name, or nullopt for tensors outside the text
// decoder (vision/audio towers, projectors) or unknown names. Accepts the prefixes "model.",
// "model.language_model." and "language_model.model." (older Gemma 3 multimodal checkpoints).
std::optional<std::string> CanonicalNameFromHf(std::string_view hf_name);

// The HF name (with `prefix`, e.g. "model." or "model.language_model.") for a canonical name, or
// nullopt for tensors HF does not store (e.g. the generated rope_freqs.weight).
std::optional<std::string> HfNameFromCanonical(std::string_view canonical, std::string_view prefix);

}  // namespace gemma_local
