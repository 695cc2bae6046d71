#include "gemma_local/model_info.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/checkpoint.h"

namespace gemma_local {
namespace {

struct KnownVariant {
  ModelFamily family;
  int64_t n_layers;
  int64_t hidden_size;
  const char* name;
};

constexpr KnownVariant kKnownVariants[] = {
    {ModelFamily::kGemma3, 18, 640, "gemma3-270m"},   {ModelFamily::kGemma3, 26, 1152, "gemma3-1b"},
    {ModelFamily::kGemma3, 34, 2560, "gemma3-4b"},    {ModelFamily::kGemma3, 48, 3840, "gemma3-12b"},
    {ModelFamily::kGemma3, 62, 5376, "gemma3-27b"},   {ModelFamily::kGemma4, 35, 1536, "gemma4-e2b"},
    {ModelFamily::kGemma4, 42, 2560, "gemma4-e4b"},   {ModelFamily::kGemma4, 60, 5376, "gemma4-31b"},
    {ModelFamily::kGemma4, 30, 2816, "gemma4-26b-a4b"},
};

std::string VariantName(const HParams& hp) {
  for (const KnownVariant& v : kKnownVariants) {
    if (v.family == hp.family && v.n_layers == hp.n_layers && v.hidden_size == hp.hidden_size) return v.name;
  }
  return "custom";
}

// Not a learned weight: llama.cpp's converter generates it for Gemma 4's proportional RoPE.
bool IsGeneratedTensor(const std::string& name) { return name == "rope_freqs.weight"; }

// Bytes of `t` re-encoded as `target` (see MemoryEstimate for the rule).
uint64_t BytesAs(const WeightTensor& t, DType target) {
  const uint64_t n = t.n_elements();
  if (t.ne.size() < 2) return n * 4;
  const DTypeTraits& tr = Traits(target);
  if (t.ne[0] % tr.block_elems != 0) return n * 2;
  return n / tr.block_elems * tr.block_bytes;
}

MemoryEstimate EstimateMemory(const Checkpoint& ck) {
  const HParams& hp = ck.hparams();
  MemoryEstimate m;
  for (const WeightTensor& t : ck.tensors()) {
    if (IsGeneratedTensor(t.name)) continue;
    m.weights_as_stored += t.n_bytes;
    m.weights_f16 += BytesAs(t, DType::kF16);
    m.weights_q8_0 += BytesAs(t, DType::kQ8_0);
    m.weights_q4_0 += BytesAs(t, DType::kQ4_0);
  }
  constexpr uint64_t kF16Bytes = 2;
  for (int64_t i = 0; i < hp.n_layers; ++i) {
    if (!hp.owns_kv(i)) continue;
    const uint64_t per_token = 2 * static_cast<uint64_t>(hp.n_kv_heads[i] * hp.head_dim[i]) * kF16Bytes;
    if (hp.is_sliding(i) && hp.sliding_window > 0) {
      m.kv_bytes_per_token_sliding += per_token;
    } else {
      m.kv_bytes_per_token += per_token;
    }
  }
  m.kv_sliding_window = hp.sliding_window;
  const uint64_t ctx = static_cast<uint64_t>(hp.context_length);
  m.kv_bytes_at_context_length =
      m.kv_bytes_per_token * ctx +
      m.kv_bytes_per_token_sliding * std::min<uint64_t>(ctx, static_cast<uint64_t>(hp.sliding_window));
  return m;
}

std::vector<LayerGroupInfo> LayerGroups(const HParams& hp) {
  std::vector<LayerGroupInfo> groups;
  for (LayerType type : {LayerType::kSliding, LayerType::kFull}) {
    LayerGroupInfo g;
    g.layer_type = type == LayerType::kSliding ? "sliding" : "full";
    for (int64_t i = 0; i < hp.n_layers; ++i) {
      if (hp.layer_types[i] != type) continue;
      if (g.n_layers == 0) {
        g.head_dim = hp.head_dim[i];
        g.n_kv_heads = hp.n_kv_heads[i];
      }
      ++g.n_layers;
      g.n_kv_layers += hp.owns_kv(i);
    }
    if (g.n_layers > 0) groups.push_back(g);
  }
  return groups;
}

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace

Result<ModelInfo> InspectModel(const std::string& path) {
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(path));
  const HParams& hp = ck.hparams();
  ModelInfo info;
  info.path = path;
  info.format = ck.format() == CheckpointFormat::kGguf ? "gguf" : "safetensors";
  info.architecture = ModelFamilyName(hp.family);
  info.variant = VariantName(hp);
  info.n_layers = hp.n_layers;
  info.hidden_size = hp.hidden_size;
  info.n_heads = hp.n_heads;
  // Report the sliding layers' geometry where the two layer types differ (first layer otherwise).
  size_t ref = 0;
  for (size_t i = 0; i < hp.layer_types.size(); ++i) {
    if (hp.layer_types[i] == LayerType::kSliding) {
      ref = i;
      break;
    }
  }
  info.n_kv_heads = hp.n_kv_heads[ref];
  info.head_dim = hp.head_dim[ref];
  info.ffn_size = hp.ffn_size[0];
  if (std::any_of(hp.ffn_size.begin(), hp.ffn_size.end(), [&](int64_t f) { return f != hp.ffn_size[0]; })) {
    info.ffn_size_per_layer = hp.ffn_size;
  }
  info.vocab_size = hp.vocab_size;
  info.sliding_window = hp.sliding_window;
  info.context_length = hp.context_length;
  info.n_kv_shared_layers = hp.n_kv_shared_layers;
  info.per_layer_input_size = hp.per_layer_input_size;
  info.n_experts = hp.n_experts;
  info.n_experts_used = hp.n_experts_used;
  info.expert_ffn_size = hp.expert_ffn_size;
  info.attention_scale = hp.attention_scale;
  info.rope_theta_full = hp.rope_full.theta;
  info.rope_theta_sliding = hp.rope_sliding.theta;
  info.rope_linear_factor = hp.rope_full.linear_factor;
  info.rope_partial_rotary_factor = hp.rope_full.partial_rotary_factor;
  info.final_logit_softcap = hp.final_logit_softcap.value_or(0.0f);
  info.layer_groups = LayerGroups(hp);
  for (const WeightTensor& t : ck.tensors()) {
    if (IsGeneratedTensor(t.name)) continue;
    info.n_params += t.n_elements();
    info.tensor_types[DTypeName(t.dtype)] += 1;
  }
  info.file_bytes = ck.file_bytes();
  info.has_tokenizer = ck.has_tokenizer();
  info.has_chat_template = ck.has_chat_template();
  info.memory = EstimateMemory(ck);
  return info;
}

std::string ModelInfo::ToJson() const {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["format"] = format;
  j["architecture"] = architecture;
  j["variant"] = variant;
  j["n_layers"] = n_layers;
  j["hidden_size"] = hidden_size;
  j["n_heads"] = n_heads;
  j["n_kv_heads"] = n_kv_heads;
  j["head_dim"] = head_dim;
  j["ffn_size"] = ffn_size;
  if (!ffn_size_per_layer.empty()) j["ffn_size_per_layer"] = ffn_size_per_layer;
  j["vocab_size"] = vocab_size;
  j["sliding_window"] = sliding_window;
  j["context_length"] = context_length;
  j["n_kv_shared_layers"] = n_kv_shared_layers;
  j["per_layer_input_size"] = per_layer_input_size;
  j["n_experts"] = n_experts;
  j["n_experts_used"] = n_experts_used;
  j["expert_ffn_size"] = expert_ffn_size;
  j["attention_scale"] = attention_scale;
  j["rope"] = {{"theta_full", rope_theta_full},
               {"theta_sliding", rope_theta_sliding},
               {"linear_factor_full", rope_linear_factor},
               {"partial_rotary_factor_full", rope_partial_rotary_factor}};
  j["final_logit_softcapping"] = final_logit_softcap > 0 ? nlohmann::ordered_json(final_logit_softcap) : nullptr;
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  for (const LayerGroupInfo& g : layer_groups) {
    groups.push_back({{"layer_type", g.layer_type},
                      {"n_layers", g.n_layers},
                      {"n_kv_layers", g.n_kv_layers},
                      {"head_dim", g.head_dim},
                      {"n_kv_heads", g.n_kv_heads}});
  }
  j["layer_groups"] = groups;
  j["n_params"] = n_params;
  j["tensor_types"] = tensor_types;
  j["file_bytes"] = file_bytes;
  j["has_tokenizer"] = has_tokenizer;
  j["has_chat_template"] = has_chat_template;
  j["memory"] = {{"weights_as_stored", memory.weights_as_stored},
                 {"weights_f16", memory.weights_f16},
                 {"weights_q8_0", memory.weights_q8_0},
                 {"weights_q4_0", memory.weights_q4_0},
                 {"kv_cache_type", "f16"},
                 {"kv_bytes_per_token", memory.kv_bytes_per_token},
                 {"kv_bytes_per_token_sliding", memory.kv_bytes_per_token_sliding},
                 {"kv_sliding_window", memory.kv_sliding_window},
                 {"kv_bytes_at_context_length", memory.kv_bytes_at_context_length}};
  return j.dump(2);
}

std::string ModelInfo::ToText() const {
  std::string s;
  s += fmt::format("{} ({} checkpoint, {})\n", path, format, HumanBytes(file_bytes));
  s += fmt::format("  architecture   {} ({})\n", architecture, variant);
  s += fmt::format("  layers         {} ", n_layers);
  for (const LayerGroupInfo& g : layer_groups) {
    s += fmt::format("[{} {}: head_dim {}, kv_heads {}, {} own KV] ", g.n_layers, g.layer_type, g.head_dim,
                     g.n_kv_heads, g.n_kv_layers);
  }
  s += "\n";
  s += fmt::format("  hidden {}  heads {}  ffn {}{}  vocab {}\n", hidden_size, n_heads, ffn_size,
                   ffn_size_per_layer.empty() ? "" : " (varies per layer)", vocab_size);
  s += fmt::format("  context {}  sliding window {}  attention scale {:.6g}\n", context_length,
                   sliding_window, attention_scale);
  if (n_experts > 0) {
    s += fmt::format("  experts        {} (top {}), expert ffn {}\n", n_experts, n_experts_used, expert_ffn_size);
  }
  if (per_layer_input_size > 0) s += fmt::format("  per-layer embeddings {}\n", per_layer_input_size);
  if (n_kv_shared_layers > 0) s += fmt::format("  KV-shared layers {}\n", n_kv_shared_layers);
  s += fmt::format("  parameters     {} ({:.3f} B)\n", n_params, static_cast<double>(n_params) / 1e9);
  s += "  tensor types   ";
  for (const auto& [name, count] : tensor_types) s += fmt::format("{}: {}  ", name, count);
  s += "\n";
  s += fmt::format("  tokenizer      {}   chat template {}\n", has_tokenizer ? "yes" : "no",
                   has_chat_template ? "yes" : "no");
  s += fmt::format("  weights        as stored {}, f16 {}, q8_0 {}, q4_0 {}\n", HumanBytes(memory.weights_as_stored),
                   HumanBytes(memory.weights_f16), HumanBytes(memory.weights_q8_0), HumanBytes(memory.weights_q4_0));
  s += fmt::format("  KV cache (f16) {} per token on full layers + {} per token on sliding layers (capped at {} tokens);\n"
                   "                 {} at the full context of {} tokens\n",
                   HumanBytes(memory.kv_bytes_per_token), HumanBytes(memory.kv_bytes_per_token_sliding),
                   memory.kv_sliding_window, HumanBytes(memory.kv_bytes_at_context_length), context_length);
  return s;
}

Result<uint64_t> DecodeBytesPerToken(const std::string& path) {
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(path));
  const HParams& hp = ck.hparams();
  uint64_t bytes = 0;
  uint64_t embedding = 0;
  for (const WeightTensor& t : ck.tensors()) {
    if (t.name == "token_embd.weight") {
      embedding = t.n_bytes;
    } else if (t.name == "per_layer_token_embd.weight") {
      continue;
    } else if (t.name.find("_exps.") != std::string::npos && hp.n_experts > 0) {
      bytes += t.n_bytes * static_cast<uint64_t>(hp.n_experts_used) /
               static_cast<uint64_t>(hp.n_experts);
    } else {
      bytes += t.n_bytes;
    }
  }
  if (ck.FindTensor("output.weight") == nullptr) bytes += embedding;  // tied LM head
  return bytes;
}

}  // namespace gemma_local
