// Batch invariance: a sequence's logits never depend on what else runs beside it. For every weight
// path (f32, q8_0, q4_0, q4_K mixes), KV cache type (f16, the default; f32 and q8_0 on some cases)
// and model structure (Gemma 3; Gemma 4 with KV sharing and per-layer embeddings; Gemma 4 MoE),
// each row of logits must be bit-identical whether the sequence
// runs alone, in prompt chunks of any size, interleaved in one forward batch with other sequences'
// decode steps and prompt chunks (in any entry order), with or without a reused workspace, and on
// any thread count. The engine batches requests together, so anything less would make a reply
// depend on the load of the server.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <random>

#include "common/test_support.h"
#include "runtime/runtime_test_support.h"
#include "model/model.h"
#include "model/quantize.h"
#include "runtime/kv_cache.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

// Backends of 1, 2 and 3 threads, shared by every test (thread pools are costly to start).
ops::Backend& Cpu(int threads) {
  static ops::Backend* backends[3] = {testing::MakeCpuBackend(1).release(), testing::MakeCpuBackend(2).release(),
                                      testing::MakeCpuBackend(3).release()};
  return *backends[threads - 1];
}

// The preset's structure at widths that reach every kernel path. Quantized models keep every
// matrix row a multiple of 256, so the K-quant mix really runs q4_K / q6_K (narrower rows fall
// back to q5_0 / q8_0) and the packed 8-row kernels. f32 models use an MLP width of 260, not a
// multiple of the SIMD vector, so the element-wise kernels meet partial vectors whose place moves
// with the number of tokens in the call. Few layers keep a test case at about a second.
HParams Shape(const std::string& preset, bool quantized) {
  HParams hp = *testgen::PresetShape(preset);
  const int64_t ffn = quantized ? 256 : 260;
  hp.hidden_size = 256;
  hp.n_heads = 4;
  if (hp.family == ModelFamily::kGemma3) {
    // "tiny": 2 layers (sliding window 8, then full), 4 query heads on 1 KV head. A vocabulary
    // that is not a multiple of 8 sends the LM head through the unpacked kernels.
    hp.vocab_size = 521;
    hp.head_dim.assign(2, 64);
    hp.ffn_size.assign(2, ffn);
    hp.attention_scale = 1.0f / 8.0f;
    return hp;
  }
  // Gemma 4: the per-layer settings of the preset's first sliding and first full layer.
  const auto first = [&](LayerType t) {
    return std::find(hp.layer_types.begin(), hp.layer_types.end(), t) - hp.layer_types.begin();
  };
  const int64_t sliding = first(LayerType::kSliding), full = first(LayerType::kFull);
  const bool kv_sharing = hp.n_kv_shared_layers > 0;
  // g4-e2b-like: sliding, full, then both again reading the first two's KV cache (double-wide
  // MLP there, as E2B). MoE: one sliding and one full (K=V) layer, 4 experts, top 2 (fewer
  // experts than the preset's 8: quantizing them to q4_K is the slowest part of the test).
  const std::vector<LayerType> types =
      kv_sharing ? std::vector<LayerType>{LayerType::kSliding, LayerType::kFull,
                                          LayerType::kSliding, LayerType::kFull}
                 : std::vector<LayerType>{LayerType::kSliding, LayerType::kFull};
  std::vector<int64_t> kv_heads;
  std::vector<bool> has_v;
  hp.head_dim.clear();
  hp.ffn_size.clear();
  for (size_t l = 0; l < types.size(); ++l) {
    const int64_t src = types[l] == LayerType::kFull ? full : sliding;
    kv_heads.push_back(hp.n_kv_heads[src]);
    has_v.push_back(hp.has_v_proj[src]);
    hp.head_dim.push_back(types[l] == LayerType::kFull ? 128 : 64);
    hp.ffn_size.push_back(kv_sharing && l >= 2 ? 2 * ffn : ffn);
  }
  hp.n_layers = static_cast<int64_t>(types.size());
  hp.layer_types = types;
  hp.n_kv_heads = kv_heads;
  hp.has_v_proj = has_v;
  if (kv_sharing) hp.n_kv_shared_layers = 2;
  if (hp.per_layer_input_size > 0) hp.per_layer_input_size = 32;
  if (hp.n_experts > 0) hp.n_experts = 4, hp.expert_ffn_size = ffn;
  EXPECT_TRUE(ComputeKvSources(hp, "test shape " + preset).ok());
  return hp;
}

struct ModelCase {
  std::string preset;
  std::optional<QuantMix> mix;  // none: f32 weights as written
  KvType kv = KvType::kF16;     // the KV cache's storage type
};

void PrintTo(const ModelCase& c, std::ostream* os) {
  *os << c.preset << " " << (c.mix ? QuantMixName(*c.mix) : "f32") << " KV " << KvTypeName(c.kv);
}

std::string CaseName(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string name =
      info.param.preset + "_" + (info.param.mix ? QuantMixName(*info.param.mix) : "f32");
  if (info.param.kv != KvType::kF16) name += std::string("_kv_") + KvTypeName(info.param.kv);
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

std::unique_ptr<Model> LoadCase(const testing::TempDir& dir, const ModelCase& c) {
  testgen::TestModelOptions opt;
  opt.hparams = Shape(c.preset, c.mix.has_value());
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return nullptr;
  Result<Checkpoint> ck = Checkpoint::Open(w->gguf_path);
  EXPECT_TRUE(ck.ok()) << ck.status().ToString();
  if (!ck.ok()) return nullptr;
  if (c.mix) {
    EXPECT_TRUE(QuantizeCheckpointInMemory(*ck, *c.mix, 2).ok());
    // The widths above must keep the mix's own block types (no fallback to another type).
    const DType want = *c.mix == QuantMix::kQ8_0   ? DType::kQ8_0
                       : *c.mix == QuantMix::kQ4_0 ? DType::kQ4_0
                                                   : DType::kQ4_K;
    EXPECT_EQ(ck->FindTensor("blk.0.attn_q.weight")->dtype, want);
    EXPECT_EQ(ck->FindTensor("token_embd.weight")->dtype,
              want == DType::kQ8_0 ? DType::kQ8_0 : DType::kQ6_K);
  }
  Result<std::unique_ptr<Model>> m =
      LoadModel(std::make_shared<const Checkpoint>(std::move(*ck)), Cpu(3));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<int32_t> Tokens(int n, int salt) {
  std::vector<int32_t> t = {2};
  for (int i = 1; i < n; ++i) t.push_back(300 + (i * 37 + salt * 11) % 200);
  return t;
}

// How a forward call is made: the backend's thread count and whether a workspace is reused
// across calls (as the engine's ForwardOn does) or each call makes a fresh one.
struct Runner {
  const Model& model;
  ops::Backend* backend;
  ops::Workspace* workspace;  // may be null
  KvType kv;                  // the caches' storage type

  KvCacheOptions CacheOptions() const {
    KvCacheOptions o;
    o.type = kv;
    return o;
  }

  // Reserve, forward, commit: what the engine does around every forward call.
  void Step(KvCache& cache, const Batch& b, std::vector<float>* logits) const {
    ASSERT_TRUE(cache.Reserve(b).ok());
    const ops::ForwardContext ctx{backend, nullptr, nullptr, workspace};
    const Status s = model.Forward(b, cache, ctx, logits);
    ASSERT_TRUE(s.ok()) << s.ToString();
    cache.Commit(b);
  }
};

// Logits of every position of `tokens` as sequence `seq` alone, fed in chunks of `chunk`.
std::vector<float> Alone(const Runner& run, const std::vector<int32_t>& tokens, size_t chunk,
                         int32_t seq = 0) {
  KvCache cache(run.model.hparams(), run.CacheOptions());
  std::vector<float> all, logits;
  for (size_t s = 0; s < tokens.size(); s += chunk) {
    Batch b;
    for (size_t i = s; i < std::min(tokens.size(), s + chunk); ++i) {
      b.push_back({seq, static_cast<int64_t>(i), tokens[i], true});
    }
    run.Step(cache, b, &logits);
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// Bit-for-bit equality of `got` and `want` (rows of `width`), reported as the first row and
// logit that differ rather than two dumps of thousands of floats.
void ExpectBitIdentical(const std::vector<float>& got, const std::vector<float>& want,
                        int64_t width, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0) return;
  int64_t bad_rows = 0, first = -1;
  for (int64_t r = 0; r < static_cast<int64_t>(got.size()) / width; ++r) {
    if (std::memcmp(&got[r * width], &want[r * width], width * sizeof(float)) != 0) {
      ++bad_rows;
      if (first < 0) first = r;
    }
  }
  int64_t i = first * width;
  while (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) ++i;
  ADD_FAILURE() << what << ": " << bad_rows << " of " << got.size() / width
                << " rows differ; first row " << first << ", logit " << i - first * width << ": "
                << got[i] << " vs " << want[i] << " alone";
}

// One model per case and the logits every sequence gets alone: all its tokens in one call, 1
// thread, a fresh workspace. One test per model covers (a), (b) and (c): writing and quantizing
// the model costs more than the checks, and ctest runs each test in a process of its own.
class BatchInvariance : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    model_ = LoadCase(dir_, GetParam());
    ASSERT_NE(model_, nullptr);
    // The cache would fall back to f16 for a type the shape cannot store.
    ASSERT_TRUE(KvCache::Validate(model_->hparams(), GetParam().kv).ok());
    V_ = model_->hparams().vocab_size;
    // 23 tokens: longer than every sliding window. The others have 6..20.
    prompts_.push_back(Tokens(23, 1));
    for (int o = 0; o < 5; ++o) prompts_.push_back(Tokens(6 + 7 * o % 15, 10 + o));
    for (const std::vector<int32_t>& p : prompts_) {
      alone_.push_back(Alone(Runner{*model_, &Cpu(1), nullptr, GetParam().kv}, p, p.size()));
    }
    for (float v : alone_[0]) ASSERT_TRUE(std::isfinite(v));
  }
  const std::vector<int32_t>& prompt() const { return prompts_[0]; }
  const std::vector<float>& reference() const { return alone_[0]; }

  void CheckPromptChunks() const;
  void CheckThreadCounts() const;
  void CheckOtherSequencesInTheBatch() const;

  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
  int64_t V_ = 0;
  std::vector<std::vector<int32_t>> prompts_;  // [0]: the prompt under test; then the others
  std::vector<std::vector<float>> alone_;      // per prompt, every position's logits
};

TEST_P(BatchInvariance, LogitsOfASequenceDoNotDependOnTheBatch) {
  CheckPromptChunks();
  CheckThreadCounts();
  CheckOtherSequencesInTheBatch();
}

// (a) Prompt chunks of 1, 3, 7 and all at once (the decode-sized calls and the tiled prefill
// calls of every kernel), with a fresh workspace per call and with one reused across calls.
void BatchInvariance::CheckPromptChunks() const {
  for (bool reuse : {false, true}) {
    ops::Workspace ws;
    for (size_t chunk : {size_t{1}, size_t{3}, size_t{7}, prompt().size()}) {
      const Runner run{*model_, &Cpu(3), reuse ? &ws : nullptr, GetParam().kv};
      ExpectBitIdentical(Alone(run, prompt(), chunk, 5), reference(), V_,
                         "chunk " + std::to_string(chunk) + (reuse ? ", reused workspace" : ""));
    }
  }
}

// (c) 2 and 3 threads against the 1-thread reference, on decode-sized and prefill-sized calls: the
// parallel split of every op changes with both.
void BatchInvariance::CheckThreadCounts() const {
  for (int threads : {2, 3}) {
    ops::Workspace ws;
    for (size_t chunk : {size_t{1}, size_t{4}, prompt().size()}) {
      ExpectBitIdentical(Alone(Runner{*model_, &Cpu(threads), &ws, GetParam().kv}, prompt(), chunk),
                         reference(), V_,
                         std::to_string(threads) + " threads, chunk " + std::to_string(chunk));
    }
  }
}

// (b) The prompt interleaved in one batch with 1..5 other sequences at other positions: their
// decode-sized steps and prompt chunks share each forward call, the entries in several orders
// (the prompt's first, last, or every sequence's interleaved entry by entry), some rows without
// logits. Every row that has logits (the other sequences' too) must equal its sequence alone.
void BatchInvariance::CheckOtherSequencesInTheBatch() const {
  struct Scenario {
    int n_others;
    int order;  // 0: the prompt's entries first, 1: last, 2: all interleaved
    int threads;
  };
  std::mt19937 rng(17);
  for (const Scenario& sc : {Scenario{1, 0, 3}, Scenario{2, 2, 2}, Scenario{3, 1, 3},
                             Scenario{4, 2, 1}, Scenario{5, 0, 2}, Scenario{5, 2, 3}}) {
    ops::Workspace ws;
    const Runner run{*model_, &Cpu(sc.threads), &ws, GetParam().kv};
    const int n_seqs = 1 + sc.n_others;
    // Sequence s has id 7 + 3s; next[s] is its first token not yet forwarded.
    std::vector<size_t> next(static_cast<size_t>(n_seqs), 0);
    const auto remaining = [&] {
      for (int s = 0; s < n_seqs; ++s) {
        if (next[s] < prompts_[s].size()) return true;
      }
      return false;
    };
    KvCache cache(model_->hparams(), run.CacheOptions());
    std::vector<float> logits;
    for (int step = 0; remaining(); ++step) {
      // Per sequence, this step's entries: one token (a decode step), a chunk of 2..7, or (not the
      // prompt) nothing. Others start at step 0, 1 or 2 and the prompt at step 1, so positions
      // differ.
      std::vector<std::vector<BatchEntry>> parts(static_cast<size_t>(n_seqs));
      for (int s = 0; s < n_seqs; ++s) {
        if (step < (s == 0 ? 1 : 2 * s % 3)) continue;
        const int kind = static_cast<int>(rng() % 4);  // 0: idle, 1: one token, else a chunk
        if (kind == 0 && s != 0) continue;
        const size_t n = kind == 1 ? 1 : 2 + rng() % 6;
        const std::vector<int32_t>& tokens = prompts_[s];
        for (size_t i = 0; i < n && next[s] < tokens.size(); ++i, ++next[s]) {
          const bool want = s == 0 || rng() % 3 != 0;
          parts[s].push_back({7 + 3 * s, static_cast<int64_t>(next[s]), tokens[next[s]], want});
        }
      }
      Batch batch;
      if (sc.order == 2) {
        // Entry by entry from random sequences, each sequence's positions still increasing.
        std::vector<size_t> at(parts.size(), 0);
        for (;;) {
          std::vector<size_t> open;
          for (size_t s = 0; s < parts.size(); ++s) {
            if (at[s] < parts[s].size()) open.push_back(s);
          }
          if (open.empty()) break;
          const size_t s = open[rng() % open.size()];
          batch.push_back(parts[s][at[s]++]);
        }
      } else {
        if (sc.order == 0) batch = parts[0];
        for (size_t s = 1; s < parts.size(); ++s)
          batch.insert(batch.end(), parts[s].begin(), parts[s].end());
        if (sc.order == 1) batch.insert(batch.end(), parts[0].begin(), parts[0].end());
      }
      if (batch.empty()) continue;
      run.Step(cache, batch, &logits);
      if (HasFatalFailure()) return;
      int64_t row = 0;
      for (const BatchEntry& e : batch) {
        if (!e.want_logits) continue;
        const std::vector<float>& alone = alone_[(e.seq - 7) / 3];
        ExpectBitIdentical(
            std::vector<float>(logits.begin() + row * V_, logits.begin() + (row + 1) * V_),
            std::vector<float>(alone.begin() + e.pos * V_, alone.begin() + (e.pos + 1) * V_), V_,
            std::to_string(sc.n_others) + " others, order " + std::to_string(sc.order) + ", " +
                std::to_string(sc.threads) + " threads, step " + std::to_string(step) +
                ": sequence " + std::to_string(e.seq) + " position " + std::to_string(e.pos) +
                " in a batch of " + std::to_string(batch.size()));
        ++row;
      }
      ASSERT_EQ(row * V_, static_cast<int64_t>(logits.size()));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, BatchInvariance,
    ::testing::Values(
        ModelCase{"tiny", std::nullopt}, ModelCase{"tiny", QuantMix::kQ8_0},
        ModelCase{"tiny", QuantMix::kQ4_0}, ModelCase{"tiny", QuantMix::kQ4_K_M},
        ModelCase{"g4-e2b-like", std::nullopt}, ModelCase{"g4-e2b-like", QuantMix::kQ8_0},
        ModelCase{"g4-e2b-like", QuantMix::kQ4_0}, ModelCase{"g4-e2b-like", QuantMix::kQ4_K_M},
        ModelCase{"g4-26b-like", std::nullopt}, ModelCase{"g4-26b-like", QuantMix::kQ8_0},
        ModelCase{"g4-26b-like", QuantMix::kQ4_0}, ModelCase{"g4-26b-like", QuantMix::kQ4_K_M},
        // The other KV types: rows read as f32 or dequantized per q8_0 block inside attention.
        ModelCase{"tiny", std::nullopt, KvType::kF32},
        ModelCase{"tiny", std::nullopt, KvType::kQ8_0},
        ModelCase{"g4-e2b-like", QuantMix::kQ4_0, KvType::kQ8_0}),
    CaseName);

}  // namespace
}  // namespace gemma_local
