#include "model/hf_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/json_access.h"
#include "core/mapped_file.h"

namespace gemma_local {
namespace {

using nlohmann::json;

const char* JsonTypeName(const json& v) { return v.type_name(); }

// Typed, path-naming access to one JSON object (core/json_access underneath, so no read can
// throw). Absent or null keys take the default.
class Fields {
 public:
  Fields(const json& obj, std::string source, std::string prefix)
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  // The value of `key`, or nullptr when it is absent or null.
  const json* Get(const char* key) const {
    const json* v = JsonFind(obj_, key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  }
  bool Has(const char* key) const { return Get(key) != nullptr; }
  // True when the key is present with an explicit null.
  bool IsExplicitNull(const char* key) const {
    const json* v = JsonFind(obj_, key);
    return v != nullptr && v->is_null();
  }
  std::string Path(const std::string& key) const { return prefix_ + key; }
  // "<source>: <prefix><key>", the path errors name.
  std::string FullPath(const std::string& key) const { return source_ + ": " + Path(key); }

  Status TypeError(const std::string& key, const char* expected, const json& got) const {
    return CorruptDataError(FullPath(key) + ": expected " + expected + ", got " +
                            JsonTypeName(got));
  }

  // Integral floats (2.0) are accepted, as Python writes them for int fields at times.
  Result<int64_t> Int(const char* key, int64_t def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    }
    return JsonGet<int64_t>(*v, FullPath(key));
  }
  Result<double> Float(const char* key, double def) const {
    const json* v = Get(key);
    return v == nullptr ? Result<double>(def) : JsonGet<double>(*v, FullPath(key));
  }
  Result<std::optional<double>> OptFloat(const char* key) const {
    const json* v = Get(key);
    if (v == nullptr) return std::optional<double>();
    if (!v->is_number()) return TypeError(key, "a number or null", *v);
    return std::optional<double>(v->get<double>());
  }
  Result<bool> Bool(const char* key, bool def) const {
    const json* v = Get(key);
    return v == nullptr ? Result<bool>(def) : JsonGet<bool>(*v, FullPath(key));
  }
  Result<std::string> String(const char* key, std::string def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    return JsonGet<std::string>(*v, FullPath(key));
  }

  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

 private:
  const json& obj_;
  std::string source_;
  std::string prefix_;
};

// Precondition: f.Has("layer_types").
Result<std::vector<LayerType>> ParseLayerTypes(const Fields& f, int64_t n_layers) {
  const json& v = *f.Get("layer_types");
  if (!v.is_array()) return f.TypeError("layer_types", "an array of strings", v);
  if (static_cast<int64_t>(v.size()) != n_layers) {
    return CorruptDataError(f.source() + ": " + f.Path("layer_types") + ": has " +
                            std::to_string(v.size()) + " entries, num_hidden_layers is " +
                            std::to_string(n_layers));
  }
  std::vector<LayerType> types;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& t = v[i];
    if (t == "sliding_attention") {
      types.push_back(LayerType::kSliding);
    } else if (t == "full_attention") {
      types.push_back(LayerType::kFull);
    } else {
      return CorruptDataError(f.source() + ": " + f.Path("layer_types") + "[" + std::to_string(i) +
                              "]: expected \"sliding_attention\" or \"full_attention\", got " +
                              JsonSnippet(t));
    }
  }
  return types;
}

// One RoPE parameter block ({rope_type|type, rope_theta, factor, partial_rotary_factor}).
Result<RopeParams> ParseRope(const json& obj, const std::string& source, const std::string& path,
                             double default_theta) {
  if (!obj.is_object()) {
    return CorruptDataError(source + ": " + path + ": expected an object, got " + obj.type_name());
  }
  Fields f(obj, source, path + ".");
  RopeParams rope;
  GL_ASSIGN_OR_RETURN(rope.theta, f.Float("rope_theta", default_theta));
  std::string type = "default";
  if (f.Has("rope_type")) {
    GL_ASSIGN_OR_RETURN(type, f.String("rope_type", "default"));
  } else if (f.Has("type")) {
    GL_ASSIGN_OR_RETURN(type, f.String("type", "default"));
  }
  if (type == "linear") {
    GL_ASSIGN_OR_RETURN(rope.linear_factor, f.Float("factor", 1.0));
    if (!(rope.linear_factor > 0)) {
      return CorruptDataError(source + ": " + path + ".factor must be > 0");
    }
  } else if (type == "proportional") {
    GL_ASSIGN_OR_RETURN(rope.partial_rotary_factor, f.Float("partial_rotary_factor", 1.0));
  } else if (type != "default") {
    return UnsupportedError(source + ": " + path + ": RoPE type \"" + type +
                            "\" is not supported (default, linear, proportional are)");
  }
  if (!(rope.theta > 0)) return CorruptDataError(source + ": " + path + ".rope_theta must be > 0");
  if (!(rope.partial_rotary_factor > 0 && rope.partial_rotary_factor <= 1)) {
    return CorruptDataError(source + ": " + path + ".partial_rotary_factor must be in (0, 1]");
  }
  return rope;
}

Status CheckActivation(const Fields& f) {
  const char* key = f.Has("hidden_activation") ? "hidden_activation" : "hidden_act";
  GL_ASSIGN_OR_RETURN(std::string act, f.String(key, "gelu_pytorch_tanh"));
  if (act != "gelu_pytorch_tanh") {
    return UnsupportedError(f.source() + ": " + f.Path(key) + ": activation \"" + act +
                            "\" is not supported (Gemma uses gelu_pytorch_tanh)");
  }
  return Status::Ok();
}

Result<HParams> ParseGemma3Text(const Fields& f) {
  HParams hp;
  hp.family = ModelFamily::kGemma3;
  GL_RETURN_IF_ERROR(CheckActivation(f));
  GL_ASSIGN_OR_RETURN(hp.vocab_size, f.Int("vocab_size", 262208));
  GL_ASSIGN_OR_RETURN(hp.hidden_size, f.Int("hidden_size", 2304));
  GL_ASSIGN_OR_RETURN(int64_t ffn, f.Int("intermediate_size", 9216));
  GL_ASSIGN_OR_RETURN(hp.n_layers, f.Int("num_hidden_layers", 26));
  GL_ASSIGN_OR_RETURN(hp.n_heads, f.Int("num_attention_heads", 8));
  GL_ASSIGN_OR_RETURN(int64_t n_kv, f.Int("num_key_value_heads", 4));
  GL_ASSIGN_OR_RETURN(int64_t head_dim, f.Int("head_dim", 256));
  GL_ASSIGN_OR_RETURN(hp.context_length, f.Int("max_position_embeddings", 131072));
  GL_ASSIGN_OR_RETURN(hp.rms_norm_eps, f.Float("rms_norm_eps", 1e-6));
  GL_ASSIGN_OR_RETURN(double qpas, f.Float("query_pre_attn_scalar", 256));
  // An explicit null window means "no sliding layers"; an absent key takes the default.
  const bool window_null = f.IsExplicitNull("sliding_window");
  GL_ASSIGN_OR_RETURN(hp.sliding_window, f.Int("sliding_window", window_null ? 0 : 4096));
  GL_ASSIGN_OR_RETURN(int64_t pattern, f.Int("sliding_window_pattern", 6));
  GL_ASSIGN_OR_RETURN(hp.final_logit_softcap, f.OptFloat("final_logit_softcapping"));
  GL_ASSIGN_OR_RETURN(hp.attn_logit_softcap, f.OptFloat("attn_logit_softcapping"));
  GL_ASSIGN_OR_RETURN(bool bidirectional, f.Bool("use_bidirectional_attention", false));
  if (bidirectional) {
    return UnsupportedError(f.source() + ": " + f.Path("use_bidirectional_attention") +
                            " is set (an embedding model); only causal decoders are supported");
  }
  if (!(qpas > 0))
    return CorruptDataError(f.source() + ": " + f.Path("query_pre_attn_scalar") + " must be > 0");
  hp.attention_scale = static_cast<float>(1.0 / std::sqrt(qpas));
  if (hp.n_layers <= 0 || hp.n_layers > 4096) {
    return CorruptDataError(f.source() + ": " + f.Path("num_hidden_layers") +
                            " out of range: " + std::to_string(hp.n_layers));
  }
  if (f.Has("layer_types")) {
    GL_ASSIGN_OR_RETURN(hp.layer_types, ParseLayerTypes(f, hp.n_layers));
  } else {
    hp.layer_types = PeriodicLayerTypes(hp.n_layers, pattern);
  }

  // RoPE: v5 rope_parameters per layer type, else legacy keys.
  const json* rp = f.Get("rope_parameters");
  const json* rp_full = rp != nullptr ? JsonFind(*rp, "full_attention") : nullptr;
  if (rp_full != nullptr) {
    GL_ASSIGN_OR_RETURN(hp.rope_full, ParseRope(*rp_full, f.source(),
                                                f.Path("rope_parameters.full_attention"), 1e6));
    if (const json* rp_sliding = JsonFind(*rp, "sliding_attention")) {
      GL_ASSIGN_OR_RETURN(
          hp.rope_sliding,
          ParseRope(*rp_sliding, f.source(), f.Path("rope_parameters.sliding_attention"), 1e4));
    } else {
      hp.rope_sliding = RopeParams{1e4, 1.0, 1.0};
    }
  } else {
    GL_ASSIGN_OR_RETURN(double theta, f.Float("rope_theta", 1e6));
    GL_ASSIGN_OR_RETURN(double local_theta, f.Float("rope_local_base_freq", 1e4));
    hp.rope_full = RopeParams{static_cast<float>(theta), 1.0f, 1.0f};
    if (f.Has("rope_scaling")) {
      GL_ASSIGN_OR_RETURN(hp.rope_full, ParseRope(*f.Get("rope_scaling"), f.source(),
                                                  f.Path("rope_scaling"), theta));
      hp.rope_full.theta = theta;
    }
    hp.rope_sliding = RopeParams{static_cast<float>(local_theta), 1.0f, 1.0f};
  }
  if (hp.sliding_window <= 0) {
    // No window: every layer attends globally.
    hp.sliding_window = 0;
    hp.layer_types.assign(static_cast<size_t>(hp.n_layers), LayerType::kFull);
  }
  const size_t n = static_cast<size_t>(hp.n_layers);
  hp.head_dim.assign(n, head_dim);
  hp.n_kv_heads.assign(n, n_kv);
  hp.ffn_size.assign(n, ffn);
  hp.has_v_proj.assign(n, true);
  GL_RETURN_IF_ERROR(ComputeKvSources(hp, f.source()));
  return hp;
}

Result<HParams> ParseGemma4Text(const Fields& f) {
  HParams hp;
  hp.family = ModelFamily::kGemma4;
  GL_RETURN_IF_ERROR(CheckActivation(f));
  GL_ASSIGN_OR_RETURN(hp.vocab_size, f.Int("vocab_size", 262144));
  GL_ASSIGN_OR_RETURN(hp.hidden_size, f.Int("hidden_size", 2304));
  GL_ASSIGN_OR_RETURN(int64_t ffn, f.Int("intermediate_size", 9216));
  GL_ASSIGN_OR_RETURN(hp.n_layers, f.Int("num_hidden_layers", 30));
  GL_ASSIGN_OR_RETURN(hp.n_heads, f.Int("num_attention_heads", 8));
  GL_ASSIGN_OR_RETURN(int64_t n_kv, f.Int("num_key_value_heads", 4));
  GL_ASSIGN_OR_RETURN(int64_t head_dim, f.Int("head_dim", 256));
  GL_ASSIGN_OR_RETURN(int64_t global_head_dim, f.Int("global_head_dim", 512));
  GL_ASSIGN_OR_RETURN(int64_t n_global_kv, f.Int("num_global_key_value_heads", -1));
  GL_ASSIGN_OR_RETURN(bool k_eq_v, f.Bool("attention_k_eq_v", false));
  GL_ASSIGN_OR_RETURN(hp.context_length, f.Int("max_position_embeddings", 131072));
  GL_ASSIGN_OR_RETURN(hp.rms_norm_eps, f.Float("rms_norm_eps", 1e-6));
  GL_ASSIGN_OR_RETURN(hp.sliding_window, f.Int("sliding_window", 512));
  GL_ASSIGN_OR_RETURN(hp.final_logit_softcap, f.OptFloat("final_logit_softcapping"));
  GL_ASSIGN_OR_RETURN(hp.per_layer_input_size, f.Int("hidden_size_per_layer_input", 256));
  GL_ASSIGN_OR_RETURN(hp.per_layer_vocab_size, f.Int("vocab_size_per_layer_input", 262144));
  GL_ASSIGN_OR_RETURN(hp.n_kv_shared_layers, f.Int("num_kv_shared_layers", 0));
  GL_ASSIGN_OR_RETURN(bool moe, f.Bool("enable_moe_block", false));
  GL_ASSIGN_OR_RETURN(bool double_wide, f.Bool("use_double_wide_mlp", false));
  GL_ASSIGN_OR_RETURN(std::string bidir, f.String("use_bidirectional_attention", ""));
  if (bidir == "all") {
    return UnsupportedError(f.source() + ": " + f.Path("use_bidirectional_attention") +
                            " = \"all\" (an encoder) is not supported");
  }
  if (moe) {
    GL_ASSIGN_OR_RETURN(hp.n_experts, f.Int("num_experts", 0));
    GL_ASSIGN_OR_RETURN(hp.n_experts_used, f.Int("top_k_experts", 0));
    GL_ASSIGN_OR_RETURN(hp.expert_ffn_size, f.Int("moe_intermediate_size", 0));
    if (hp.n_experts <= 0 || hp.n_experts_used <= 0 || hp.expert_ffn_size <= 0) {
      return CorruptDataError(
          f.source() + ": " + f.Path("enable_moe_block") +
          " is true but num_experts / top_k_experts / moe_intermediate_size are not all positive");
    }
  }
  if (hp.per_layer_input_size == 0) hp.per_layer_vocab_size = 0;
  hp.attention_scale = 1.0;  // q/k norm weights carry the temperature (spec §2.3.3)
  if (hp.n_layers <= 0 || hp.n_layers > 4096) {
    return CorruptDataError(f.source() + ": " + f.Path("num_hidden_layers") +
                            " out of range: " + std::to_string(hp.n_layers));
  }
  if (f.Has("layer_types")) {
    GL_ASSIGN_OR_RETURN(hp.layer_types, ParseLayerTypes(f, hp.n_layers));
  } else {
    hp.layer_types = PeriodicLayerTypes(hp.n_layers, 6);
  }
  hp.layer_types.back() = LayerType::kFull;  // transformers forces the last layer to full

  hp.rope_sliding = RopeParams{1e4, 1.0, 1.0};
  hp.rope_full = RopeParams{1e6, 1.0, 0.25};
  if (const json* rp = f.Get("rope_parameters")) {
    if (!rp->is_object()) return f.TypeError("rope_parameters", "an object", *rp);
    if (const json* full = JsonFind(*rp, "full_attention")) {
      GL_ASSIGN_OR_RETURN(hp.rope_full, ParseRope(*full, f.source(),
                                                  f.Path("rope_parameters.full_attention"), 1e6));
    }
    if (const json* sliding = JsonFind(*rp, "sliding_attention")) {
      GL_ASSIGN_OR_RETURN(
          hp.rope_sliding,
          ParseRope(*sliding, f.source(), f.Path("rope_parameters.sliding_attention"), 1e4));
    }
  }

  const size_t n = static_cast<size_t>(hp.n_layers);
  const int64_t first_shared = hp.n_layers - hp.n_kv_shared_layers;
  hp.head_dim.resize(n);
  hp.n_kv_heads.resize(n);
  hp.ffn_size.resize(n);
  hp.has_v_proj.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const bool full = hp.layer_types[i] == LayerType::kFull;
    hp.head_dim[i] = full ? global_head_dim : head_dim;
    hp.n_kv_heads[i] = (full && k_eq_v && n_global_kv > 0) ? n_global_kv : n_kv;
    hp.has_v_proj[i] = !(full && k_eq_v);
    const bool shared =
        static_cast<int64_t>(i) >= first_shared && first_shared > 0 && hp.n_kv_shared_layers > 0;
    hp.ffn_size[i] = (double_wide && shared) ? 2 * ffn : ffn;
  }
  GL_RETURN_IF_ERROR(ComputeKvSources(hp, f.source()));
  return hp;
}

std::string ModelTypeFromArchitectures(const json& config) {
  const json* archs = JsonFind(config, "architectures");
  if (archs == nullptr || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return "";
  }
  const std::string& arch = (*archs)[0].get_ref<const std::string&>();
  if (arch == "Gemma3ForCausalLM") return "gemma3_text";
  if (arch == "Gemma3ForConditionalGeneration") return "gemma3";
  if (arch == "Gemma4ForCausalLM") return "gemma4_text";
  if (arch == "Gemma4ForConditionalGeneration") return "gemma4";
  return arch;
}

}  // namespace

Result<HParams> HParamsFromConfigJson(const json& config, const std::string& source) {
  if (!config.is_object()) {
    return CorruptDataError(source + ": expected a JSON object, got " + config.type_name());
  }
  std::string model_type;
  if (const json* mt = JsonFind(config, "model_type")) {
    GL_ASSIGN_OR_RETURN(model_type, JsonGet<std::string>(*mt, source + ": model_type"));
  } else {
    model_type = ModelTypeFromArchitectures(config);
  }
  const bool wrapped = model_type == "gemma3" || model_type == "gemma4";
  const bool bare = model_type == "gemma3_text" || model_type == "gemma4_text";
  if (!wrapped && !bare) {
    return UnsupportedError(
        source + ": model_type \"" + model_type +
        "\" is not a Gemma 3 or Gemma 4 text model (expected gemma3, gemma3_text, "
        "gemma4 or gemma4_text)");
  }
  const json* text = &config;
  std::string prefix;
  json empty = json::object();
  if (wrapped) {
    GL_ASSIGN_OR_RETURN(const json* text_config,
                        JsonOptionalObjectField(config, "text_config", source + ":"));
    if (text_config != nullptr) {
      text = text_config;
    } else {
      text = &empty;  // every key takes its default
    }
    prefix = "text_config.";
  }
  Fields f(*text, source, prefix);
  Result<HParams> hp = model_type.rfind("gemma3", 0) == 0 ? ParseGemma3Text(f) : ParseGemma4Text(f);
  if (!hp.ok()) return hp.status();
  GL_RETURN_IF_ERROR(hp->Validate(source));
  return hp;
}

Result<HParams> LoadHfConfig(const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 16u << 20));
  // nlohmann stops at a NUL byte as if the input ended there; JSON text never contains one.
  if (text.find('\0') != std::string::npos) {
    return CorruptDataError(path + ": contains a NUL byte at offset " +
                            std::to_string(text.find('\0')));
  }
  json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return CorruptDataError(path + ": not valid JSON");
  return HParamsFromConfigJson(config, path);
}

}  // namespace gemma_local

namespace gemma_local {
namespace {

json RopeJson(const RopeParams& rope) {
  json j = json::object();
  if (rope.linear_factor != 1.0) {
    j["rope_type"] = "linear";
    j["factor"] = rope.linear_factor;
  } else if (rope.partial_rotary_factor != 1.0) {
    j["rope_type"] = "proportional";
    j["partial_rotary_factor"] = rope.partial_rotary_factor;
  } else {
    j["rope_type"] = "default";
  }
  j["rope_theta"] = rope.theta;
  return j;
}

json LayerTypesJson(const HParams& hp) {
  json types = json::array();
  for (LayerType t : hp.layer_types) {
    types.push_back(t == LayerType::kFull ? "full_attention" : "sliding_attention");
  }
  return types;
}

json OptionalNumber(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// Index of the first layer of `type`, or 0.
size_t FirstLayerOf(const HParams& hp, LayerType type) {
  for (size_t i = 0; i < hp.layer_types.size(); ++i) {
    if (hp.layer_types[i] == type) return i;
  }
  return 0;
}

json Gemma3TextJson(const HParams& hp) {
  json t = json::object();
  t["model_type"] = "gemma3_text";
  t["vocab_size"] = hp.vocab_size;
  t["hidden_size"] = hp.hidden_size;
  t["intermediate_size"] = hp.ffn_size[0];
  t["num_hidden_layers"] = hp.n_layers;
  t["num_attention_heads"] = hp.n_heads;
  t["num_key_value_heads"] = hp.n_kv_heads[0];
  t["head_dim"] = hp.head_dim[0];
  t["hidden_activation"] = "gelu_pytorch_tanh";
  t["max_position_embeddings"] = hp.context_length;
  t["rms_norm_eps"] = hp.rms_norm_eps;
  t["rope_theta"] = hp.rope_full.theta;
  t["rope_local_base_freq"] = hp.rope_sliding.theta;
  t["rope_scaling"] = hp.rope_full.linear_factor != 1.0 ? RopeJson(hp.rope_full) : json(nullptr);
  // attention_scale = query_pre_attn_scalar^-1/2; emit an integer when it is one (and fits one:
  // a hostile config can carry any double here).
  const double qpas = 1.0 / (hp.attention_scale * hp.attention_scale);
  const double rounded = std::round(qpas);
  if (std::fabs(rounded) < 9e15 && std::fabs(qpas - rounded) < 1e-6 * rounded) {
    t["query_pre_attn_scalar"] = static_cast<int64_t>(rounded);
  } else {
    t["query_pre_attn_scalar"] = qpas;
  }
  t["sliding_window"] = hp.sliding_window > 0 ? json(hp.sliding_window) : json(nullptr);
  t["layer_types"] = LayerTypesJson(hp);
  t["final_logit_softcapping"] = OptionalNumber(hp.final_logit_softcap);
  t["attn_logit_softcapping"] = OptionalNumber(hp.attn_logit_softcap);
  t["attention_bias"] = false;
  t["tie_word_embeddings"] = true;
  t["pad_token_id"] = 0;
  t["eos_token_id"] = 1;
  t["bos_token_id"] = 2;
  return t;
}

json Gemma4TextJson(const HParams& hp) {
  const size_t s = FirstLayerOf(hp, LayerType::kSliding);
  const size_t f = FirstLayerOf(hp, LayerType::kFull);
  bool k_eq_v = false;
  for (size_t i = 0; i < hp.layer_types.size(); ++i) {
    if (hp.layer_types[i] == LayerType::kFull && !hp.has_v_proj[i]) k_eq_v = true;
  }
  const bool double_wide = hp.n_kv_shared_layers > 0 && hp.ffn_size.back() == 2 * hp.ffn_size[0];
  json t = json::object();
  t["model_type"] = "gemma4_text";
  t["vocab_size"] = hp.vocab_size;
  t["hidden_size"] = hp.hidden_size;
  t["intermediate_size"] = hp.ffn_size[0];
  t["num_hidden_layers"] = hp.n_layers;
  t["num_attention_heads"] = hp.n_heads;
  t["num_key_value_heads"] = hp.n_kv_heads[s];
  t["head_dim"] = hp.head_dim[s];
  t["global_head_dim"] = hp.head_dim[f];
  t["num_global_key_value_heads"] = k_eq_v ? json(hp.n_kv_heads[f]) : json(nullptr);
  t["attention_k_eq_v"] = k_eq_v;
  t["hidden_activation"] = "gelu_pytorch_tanh";
  t["max_position_embeddings"] = hp.context_length;
  t["rms_norm_eps"] = hp.rms_norm_eps;
  t["sliding_window"] = hp.sliding_window;
  t["layer_types"] = LayerTypesJson(hp);
  t["rope_parameters"] = {{"full_attention", RopeJson(hp.rope_full)},
                          {"sliding_attention", RopeJson(hp.rope_sliding)}};
  t["final_logit_softcapping"] = OptionalNumber(hp.final_logit_softcap);
  t["hidden_size_per_layer_input"] = hp.per_layer_input_size;
  t["vocab_size_per_layer_input"] = hp.per_layer_input_size > 0 ? hp.per_layer_vocab_size : 262144;
  t["num_kv_shared_layers"] = hp.n_kv_shared_layers;
  t["use_double_wide_mlp"] = double_wide;
  t["enable_moe_block"] = hp.n_experts > 0;
  t["num_experts"] = hp.n_experts > 0 ? json(hp.n_experts) : json(nullptr);
  t["top_k_experts"] = hp.n_experts > 0 ? json(hp.n_experts_used) : json(nullptr);
  t["moe_intermediate_size"] = hp.n_experts > 0 ? json(hp.expert_ffn_size) : json(nullptr);
  t["attention_bias"] = false;
  t["tie_word_embeddings"] = true;
  t["pad_token_id"] = 0;
  t["eos_token_id"] = 1;
  t["bos_token_id"] = 2;
  return t;
}

}  // namespace

json ConfigJsonFromHParams(const HParams& hp, HfConfigLayout layout) {
  const bool g3 = hp.family == ModelFamily::kGemma3;
  json text = g3 ? Gemma3TextJson(hp) : Gemma4TextJson(hp);
  if (layout == HfConfigLayout::kCausalLm && g3) {
    text["architectures"] = json::array({"Gemma3ForCausalLM"});
    return text;
  }
  json root = json::object();
  root["architectures"] =
      json::array({g3 ? "Gemma3ForConditionalGeneration" : "Gemma4ForConditionalGeneration"});
  root["model_type"] = g3 ? "gemma3" : "gemma4";
  root["text_config"] = text;
  root["eos_token_id"] = json::array({1, 106});
  root["tie_word_embeddings"] = true;
  return root;
}

}  // namespace gemma_local
