#include "testgen/make_test_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/half.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/gguf_hparams.h"
#include "model/tensor_names.h"
#include "model/tensor_table.h"
#include "testgen/synthetic_tokenizer.h"

namespace gemma_local::testgen {
namespace {

namespace fs = std::filesystem;

// How a tensor's random values are drawn.
enum class Init {
  kEmbedding,    // uniform, std 0.5
  kMatrix,       // uniform, std 1/sqrt(fan_in) (fan_in = ne[0])
  kNormGemma3,   // stored w, zero-centred: uniform in [-0.2, 0.2] (the model uses 1 + w)
  kNormGemma4,   // used as is: uniform in [0.8, 1.2]
  kQkNormGemma4, // Gemma 4 q/k norms: uniform in [0.25, 0.45]. With attention scale 1 these carry
                 // the softmax temperature; gains near 1 make attention so sharp that float
                 // rounding differences between engines (e.g. llama.cpp's f16 GELU table) get
                 // amplified past any useful comparison tolerance.
  kPostNorm,     // branch output norms: gain 0.5*sqrt(hidden)*U[0.5, 1.5], so each layer's branches
                 // are as large as the embedding and the model does not just echo its input
  kLayerScalar,  // uniform in [0.5, 1.0]
  kPositive,     // uniform in [0.5, 1.5] (router scales)
};

struct TensorSpec {
  std::string name;  // canonical
  std::vector<int64_t> ne;
  Init init;
};

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Values depend only on (seed, name, element count): never on layout or dtype.
std::vector<float> DrawValues(const TensorSpec& spec, uint64_t seed, bool gemma3_norm) {
  uint64_t n = 1;
  for (int64_t d : spec.ne) n *= static_cast<uint64_t>(d);
  uint64_t state = seed * 0x2545F4914F6CDD1Dull ^ Fnv1a(spec.name);
  std::vector<float> v(n);
  auto uniform = [&](float lo, float hi) {
    const double u = static_cast<double>(SplitMix64(state) >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(lo + (hi - lo) * u);
  };
  const float sqrt3 = std::sqrt(3.0f);
  const float branch_gain = 0.5f * std::sqrt(static_cast<float>(spec.ne[0]));
  for (uint64_t i = 0; i < n; ++i) {
    switch (spec.init) {
      case Init::kEmbedding: v[i] = uniform(-0.5f * sqrt3, 0.5f * sqrt3); break;
      case Init::kMatrix: {
        const float a = sqrt3 / std::sqrt(static_cast<float>(spec.ne[0]));
        v[i] = uniform(-a, a);
        break;
      }
      case Init::kNormGemma3: v[i] = uniform(-0.2f, 0.2f); break;
      case Init::kNormGemma4: v[i] = uniform(0.8f, 1.2f); break;
      case Init::kQkNormGemma4: v[i] = uniform(0.25f, 0.45f); break;
      case Init::kPostNorm: v[i] = branch_gain * uniform(0.5f, 1.5f) - (gemma3_norm ? 1.0f : 0.0f); break;
      case Init::kLayerScalar: v[i] = uniform(0.5f, 1.0f); break;
      case Init::kPositive: v[i] = uniform(0.5f, 1.5f); break;
    }
  }
  return v;
}

std::vector<uint8_t> Encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out;
  if (dtype == DType::kF32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  out.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = dtype == DType::kF16 ? F32ToF16(v[i]) : F32ToBf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

// The values as the HF file stores them, decoded back to float.
std::vector<float> RoundTrip(const std::vector<float>& v, DType dtype) {
  if (dtype == DType::kF32) return v;
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = dtype == DType::kF16 ? F16ToF32(F32ToF16(v[i])) : Bf16ToF32(F32ToBf16(v[i]));
  }
  return out;
}

// What the generator writes: the table's required tensors plus Gemma 4's layer scalars. The
// optional LM head and unused shared-layer K/V are left out (the transformers-saved form);
// rope_freqs is written by WriteGgufHParams for GGUF only.
std::vector<TensorSpec> DecoderTensors(const HParams& hp) {
  const bool g4 = hp.family == ModelFamily::kGemma4;
  std::vector<TensorSpec> specs;
  for (const ExpectedTensor& e : ExpectedDecoderTensors(hp)) {
    const bool layer_scalar = e.role == TensorRole::kLayerScalar;
    if (!e.required && !(g4 && layer_scalar) && e.name.find("ffn_gate_up_exps") == std::string::npos) continue;
    Init init = Init::kMatrix;
    switch (e.role) {
      case TensorRole::kEmbedding: init = Init::kEmbedding; break;
      case TensorRole::kMatrix: init = Init::kMatrix; break;
      case TensorRole::kNorm: {
        const bool qk = e.name.find("attn_q_norm") != std::string::npos || e.name.find("attn_k_norm") != std::string::npos;
        init = !g4 ? Init::kNormGemma3 : qk ? Init::kQkNormGemma4 : Init::kNormGemma4;
        break;
      }
      case TensorRole::kPostNorm: init = Init::kPostNorm; break;
      case TensorRole::kLayerScalar: init = Init::kLayerScalar; break;
      case TensorRole::kScale: init = Init::kPositive; break;
    }
    specs.push_back({e.name, e.ne, init});
  }
  return specs;
}

bool IsNorm(const std::string& name) {
  const std::string suffix = "norm.weight";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status WriteTextFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return IoError(path.string() + ": cannot write");
  return Status::Ok();
}

}  // namespace

std::vector<std::string> PresetNames() {
  return {"tiny", "1b-like", "4b-like", "27b-like", "all-global", "g4-e2b-like", "g4-e4b-like", "g4-31b-like",
          "g4-26b-like", "g4-e2b-10l", "g4-26b-a4b-6l"};
}

namespace {

// Gemma 4 shapes keeping each variant's structure at toy size.
Result<HParams> Gemma4Preset(const std::string& name) {
  HParams hp;
  hp.family = ModelFamily::kGemma4;
  hp.context_length = 4096;
  hp.hidden_size = 64;
  hp.n_heads = 4;
  hp.sliding_window = 16;
  hp.attention_scale = 1.0f;
  hp.final_logit_softcap = 30.0f;
  hp.rope_full = RopeParams{1e6f, 1.0f, 0.25f};
  hp.rope_sliding = RopeParams{1e4f, 1.0f, 1.0f};
  int64_t kv = 1, kv_full = 1, ffn = 128, head_dim = 32, head_dim_full = 64;
  bool k_eq_v = false, double_wide = false;
  if (name == "g4-e2b-10l") {
    // Gemma 4 E2B's dimensions with 10 of its 35 layers (two periods; the last 5 KV-shared like
    // E2B's last 20, double-wide MLP there, PLE): for benchmarks.
    hp.n_layers = 10, hp.hidden_size = 1536, hp.n_heads = 8, hp.sliding_window = 512;
    hp.layer_types = PeriodicLayerTypes(10, 5);
    hp.n_kv_shared_layers = 5;
    hp.per_layer_input_size = 256;
    double_wide = true;
    ffn = 6144, head_dim = 256, head_dim_full = 512;
  } else if (name == "g4-26b-a4b-6l") {
    // Gemma 4 26B-A4B's dimensions with 6 of its 30 layers (one period: 5 sliding, 1 full with
    // K=V), all 128 experts, top-8: for benchmarks.
    hp.n_layers = 6, hp.hidden_size = 2816, hp.n_heads = 16, hp.sliding_window = 1024;
    hp.layer_types = PeriodicLayerTypes(6, 6);
    kv = 8, kv_full = 2, k_eq_v = true, ffn = 2112, head_dim = 256, head_dim_full = 512;
    hp.n_experts = 128, hp.n_experts_used = 8, hp.expert_ffn_size = 704;
  } else if (name == "g4-e2b-like") {
    // Period 5 like E2B, the last 5 layers KV-shared (donors: layer 3 sliding, 4 full), PLE,
    // double-wide MLP on shared layers.
    hp.n_layers = 10;
    hp.layer_types = PeriodicLayerTypes(10, 5);
    hp.n_kv_shared_layers = 5;
    hp.per_layer_input_size = 16;
    double_wide = true;
  } else if (name == "g4-e4b-like") {
    // Period 6 like E4B, sharing starting right after a full layer as in E4B (18 of 42 shared,
    // donors 22 sliding and 23 full -> 6 of 12, donors 4 and 5), 2 KV heads on both layer types,
    // PLE, no double-wide MLP.
    hp.n_layers = 12;
    hp.layer_types = PeriodicLayerTypes(12, 6);
    hp.n_kv_shared_layers = 6;
    hp.per_layer_input_size = 16;
    kv = 2, kv_full = 2;
  } else if (name == "g4-31b-like") {
    hp.n_layers = 6;
    hp.layer_types = PeriodicLayerTypes(6, 6);
    kv = 2, kv_full = 1, k_eq_v = true;
  } else if (name == "g4-26b-like") {
    hp.n_layers = 6;
    hp.layer_types = PeriodicLayerTypes(6, 6);
    kv = 2, kv_full = 1, k_eq_v = true, ffn = 64;
    hp.n_experts = 8, hp.n_experts_used = 2, hp.expert_ffn_size = 32;
  } else {
    return InvalidArgumentError("unknown preset '" + name + "' (" + [] {
      std::string all;
      for (const std::string& n : PresetNames()) all += (all.empty() ? "" : ", ") + n;
      return all;
    }() + ")");
  }
  const size_t n = static_cast<size_t>(hp.n_layers);
  const int64_t first_shared = hp.n_layers - hp.n_kv_shared_layers;
  for (size_t i = 0; i < n; ++i) {
    const bool full = hp.layer_types[i] == LayerType::kFull;
    hp.head_dim.push_back(full ? head_dim_full : head_dim);
    hp.n_kv_heads.push_back(full && k_eq_v ? kv_full : kv);
    hp.has_v_proj.push_back(!(full && k_eq_v));
    const bool shared = hp.n_kv_shared_layers > 0 && static_cast<int64_t>(i) >= first_shared;
    hp.ffn_size.push_back(double_wide && shared ? 2 * ffn : ffn);
  }
  GL_RETURN_IF_ERROR(ComputeKvSources(hp, "preset " + name));
  return hp;
}

}  // namespace

Result<HParams> PresetShape(const std::string& name) {
  if (name.rfind("g4-", 0) == 0) return Gemma4Preset(name);
  HParams hp;
  hp.family = ModelFamily::kGemma3;
  hp.context_length = 4096;
  hp.rope_full = RopeParams{1e6f, 1.0f, 1.0f};
  hp.rope_sliding = RopeParams{1e4f, 1.0f, 1.0f};
  int64_t head_dim = 32, n_kv = 1, ffn = 128, pattern = 6;
  double qpas = 0;
  if (name == "tiny") {
    hp.n_layers = 2, hp.hidden_size = 64, hp.n_heads = 2, hp.sliding_window = 8, pattern = 2;
  } else if (name == "1b-like") {
    hp.n_layers = 6, hp.hidden_size = 64, hp.n_heads = 4, head_dim = 256, n_kv = 1, hp.sliding_window = 512;
  } else if (name == "4b-like") {
    hp.n_layers = 6, hp.hidden_size = 128, hp.n_heads = 8, head_dim = 32, n_kv = 4, hp.sliding_window = 64;
    hp.rope_full.linear_factor = 8.0f;
  } else if (name == "27b-like") {
    hp.n_layers = 62, hp.hidden_size = 168 * 2, hp.n_heads = 2, head_dim = 128, n_kv = 1, ffn = 64;
    hp.sliding_window = 32;
    qpas = 168;
  } else if (name == "all-global") {
    hp.n_layers = 3, hp.hidden_size = 64, hp.n_heads = 4, head_dim = 16, n_kv = 2, hp.sliding_window = 0;
  } else {
    return Gemma4Preset(name);  // reports the unknown name with the full list
  }
  hp.layer_types = hp.sliding_window > 0 ? PeriodicLayerTypes(hp.n_layers, pattern)
                                         : std::vector<LayerType>(hp.n_layers, LayerType::kFull);
  const size_t n = static_cast<size_t>(hp.n_layers);
  hp.head_dim.assign(n, head_dim);
  hp.n_kv_heads.assign(n, n_kv);
  hp.ffn_size.assign(n, ffn);
  hp.has_v_proj.assign(n, true);
  hp.attention_scale = static_cast<float>(1.0 / std::sqrt(qpas > 0 ? qpas : static_cast<double>(head_dim)));
  GL_RETURN_IF_ERROR(ComputeKvSources(hp, "preset " + name));
  return hp;
}

Result<WrittenModel> WriteTestModel(const TestModelOptions& options, const std::string& out_dir) {
  if (!IsPlainFloat(options.dtype)) {
    return InvalidArgumentError(std::string("test models are written in f32, f16 or bf16, not ") + DTypeName(options.dtype));
  }
  TokenizerData tok;
  if (options.tokenizer == TokenizerSource::kSynthetic) {
    GL_ASSIGN_OR_RETURN(tok, MakeSyntheticTokenizer(options.hparams.vocab_size > 0 ? options.hparams.vocab_size : 512,
                                                  options.hparams.family == ModelFamily::kGemma4));
  } else {
    GL_ASSIGN_OR_RETURN(tok, LoadGemma3Tokenizer(options.tokenizer_dir));
  }
  HParams hp = options.hparams;
  hp.vocab_size = static_cast<int64_t>(tok.pieces.size());
  if (hp.per_layer_input_size > 0) hp.per_layer_vocab_size = hp.vocab_size;
  GL_RETURN_IF_ERROR(hp.Validate("test model options"));

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return IoError(out_dir + ": cannot create directory: " + ec.message());
  const bool g3 = hp.family == ModelFamily::kGemma3;
  const std::vector<TensorSpec> specs = DecoderTensors(hp);
  WrittenModel written;

  if (options.write_gguf) {
    gguf::GgufWriter w;
    GL_RETURN_IF_ERROR(WriteGgufHParams(hp, w));
    w.Set("general.name", gguf::Value::String("gemma-local random test model"));
    WriteGgufTokenizer(tok, w);
    for (const TensorSpec& spec : specs) {
      std::vector<float> v = RoundTrip(DrawValues(spec, options.seed, g3), options.dtype);
      if (spec.ne.size() == 1) {
        // llama.cpp's converter: 1-D tensors in f32, Gemma 3 norms with the +1 folded in.
        if (g3 && IsNorm(spec.name)) {
          for (float& x : v) x += 1.0f;
        }
        GL_RETURN_IF_ERROR(w.AddTensor(spec.name, DType::kF32, spec.ne, Encode(v, DType::kF32)));
      } else {
        GL_RETURN_IF_ERROR(w.AddTensor(spec.name, options.dtype, spec.ne, Encode(v, options.dtype)));
      }
    }
    written.gguf_path = (fs::path(out_dir) / "model.gguf").string();
    GL_RETURN_IF_ERROR(w.WriteFile(written.gguf_path));
  }

  if (options.write_hf) {
    const fs::path dir = fs::path(out_dir) / "hf";
    fs::create_directories(dir, ec);
    if (ec) return IoError(dir.string() + ": cannot create directory: " + ec.message());
    const bool wrapped = !g3 || options.hf_layout == HfConfigLayout::kConditionalGeneration;
    const std::string prefix = wrapped ? "model.language_model." : "model.";
    safetensors::SafetensorsWriter sw;
    sw.SetMetadata("format", "pt");
    for (const TensorSpec& spec : specs) {
      std::optional<std::string> hf_name = HfNameFromCanonical(spec.name, prefix);
      if (!hf_name) return InternalError("no HF name for tensor " + spec.name);
      std::vector<int64_t> shape(spec.ne.rbegin(), spec.ne.rend());
      GL_RETURN_IF_ERROR(sw.AddTensor(*hf_name, options.dtype, std::move(shape),
                                      Encode(DrawValues(spec, options.seed, g3), options.dtype)));
    }
    if (options.hf_shard_bytes > 0) {
      GL_RETURN_IF_ERROR(sw.WriteSharded(dir.string(), options.hf_shard_bytes));
    } else {
      GL_RETURN_IF_ERROR(sw.WriteFile((dir / "model.safetensors").string()));
    }
    nlohmann::json config = ConfigJsonFromHParams(hp, options.hf_layout);
    const char* torch_dtype = options.dtype == DType::kF32 ? "float32" : options.dtype == DType::kF16 ? "float16" : "bfloat16";
    config["torch_dtype"] = torch_dtype;
    GL_RETURN_IF_ERROR(WriteTextFile(dir / "config.json", config.dump(2) + "\n"));
    nlohmann::json gen = {{"bos_token_id", 2}, {"eos_token_id", nlohmann::json::array({1, 106})},
                          {"pad_token_id", 0}};
    GL_RETURN_IF_ERROR(WriteTextFile(dir / "generation_config.json", gen.dump(2) + "\n"));
    GL_RETURN_IF_ERROR(WriteTextFile(dir / "tokenizer.json", tok.hf_tokenizer_json.dump()));
    GL_RETURN_IF_ERROR(WriteTextFile(dir / "tokenizer_config.json", tok.hf_tokenizer_config.dump(2) + "\n"));
    written.hf_dir = dir.string();
  }
  return written;
}

}  // namespace gemma_local::testgen
