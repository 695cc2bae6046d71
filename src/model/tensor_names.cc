#include "model/tensor_names.h"

#include <array>
#include <charconv>
#include <utility>

namespace gemma_local {
namespace {

struct NamePair {
  const char* hf;
  const char* canonical;
};

// Model-level tensors (after the HF prefix).
constexpr std::array<NamePair, 6> kModelNames = {{
    {"embed_tokens.weight", "token_embd.weight"},
    {"norm.weight", "output_norm.weight"},
    {"embed_tokens_per_layer.weight", "per_layer_token_embd.weight"},
    {"per_layer_model_projection.weight", "per_layer_model_proj.weight"},
    {"per_layer_projection_norm.weight", "per_layer_proj_norm.weight"},
    {"lm_head.weight", "output.weight"},
}};

// Per-layer tensors: "layers.N.<hf>" <-> "blk.N.<canonical>".
constexpr std::array<NamePair, 25> kLayerNames = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight"},
    {"pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight"},
    {"post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight"},
    {"router.proj.weight", "ffn_gate_inp.weight"},
    {"router.scale", "ffn_gate_inp.scale"},
    {"router.per_expert_scale", "ffn_down_exps.scale"},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"experts.down_proj", "ffn_down_exps.weight"},
    {"per_layer_input_gate.weight", "inp_gate.weight"},
    {"per_layer_projection.weight", "proj.weight"},
    {"post_per_layer_input_norm.weight", "post_norm.weight"},
    {"layer_scalar", "layer_output_scale.weight"},
}};

constexpr std::array<std::string_view, 3> kHfPrefixes = {"model.language_model.",
                                                         "language_model.model.", "model."};

// Splits "<head>.<N>.<rest>" into N and rest.
bool SplitLayer(std::string_view name, std::string_view head, int* layer, std::string_view* rest) {
  if (name.substr(0, head.size()) != head) return false;
  name.remove_prefix(head.size());
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  int n = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + dot, n);
  if (ec != std::errc() || ptr != name.data() + dot || n < 0) return false;
  *layer = n;
  *rest = name.substr(dot + 1);
  return true;
}

}  // namespace

std::optional<std::string> CanonicalNameFromHf(std::string_view hf_name) {
  if (hf_name == "lm_head.weight") return std::string("output.weight");
  std::string_view name = hf_name;
  bool stripped = false;
  for (std::string_view prefix : kHfPrefixes) {
    if (name.substr(0, prefix.size()) == prefix) {
      name.remove_prefix(prefix.size());
      stripped = true;
      break;
    }
  }
  if (!stripped) return std::nullopt;
  for (const NamePair& p : kModelNames) {
    if (name == p.hf) return std::string(p.canonical);
  }
  int layer;
  std::string_view rest;
  if (!SplitLayer(name, "layers.", &layer, &rest)) return std::nullopt;
  for (const NamePair& p : kLayerNames) {
    if (rest == p.hf) return "blk." + std::to_string(layer) + "." + p.canonical;
  }
  return std::nullopt;
}

std::optional<std::string> HfNameFromCanonical(std::string_view canonical, std::string_view prefix) {
  for (const NamePair& p : kModelNames) {
    if (canonical == p.canonical) {
      if (canonical == "output.weight") return std::string("lm_head.weight");
      return std::string(prefix) + p.hf;
    }
  }
  int layer;
  std::string_view rest;
  if (!SplitLayer(canonical, "blk.", &layer, &rest)) return std::nullopt;
  for (const NamePair& p : kLayerNames) {
    if (rest == p.canonical) return std::string(prefix) + "layers." + std::to_string(layer) + "." + p.hf;
  }
  return std::nullopt;
}

}  // namespace gemma_local
