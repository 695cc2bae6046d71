// `gemma-local dev make-model`: writes deterministic random-weight test checkpoints (GGUF and/or
// Hugging Face layout) for tests and benchmarks. Developer tooling, not part of the engine API.
#include <cmath>
#include <cstdio>
#include <string>

#include "cli/commands.h"
// The one front-end file that sees internal types (HParams, DType, HfConfigLayout): they come with
// the test-model generator's interface, a developer tool (scripts/check_layers.py allows
// testgen/ here only).
#include "testgen/make_test_model.h"

namespace gemma_local::cli {

CommandRunner RegisterDev(CLI::App& app) {
  struct Options {
    std::string out;
    std::string preset = "tiny";
    std::string dtype = "f32";
    uint64_t seed = 1;
    int64_t vocab = 512;
    std::string tokenizer = "synthetic";
    std::string layout = "gguf,hf";
    std::string hf_wrapper = "causal-lm";
    uint64_t shard_bytes = 0;
    int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, window = -1, context = 0;
    double rope_scale = 0, query_scalar = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* dev = app.add_subcommand("dev", "Developer tools");
  dev->require_subcommand(1);
  CLI::App* mk = dev->add_subcommand("make-model", "Write a random-weight Gemma test model (GGUF + HF layouts)");
  mk->add_option("--out", o->out, "output directory (model.gguf and hf/ are written inside)")->required();
  mk->add_option("--preset", o->preset, "shape preset: tiny, 1b-like, 4b-like, 27b-like, all-global, g4-e2b-like, g4-e4b-like, "
                 "g4-31b-like, g4-26b-like, g4-e2b-10l, g4-26b-a4b-6l");
  mk->add_option("--dtype", o->dtype, "weight dtype: f32, f16, bf16");
  mk->add_option("--seed", o->seed, "random seed");
  mk->add_option("--vocab", o->vocab, "synthetic vocabulary size (>= 512)");
  mk->add_option("--tokenizer", o->tokenizer, "'synthetic' or 'gemma3:DIR' (tokenizer.json + tokenizer_config.json)");
  mk->add_option("--layout", o->layout, "comma list of layouts to write: gguf, hf");
  mk->add_option("--hf-wrapper", o->hf_wrapper, "config.json form: causal-lm or conditional-generation");
  mk->add_option("--shard-bytes", o->shard_bytes, "write HF weights as shards of at most N bytes");
  mk->add_option("--layers", o->layers, "override: number of layers");
  mk->add_option("--hidden", o->hidden, "override: hidden size");
  mk->add_option("--heads", o->heads, "override: attention heads");
  mk->add_option("--kv-heads", o->kv_heads, "override: KV heads");
  mk->add_option("--head-dim", o->head_dim, "override: head dim");
  mk->add_option("--ffn", o->ffn, "override: MLP intermediate size");
  mk->add_option("--window", o->window, "override: sliding window (0 = all layers global)");
  mk->add_option("--context", o->context, "override: context length");
  mk->add_option("--rope-scale", o->rope_scale, "override: linear RoPE factor on global layers");
  mk->add_option("--query-scalar", o->query_scalar, "override: query_pre_attn_scalar");
  return [o, mk]() {
    if (!mk->parsed()) return kExitUsage;
    Result<HParams> preset = testgen::PresetShape(o->preset);
    if (!preset.ok()) {
      std::fprintf(stderr, "error: %s\n", preset.status().ToString().c_str());
      return kExitUsage;
    }
    HParams hp = *preset;
    const size_t n_old = static_cast<size_t>(hp.n_layers);
    if (o->layers > 0) hp.n_layers = o->layers;
    if (o->hidden > 0) hp.hidden_size = o->hidden;
    if (o->heads > 0) hp.n_heads = o->heads;
    if (o->context > 0) hp.context_length = o->context;
    if (o->window >= 0) hp.sliding_window = o->window;
    if (o->rope_scale > 0) hp.rope_full.linear_factor = static_cast<float>(o->rope_scale);
    const size_t n = static_cast<size_t>(hp.n_layers);
    // Per-layer arrays keep the preset's values (Gemma 4's heterogeneous layers) unless an
    // override or a new layer count replaces them with one value for every layer.
    const bool relayer = n != n_old;
    if (relayer && hp.family == ModelFamily::kGemma4) {
      std::fprintf(stderr,
                   "error: --layers cannot change a Gemma 4 preset (its layer types, KV sharing and "
                   "per-layer shapes go together); presets g4-e2b-10l and g4-26b-a4b-6l have real "
                   "dimensions with fewer layers\n");
      return kExitUsage;
    }
    const int64_t head_dim = o->head_dim > 0 ? o->head_dim : hp.head_dim[0];
    if (relayer || o->head_dim > 0) hp.head_dim.assign(n, head_dim);
    if (relayer || o->kv_heads > 0) hp.n_kv_heads.assign(n, o->kv_heads > 0 ? o->kv_heads : hp.n_kv_heads[0]);
    if (relayer || o->ffn > 0) hp.ffn_size.assign(n, o->ffn > 0 ? o->ffn : hp.ffn_size[0]);
    if (relayer || o->kv_heads > 0 || o->head_dim > 0) hp.has_v_proj.assign(n, true);
    if (relayer || o->window >= 0) {
      hp.layer_types = hp.sliding_window > 0 ? PeriodicLayerTypes(hp.n_layers, 6)
                                             : std::vector<LayerType>(n, LayerType::kFull);
    }
    if (o->query_scalar > 0) {
      hp.attention_scale = static_cast<float>(1.0 / std::sqrt(o->query_scalar));
    } else if (o->head_dim > 0) {
      hp.attention_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
    }
    if (Status s = ComputeKvSources(hp, "make-model"); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
      return kExitUsage;
    }
    testgen::TestModelOptions opt;
    hp.vocab_size = o->vocab;
    opt.hparams = hp;
    std::optional<DType> dtype = DTypeFromName(o->dtype);
    if (!dtype || !IsPlainFloat(*dtype)) {
      std::fprintf(stderr, "error: --dtype must be f32, f16 or bf16, got '%s'\n", o->dtype.c_str());
      return kExitUsage;
    }
    opt.dtype = *dtype;
    opt.seed = o->seed;
    if (o->tokenizer.rfind("gemma3:", 0) == 0) {
      opt.tokenizer = testgen::TokenizerSource::kGemma3Files;
      opt.tokenizer_dir = o->tokenizer.substr(7);
    } else if (o->tokenizer != "synthetic") {
      std::fprintf(stderr, "error: --tokenizer must be 'synthetic' or 'gemma3:DIR'\n");
      return kExitUsage;
    }
    opt.write_gguf = o->layout.find("gguf") != std::string::npos;
    opt.write_hf = o->layout.find("hf") != std::string::npos;
    if (o->hf_wrapper == "conditional-generation") {
      opt.hf_layout = HfConfigLayout::kConditionalGeneration;
    } else if (o->hf_wrapper != "causal-lm") {
      std::fprintf(stderr, "error: --hf-wrapper must be causal-lm or conditional-generation\n");
      return kExitUsage;
    }
    opt.hf_shard_bytes = o->shard_bytes;
    Result<testgen::WrittenModel> written = testgen::WriteTestModel(opt, o->out);
    if (!written.ok()) {
      std::fprintf(stderr, "error: %s\n", written.status().ToString().c_str());
      return kExitError;
    }
    if (!written->gguf_path.empty()) std::printf("wrote %s\n", written->gguf_path.c_str());
    if (!written->hf_dir.empty()) std::printf("wrote %s/\n", written->hf_dir.c_str());
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
