// A request's output never depends on what else is in the batch: two sequences forwarded together
// (interleaved, prompt chunks of different sizes) give bit-identical logits to each alone.
#include <gtest/gtest.h>

#include "common/test_support.h"
#include "runtime/runtime_test_support.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

ops::Backend& Cpu() {
  static ops::Backend* backend = testing::MakeCpuBackend(3).release();  // several threads exercise the parallel paths
  return *backend;
}

std::unique_ptr<Model> TinyModel(const testing::TempDir& dir, const std::string& preset) {
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape(preset);
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  EXPECT_TRUE(w.ok());
  Result<Checkpoint> ck = Checkpoint::Open(w->gguf_path);
  EXPECT_TRUE(ck.ok());
  Result<std::unique_ptr<Model>> m = LoadModel(std::make_shared<const Checkpoint>(std::move(*ck)), Cpu());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(*m);
}

std::vector<int32_t> Tokens(int n, int salt) {
  std::vector<int32_t> t = {2};
  for (int i = 1; i < n; ++i) t.push_back(300 + (i * 37 + salt * 11) % 200);
  return t;
}

// Reserve, forward, commit: what the engine does around every forward call.
Status ForwardStep(const Model& m, KvCache& cache, const Batch& b, std::vector<float>* logits,
                   ops::Backend& backend = Cpu(), ops::ForwardCounters* counters = nullptr) {
  GL_RETURN_IF_ERROR(cache.Reserve(b));
  GL_RETURN_IF_ERROR(m.Forward(b, cache, ops::ForwardContext{&backend, counters}, logits));
  cache.Commit(b);
  return Status::Ok();
}

// Logits of every position of `tokens` as sequence `seq`, fed in chunks of `chunk`.
std::vector<float> Alone(const Model& m, const std::vector<int32_t>& tokens, size_t chunk,
                         ops::Backend& backend = Cpu()) {
  KvCache cache(m.hparams());
  std::vector<float> all, logits;
  for (size_t s = 0; s < tokens.size(); s += chunk) {
    Batch b;
    for (size_t i = s; i < std::min(tokens.size(), s + chunk); ++i) b.push_back({0, static_cast<int64_t>(i), tokens[i], true});
    EXPECT_TRUE(ForwardStep(m, cache, b, &logits, backend).ok());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

TEST(Batching, InterleavedSequencesMatchRunningAlone) {
  testing::TempDir dir;
  std::unique_ptr<Model> m = TinyModel(dir, "tiny");
  const int64_t V = m->hparams().vocab_size;
  const std::vector<int32_t> a = Tokens(20, 1), b = Tokens(13, 2);
  const std::vector<float> a_alone = Alone(*m, a, 20), b_alone = Alone(*m, b, 5);
  EXPECT_EQ(Alone(*m, a, 3), a_alone) << "chunking changed the logits";

  KvCache cache(m->hparams());
  std::vector<float> a_mixed, b_mixed, logits;
  size_t ia = 0, ib = 0;
  for (int step = 0; ia < a.size() || ib < b.size(); ++step) {
    Batch batch;
    for (int n = 0; n < 1 + step % 3 && ib < b.size(); ++n, ++ib) batch.push_back({1, static_cast<int64_t>(ib), b[ib], true});
    for (int n = 0; n < 2 + step % 2 && ia < a.size(); ++n, ++ia) batch.push_back({0, static_cast<int64_t>(ia), a[ia], true});
    ASSERT_TRUE(ForwardStep(*m, cache, batch, &logits).ok());
    for (size_t r = 0; r < batch.size(); ++r) {
      std::vector<float>& dst = batch[r].seq == 0 ? a_mixed : b_mixed;
      dst.insert(dst.end(), logits.begin() + r * V, logits.begin() + (r + 1) * V);
    }
  }
  EXPECT_EQ(a_mixed, a_alone);
  EXPECT_EQ(b_mixed, b_alone);
}

TEST(Batching, BadBatchesAreRejected) {
  testing::TempDir dir;
  std::unique_ptr<Model> m = TinyModel(dir, "tiny");
  KvCache cache(m->hparams());
  std::vector<float> logits;
  EXPECT_EQ(ForwardStep(*m, cache, {{0, 0, 99999, true}}, &logits).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ForwardStep(*m, cache, {{0, 1, 5, true}}, &logits).code(), StatusCode::kInvalidArgument);  // gap
  EXPECT_TRUE(ForwardStep(*m, cache, {{0, 0, 2, true}, {0, 1, 300, true}}, &logits).ok());
  EXPECT_EQ(ForwardStep(*m, cache, {{0, 1, 5, true}}, &logits).code(), StatusCode::kInvalidArgument);  // repeat
  EXPECT_EQ(logits.size(), 0u);
  // Forward without a reservation is refused before anything is written.
  const ops::ForwardContext ctx{&Cpu()};
  EXPECT_EQ(m->Forward({{3, 0, 7, true}}, cache, ctx, &logits).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Length(3), 0);
}

// N sequences decoding together: one LM head product for the whole step, and the same logits as
// each sequence alone (which ran one product per step too).
TEST(Batching, DecodeOfNSequencesReadsTheLmHeadOnce) {
  testing::TempDir dir;
  std::unique_ptr<Model> m = TinyModel(dir, "tiny");
  const int64_t V = m->hparams().vocab_size;
  for (int n : {1, 4, 8}) {
    KvCache cache(m->hparams());
    std::vector<std::vector<int32_t>> seqs;
    std::vector<float> logits;
    for (int s = 0; s < n; ++s) {
      seqs.push_back(Tokens(6 + s, s));
      Batch prompt;
      for (size_t i = 0; i < seqs[s].size(); ++i) prompt.push_back({s, static_cast<int64_t>(i), seqs[s][i], false});
      ASSERT_TRUE(ForwardStep(*m, cache, prompt, &logits).ok());
      EXPECT_TRUE(logits.empty()) << "no row asked for logits";
    }
    Batch step;
    for (int s = 0; s < n; ++s) {
      seqs[s].push_back(400 + s);
      step.push_back({s, static_cast<int64_t>(seqs[s].size() - 1), seqs[s].back(), true});
    }
    ops::ForwardCounters counters;
    ASSERT_TRUE(ForwardStep(*m, cache, step, &logits, Cpu(), &counters).ok());
    EXPECT_EQ(counters.lm_head_passes, 1) << n << " sequences";
    EXPECT_EQ(counters.logit_rows, n);
    for (int s = 0; s < n; ++s) {
      const std::vector<float> alone = Alone(*m, seqs[s], seqs[s].size() - 1);
      const std::vector<float> last(alone.end() - V, alone.end());
      EXPECT_EQ(std::vector<float>(logits.begin() + s * V, logits.begin() + (s + 1) * V), last) << "sequence " << s;
    }
  }
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

TEST(Determinism, LogitsIdenticalAcrossThreadCounts) {
  testing::TempDir dir;
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape("4b-like");
  opt.dtype = DType::kBF16;
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  ASSERT_TRUE(w.ok());
  auto ck = std::make_shared<const Checkpoint>(std::move(*Checkpoint::Open(w->gguf_path)));
  std::vector<float> reference;
  for (int threads : {1, 2, 5}) {
    std::unique_ptr<ops::Backend> backend = testing::MakeCpuBackend(threads);
    Result<std::unique_ptr<Model>> m = LoadModel(ck, *backend);
    ASSERT_TRUE(m.ok());
    const std::vector<float> logits = Alone(**m, Tokens(70, 3), 16, *backend);
    if (reference.empty()) {
      reference = logits;
    } else {
      EXPECT_EQ(logits, reference) << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace gemma_local
