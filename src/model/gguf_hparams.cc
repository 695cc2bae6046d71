#include "model/gguf_hparams.h"

#include <cmath>
#include <cstring>

namespace gemma_local {
namespace {

using gguf::GgufFile;
using gguf::Value;
using gguf::ValueType;

// `{arch}.key` as a per-layer integer vector: a scalar is broadcast, an array must have n entries.
Result<std::vector<int64_t>> IntOrArray(const GgufFile& f, const std::string& key, int64_t n,
                                        std::optional<int64_t> def) {
  const Value* v = f.Find(key);
  if (v == nullptr) {
    if (!def) return NotFoundError(f.path() + ": required key '" + key + "' is missing");
    return std::vector<int64_t>(static_cast<size_t>(n), *def);
  }
  if (v->type == ValueType::kArray) {
    GL_ASSIGN_OR_RETURN(std::vector<int64_t> arr, f.GetIntArray(key));
    if (static_cast<int64_t>(arr.size()) != n) {
      return CorruptDataError(f.path() + ": key '" + key + "' has " + std::to_string(arr.size()) +
                              " entries, block_count is " + std::to_string(n));
    }
    return arr;
  }
  GL_ASSIGN_OR_RETURN(int64_t scalar, f.GetInt(key));
  return std::vector<int64_t>(static_cast<size_t>(n), scalar);
}

Result<int64_t> IntOr(const GgufFile& f, const std::string& key, int64_t def) {
  if (f.Find(key) == nullptr) return def;
  return f.GetInt(key);
}
Result<double> FloatOr(const GgufFile& f, const std::string& key, double def) {
  if (f.Find(key) == nullptr) return def;
  return f.GetFloat(key);
}

// Layer types from `{arch}.attention.sliding_window_pattern`: a u32 period or a bool array
// (true = sliding), default period `default_period`.
Result<std::vector<LayerType>> LayerTypesFromGguf(const GgufFile& f, const std::string& key,
                                                  int64_t n, int64_t default_period) {
  const Value* v = f.Find(key);
  if (v == nullptr) return PeriodicLayerTypes(n, default_period);
  if (v->type == ValueType::kArray) {
    GL_ASSIGN_OR_RETURN(std::vector<bool> swa, f.GetBoolArray(key));
    if (static_cast<int64_t>(swa.size()) != n) {
      return CorruptDataError(f.path() + ": key '" + key + "' has " + std::to_string(swa.size()) +
                              " entries, block_count is " + std::to_string(n));
    }
    std::vector<LayerType> types;
    for (bool s : swa) types.push_back(s ? LayerType::kSliding : LayerType::kFull);
    return types;
  }
  GL_ASSIGN_OR_RETURN(int64_t period, f.GetInt(key));
  if (period < 0) return CorruptDataError(f.path() + ": key '" + key + "' must be >= 0");
  return PeriodicLayerTypes(n, period == 0 ? 1 : period);
}

// Number of leading 1.0 entries in rope_freqs (the rotated pairs of Gemma 4 proportional RoPE).
Result<double> PartialRotaryFromRopeFreqs(const GgufFile& f, int64_t full_head_dim) {
  const gguf::TensorInfo* t = f.FindTensor("rope_freqs.weight");
  if (t == nullptr) return 1.0;
  if (t->dtype != DType::kF32 || t->n_elements() != static_cast<uint64_t>(full_head_dim / 2)) {
    return CorruptDataError(f.path() + ": tensor 'rope_freqs.weight' must be f32 with " +
                            std::to_string(full_head_dim / 2) + " elements, got " +
                            DTypeName(t->dtype) + " with " + std::to_string(t->n_elements()));
  }
  int64_t rotated = 0;
  for (uint64_t i = 0; i < t->n_elements(); ++i) {
    float x;
    std::memcpy(&x, t->data + 4 * i, 4);
    if (x == 1.0f) ++rotated;
  }
  return 2.0 * static_cast<double>(rotated) / static_cast<double>(full_head_dim);
}

}  // namespace

double LlamaCppGemma3AttentionScale(const HParams& hp) {
  if (hp.n_layers == 62) return 1.0 / std::sqrt(static_cast<double>(hp.hidden_size / hp.n_heads));
  return 1.0 / std::sqrt(static_cast<double>(hp.head_dim[0]));
}

Result<HParams> HParamsFromGguf(const GgufFile& f) {
  GL_ASSIGN_OR_RETURN(std::string arch, f.GetString("general.architecture"));
  HParams hp;
  if (arch == "gemma3") {
    hp.family = ModelFamily::kGemma3;
  } else if (arch == "gemma4") {
    hp.family = ModelFamily::kGemma4;
  } else {
    return UnsupportedError(f.path() + ": general.architecture '" + arch +
                            "' is not supported (gemma3, gemma4 are)");
  }
  const std::string p = arch + ".";
  GL_ASSIGN_OR_RETURN(hp.n_layers, f.GetInt(p + "block_count"));
  if (hp.n_layers <= 0 || hp.n_layers > 4096) {
    return CorruptDataError(f.path() + ": key '" + p + "block_count' out of range: " + std::to_string(hp.n_layers));
  }
  const int64_t n = hp.n_layers;
  GL_ASSIGN_OR_RETURN(hp.hidden_size, f.GetInt(p + "embedding_length"));
  GL_ASSIGN_OR_RETURN(hp.context_length, f.GetInt(p + "context_length"));
  GL_ASSIGN_OR_RETURN(hp.rms_norm_eps, f.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  GL_ASSIGN_OR_RETURN(std::vector<int64_t> heads, IntOrArray(f, p + "attention.head_count", n, std::nullopt));
  for (int64_t h : heads) {
    if (h != heads[0]) return UnsupportedError(f.path() + ": key '" + p + "attention.head_count' varies per layer");
  }
  hp.n_heads = heads[0];
  if (hp.n_heads <= 0) return CorruptDataError(f.path() + ": key '" + p + "attention.head_count' must be positive");
  GL_ASSIGN_OR_RETURN(hp.n_kv_heads, IntOrArray(f, p + "attention.head_count_kv", n, hp.n_heads));
  GL_ASSIGN_OR_RETURN(hp.ffn_size, IntOrArray(f, p + "feed_forward_length", n, std::nullopt));
  GL_ASSIGN_OR_RETURN(int64_t key_len, IntOr(f, p + "attention.key_length", hp.hidden_size / hp.n_heads));
  GL_ASSIGN_OR_RETURN(int64_t value_len, IntOr(f, p + "attention.value_length", key_len));
  if (value_len != key_len) {
    return UnsupportedError(f.path() + ": key '" + p + "attention.value_length' (" + std::to_string(value_len) +
                            ") differs from key_length (" + std::to_string(key_len) + ")");
  }
  GL_ASSIGN_OR_RETURN(hp.sliding_window, IntOr(f, p + "attention.sliding_window", 0));
  GL_ASSIGN_OR_RETURN(double base, FloatOr(f, p + "rope.freq_base", 10000.0));
  GL_ASSIGN_OR_RETURN(double base_swa, FloatOr(f, p + "rope.freq_base_swa", 10000.0));
  hp.rope_full = RopeParams{static_cast<float>(base), 1.0f, 1.0f};
  hp.rope_sliding = RopeParams{static_cast<float>(base_swa), 1.0f, 1.0f};
  // llama.cpp's default when the key is absent: none for Gemma 3, 30 for Gemma 4. 0 means none.
  const double default_cap = hp.family == ModelFamily::kGemma4 ? 30.0 : 0.0;
  GL_ASSIGN_OR_RETURN(double cap, FloatOr(f, p + "final_logit_softcapping", default_cap));
  if (cap != 0.0) hp.final_logit_softcap = static_cast<float>(cap);
  const gguf::TensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return NotFoundError(f.path() + ": tensor 'token_embd.weight' is missing");
  if (embd->ne.size() != 2) {
    return CorruptDataError(f.path() + ": tensor 'token_embd.weight' must be 2-D, has " +
                            std::to_string(embd->ne.size()) + " dims");
  }
  hp.vocab_size = embd->ne[1];

  if (hp.family == ModelFamily::kGemma3) {
    if (hp.sliding_window > 0) {
      GL_ASSIGN_OR_RETURN(hp.layer_types, LayerTypesFromGguf(f, p + "attention.sliding_window_pattern", n, 6));
    } else {
      hp.layer_types.assign(static_cast<size_t>(n), LayerType::kFull);
    }
    hp.head_dim.assign(static_cast<size_t>(n), key_len);
    GL_ASSIGN_OR_RETURN(std::string scaling, f.Find(p + "rope.scaling.type") ? f.GetString(p + "rope.scaling.type") : Result<std::string>(std::string("linear")));
    GL_ASSIGN_OR_RETURN(double factor, FloatOr(f, p + "rope.scaling.factor", 0.0));
    if (scaling == "linear") {
      hp.rope_full.linear_factor = factor == 0.0 ? 1.0 : factor;
    } else if (scaling != "none") {
      return UnsupportedError(f.path() + ": key '" + p + "rope.scaling.type' = '" + scaling +
                              "' is not supported (linear, none are)");
    }
    hp.has_v_proj.assign(static_cast<size_t>(n), true);
    if (f.Find(p + "attention.scale") != nullptr) {
      GL_ASSIGN_OR_RETURN(hp.attention_scale, f.GetFloat(p + "attention.scale"));
    } else {
      hp.attention_scale = static_cast<float>(LlamaCppGemma3AttentionScale(hp));
    }
  } else {
    GL_ASSIGN_OR_RETURN(hp.layer_types, LayerTypesFromGguf(f, p + "attention.sliding_window_pattern", n, 6));
    GL_ASSIGN_OR_RETURN(int64_t key_len_swa, IntOr(f, p + "attention.key_length_swa", key_len));
    GL_ASSIGN_OR_RETURN(int64_t value_len_swa, IntOr(f, p + "attention.value_length_swa", key_len_swa));
    if (value_len_swa != key_len_swa) {
      return UnsupportedError(f.path() + ": key '" + p + "attention.value_length_swa' differs from key_length_swa");
    }
    hp.attention_scale = 1.0;
    GL_ASSIGN_OR_RETURN(hp.n_kv_shared_layers, IntOr(f, p + "attention.shared_kv_layers", 0));
    GL_ASSIGN_OR_RETURN(hp.per_layer_input_size, IntOr(f, p + "embedding_length_per_layer_input", 0));
    GL_ASSIGN_OR_RETURN(hp.n_experts, IntOr(f, p + "expert_count", 0));
    GL_ASSIGN_OR_RETURN(hp.n_experts_used, IntOr(f, p + "expert_used_count", 0));
    GL_ASSIGN_OR_RETURN(hp.expert_ffn_size, IntOr(f, p + "expert_feed_forward_length", 0));
    if (hp.per_layer_input_size > 0) {
      const gguf::TensorInfo* ple = f.FindTensor("per_layer_token_embd.weight");
      hp.per_layer_vocab_size = (ple != nullptr && ple->ne.size() == 2) ? ple->ne[1] : hp.vocab_size;
    }
    hp.head_dim.resize(static_cast<size_t>(n));
    hp.has_v_proj.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      hp.head_dim[i] = hp.layer_types[i] == LayerType::kFull ? key_len : key_len_swa;
      hp.has_v_proj[i] = f.FindTensor("blk." + std::to_string(i) + ".attn_v.weight") != nullptr;
    }
    GL_ASSIGN_OR_RETURN(hp.rope_full.partial_rotary_factor, PartialRotaryFromRopeFreqs(f, key_len));
  }
  if (hp.n_kv_shared_layers < 0 || hp.n_kv_shared_layers >= n) {
    return CorruptDataError(f.path() + ": key '" + p + "attention.shared_kv_layers' out of range");
  }
  GL_RETURN_IF_ERROR(ComputeKvSources(hp, f.path()));
  GL_RETURN_IF_ERROR(hp.Validate(f.path()));
  return hp;
}

namespace {

bool AllEqual(const std::vector<int64_t>& v) {
  for (int64_t x : v) {
    if (x != v[0]) return false;
  }
  return true;
}

Value IntScalarOrArray(const std::vector<int64_t>& v) {
  if (AllEqual(v)) return Value::U32(static_cast<uint32_t>(v[0]));
  std::vector<int32_t> arr(v.begin(), v.end());
  return Value::I32Array(arr);
}

// The period p such that layer_types == PeriodicLayerTypes(n, p), or 0 when none.
int64_t FindPeriod(const HParams& hp) {
  for (int64_t p = 1; p <= hp.n_layers + 1; ++p) {
    if (PeriodicLayerTypes(hp.n_layers, p) == hp.layer_types) return p;
  }
  return 0;
}

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

Status WriteGgufHParams(const HParams& hp, gguf::GgufWriter& w) {
  const bool g3 = hp.family == ModelFamily::kGemma3;
  const std::string arch = ModelFamilyName(hp.family);
  const std::string p = arch + ".";
  w.Set("general.architecture", Value::String(arch));
  w.Set(p + "context_length", Value::U32(static_cast<uint32_t>(hp.context_length)));
  w.Set(p + "embedding_length", Value::U32(static_cast<uint32_t>(hp.hidden_size)));
  w.Set(p + "block_count", Value::U32(static_cast<uint32_t>(hp.n_layers)));
  w.Set(p + "feed_forward_length", IntScalarOrArray(hp.ffn_size));
  w.Set(p + "attention.head_count", Value::U32(static_cast<uint32_t>(hp.n_heads)));
  w.Set(p + "attention.head_count_kv", IntScalarOrArray(hp.n_kv_heads));
  w.Set(p + "attention.layer_norm_rms_epsilon", Value::F32(static_cast<float>(hp.rms_norm_eps)));
  w.Set(p + "rope.freq_base", Value::F32(static_cast<float>(hp.rope_full.theta)));
  w.Set(p + "rope.freq_base_swa", Value::F32(static_cast<float>(hp.rope_sliding.theta)));
  // Gemma 4 always gets the key: llama.cpp would otherwise assume 30.
  if (hp.final_logit_softcap || !g3) {
    w.Set(p + "final_logit_softcapping", Value::F32(hp.final_logit_softcap.value_or(0.0f)));
  }
  const bool any_sliding = hp.n_layers > hp.n_full_layers();
  if (g3) {
    w.Set(p + "attention.key_length", Value::U32(static_cast<uint32_t>(hp.head_dim[0])));
    w.Set(p + "attention.value_length", Value::U32(static_cast<uint32_t>(hp.head_dim[0])));
    if (hp.rope_full.linear_factor != 1.0) {
      w.Set(p + "rope.scaling.type", Value::String("linear"));
      w.Set(p + "rope.scaling.factor", Value::F32(static_cast<float>(hp.rope_full.linear_factor)));
    }
    if (any_sliding && hp.sliding_window > 0) {
      w.Set(p + "attention.sliding_window", Value::U32(static_cast<uint32_t>(hp.sliding_window)));
      const int64_t period = FindPeriod(hp);
      if (period != 6) {
        if (period > 0) {
          w.Set(p + "attention.sliding_window_pattern", Value::U32(static_cast<uint32_t>(period)));
        } else {
          std::vector<bool> swa;
          for (LayerType t : hp.layer_types) swa.push_back(t == LayerType::kSliding);
          w.Set(p + "attention.sliding_window_pattern", Value::BoolArray(swa));
        }
      }
    }
    if (static_cast<float>(LlamaCppGemma3AttentionScale(hp)) != hp.attention_scale) {
      w.Set(p + "attention.scale", Value::F32(static_cast<float>(hp.attention_scale)));
    }
    return Status::Ok();
  }
  // Gemma 4: per-layer-type head dims; the bool pattern is always written.
  int64_t full_dim = 0, swa_dim = 0;
  std::vector<bool> swa;
  for (int64_t i = 0; i < hp.n_layers; ++i) {
    const bool sliding = hp.layer_types[i] == LayerType::kSliding;
    swa.push_back(sliding);
    (sliding ? swa_dim : full_dim) = hp.head_dim[i];
  }
  if (swa_dim == 0) swa_dim = full_dim;
  w.Set(p + "attention.key_length", Value::U32(static_cast<uint32_t>(full_dim)));
  w.Set(p + "attention.value_length", Value::U32(static_cast<uint32_t>(full_dim)));
  w.Set(p + "attention.key_length_swa", Value::U32(static_cast<uint32_t>(swa_dim)));
  w.Set(p + "attention.value_length_swa", Value::U32(static_cast<uint32_t>(swa_dim)));
  w.Set(p + "rope.dimension_count", Value::U32(static_cast<uint32_t>(full_dim)));
  w.Set(p + "rope.dimension_count_swa", Value::U32(static_cast<uint32_t>(swa_dim)));
  w.Set(p + "attention.sliding_window", Value::U32(static_cast<uint32_t>(hp.sliding_window)));
  w.Set(p + "attention.sliding_window_pattern", Value::BoolArray(swa));
  w.Set(p + "attention.shared_kv_layers", Value::U32(static_cast<uint32_t>(hp.n_kv_shared_layers)));
  w.Set(p + "embedding_length_per_layer_input", Value::U32(static_cast<uint32_t>(hp.per_layer_input_size)));
  if (hp.n_experts > 0) {
    w.Set(p + "expert_count", Value::U32(static_cast<uint32_t>(hp.n_experts)));
    w.Set(p + "expert_used_count", Value::U32(static_cast<uint32_t>(hp.n_experts_used)));
    w.Set(p + "expert_feed_forward_length", Value::U32(static_cast<uint32_t>(hp.expert_ffn_size)));
  }
  if (hp.rope_full.partial_rotary_factor != 1.0) {
    // Proportional RoPE as llama.cpp emulates it: frequency divisors, 1 for rotated pairs and
    // 1e30 (frequency ~0, identity rotation) for the rest.
    const int64_t pairs = full_dim / 2;
    const auto rotated = static_cast<int64_t>(std::llround(hp.rope_full.partial_rotary_factor * full_dim / 2));
    std::vector<float> freqs(static_cast<size_t>(pairs), 1e30f);
    for (int64_t i = 0; i < rotated && i < pairs; ++i) freqs[i] = 1.0f;
    GL_RETURN_IF_ERROR(w.AddTensor("rope_freqs.weight", DType::kF32, {pairs}, F32Bytes(freqs)));
  }
  return Status::Ok();
}

}  // namespace gemma_local
