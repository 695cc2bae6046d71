// The generator's two layouts describe the same model: same HParams, same inspect numbers, same
// weights (up to llama.cpp's converter transforms), for every preset shape.
#include "model/checkpoint.h"

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_support.h"
#include "gemma_local/model_info.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

using testing::TempDir;

testgen::WrittenModel Make(const TempDir& dir, const std::string& preset, DType dtype,
                           HfConfigLayout layout = HfConfigLayout::kCausalLm, uint64_t shard_bytes = 0) {
  testgen::TestModelOptions opt;
  Result<HParams> hp = testgen::PresetShape(preset);
  EXPECT_TRUE(hp.ok()) << hp.status().ToString();
  opt.hparams = *hp;
  opt.dtype = dtype;
  opt.seed = 7;
  opt.hf_layout = layout;
  opt.hf_shard_bytes = shard_bytes;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return *w;
}

float ReadF32(const WeightTensor& t, uint64_t i) {
  float v;
  std::memcpy(&v, t.data + 4 * i, 4);
  return v;
}

nlohmann::json ComparableInfo(const std::string& path) {
  Result<ModelInfo> info = InspectModel(path);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  nlohmann::json j = nlohmann::json::parse(info->ToJson());
  for (const char* k : {"path", "format", "file_bytes", "tensor_types"}) j.erase(k);
  j["memory"].erase("weights_as_stored");
  return j;
}

void ExpectSameModel(const testgen::WrittenModel& w, bool gemma3) {
  Result<Checkpoint> g = Checkpoint::Open(w.gguf_path);
  Result<Checkpoint> h = Checkpoint::Open(w.hf_dir);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(g->hparams(), h->hparams());
  EXPECT_EQ(ComparableInfo(w.gguf_path), ComparableInfo(w.hf_dir));
  EXPECT_TRUE(g->norm_weights_include_unit_offset() == gemma3);
  EXPECT_FALSE(h->norm_weights_include_unit_offset());
  // Every HF tensor exists in the GGUF with the same dims; matrices are byte-identical.
  for (const WeightTensor& ht : h->tensors()) {
    const WeightTensor* gt = g->FindTensor(ht.name);
    ASSERT_NE(gt, nullptr) << ht.name;
    EXPECT_EQ(gt->ne, ht.ne) << ht.name;
    if (ht.ne.size() >= 2) {
      ASSERT_EQ(gt->n_bytes, ht.n_bytes) << ht.name;
      EXPECT_EQ(std::memcmp(gt->data, ht.data, ht.n_bytes), 0) << ht.name;
    } else if (ht.dtype == DType::kF32) {
      const bool plus_one = gemma3 && ht.name.find("norm.weight") != std::string::npos;
      for (uint64_t i = 0; i < ht.n_elements(); ++i) {
        EXPECT_EQ(ReadF32(*gt, i), ReadF32(ht, i) + (plus_one ? 1.0f : 0.0f)) << ht.name << "[" << i << "]";
      }
    }
  }
}

class PresetTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetTest, BothLayoutsDescribeTheSameModel) {
  TempDir dir;
  testgen::WrittenModel w = Make(dir, GetParam(), DType::kF32);
  ExpectSameModel(w, GetParam().rfind("g4-", 0) != 0);
}

INSTANTIATE_TEST_SUITE_P(Generator, PresetTest,
                         ::testing::Values("tiny", "1b-like", "4b-like", "27b-like", "all-global",
                                           "g4-e2b-like", "g4-e4b-like", "g4-31b-like", "g4-26b-like"));

TEST(Generator, HalfPrecisionLayoutsAgree) {
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    TempDir dir;
    testgen::WrittenModel w = Make(dir, "tiny", dtype);
    Result<Checkpoint> g = Checkpoint::Open(w.gguf_path);
    Result<Checkpoint> h = Checkpoint::Open(w.hf_dir);
    ASSERT_TRUE(g.ok() && h.ok());
    EXPECT_EQ(g->hparams(), h->hparams());
    EXPECT_EQ(g->FindTensor("blk.0.attn_q.weight")->dtype, dtype);
    EXPECT_EQ(g->FindTensor("blk.0.attn_norm.weight")->dtype, DType::kF32);  // converter keeps 1-D in f32
    EXPECT_EQ(h->FindTensor("blk.0.attn_norm.weight")->dtype, dtype);
    EXPECT_EQ(ComparableInfo(w.gguf_path), ComparableInfo(w.hf_dir));
  }
}

TEST(Generator, DeterministicPerSeed) {
  TempDir a, b;
  testgen::WrittenModel wa = Make(a, "tiny", DType::kF32);
  testgen::WrittenModel wb = Make(b, "tiny", DType::kF32);
  EXPECT_EQ(testing::ReadFile(wa.gguf_path), testing::ReadFile(wb.gguf_path));
  EXPECT_EQ(testing::ReadFile(wa.hf_dir + "/model.safetensors"), testing::ReadFile(wb.hf_dir + "/model.safetensors"));
}

TEST(Generator, ShardedAndWrappedHfLayouts) {
  TempDir dir;
  testgen::WrittenModel w = Make(dir, "4b-like", DType::kF32, HfConfigLayout::kConditionalGeneration, 200000);
  EXPECT_TRUE(std::filesystem::exists(w.hf_dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(w.hf_dir + "/model.safetensors"));
  Result<Checkpoint> h = Checkpoint::Open(w.hf_dir);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_NE(h->FindTensor("blk.5.ffn_down.weight")->file_name.find("model.language_model.layers.5"), std::string::npos);
  ExpectSameModel(w, true);
}

TEST(Generator, InspectNumbersForTinyModel) {
  TempDir dir;
  testgen::WrittenModel w = Make(dir, "tiny", DType::kF32);
  Result<ModelInfo> info = InspectModel(w.gguf_path);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  // tiny: H 64, 2 layers, 2 heads x 32, 1 KV head, ffn 128, vocab 512.
  const uint64_t per_layer = 64 * 64 + 64 * 32 * 2 + 64 * 64 + 3 * 64 * 128 + 4 * 64 + 2 * 32;
  EXPECT_EQ(info->n_params, 512u * 64 + 64 + 2 * per_layer);
  EXPECT_EQ(info->architecture, "gemma3");
  EXPECT_EQ(info->vocab_size, 512);
  EXPECT_TRUE(info->has_tokenizer);
  EXPECT_TRUE(info->has_chat_template);
  // One full and one sliding layer, each 2 (K,V) x 1 head x 32 dims x 2 bytes.
  EXPECT_EQ(info->memory.kv_bytes_per_token, 128u);
  EXPECT_EQ(info->memory.kv_bytes_per_token_sliding, 128u);
  EXPECT_EQ(info->memory.kv_bytes_at_context_length, 128u * 4096 + 128u * 8);
  EXPECT_EQ(info->memory.weights_f16, 2 * (512u * 64 + 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128)) +
                                          4 * (64 + 2 * (4 * 64 + 2 * 32)));
}

TEST(Generator, KvSharingCostsNothing) {
  TempDir dir;
  testgen::WrittenModel w = Make(dir, "g4-e2b-like", DType::kF32);
  Result<ModelInfo> info = InspectModel(w.hf_dir);
  ASSERT_TRUE(info.ok());
  // Owning layers 0-4: layer 4 full (64 dims), 0-3 sliding (32 dims), 1 KV head, f16.
  EXPECT_EQ(info->memory.kv_bytes_per_token, 2u * 64 * 2);
  EXPECT_EQ(info->memory.kv_bytes_per_token_sliding, 4u * 2 * 32 * 2);
  EXPECT_EQ(info->n_kv_shared_layers, 5);
  ASSERT_EQ(info->layer_groups.size(), 2u);
  EXPECT_EQ(info->layer_groups[0].n_layers, 8);
  EXPECT_EQ(info->layer_groups[0].n_kv_layers, 4);
}

TEST(CheckpointErrors, NameThePath) {
  TempDir dir;
  auto r = Checkpoint::Open(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
  auto missing = Checkpoint::Open(dir.File("nope.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.gguf"), std::string::npos);
  testing::WriteFile(dir.File("config.json"), "{\"model_type\": \"gemma3_text\"}");
  auto no_weights = Checkpoint::Open(dir.path());
  EXPECT_FALSE(no_weights.ok());
  testing::WriteFile(dir.File("bad.gguf"), "GGUF\x03");
  auto bad = Checkpoint::Open(dir.File("bad.gguf"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.gguf"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local
