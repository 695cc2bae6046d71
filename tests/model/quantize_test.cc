// The quantization policy (which tensor gets which type under each mix), load-time quantization
// and the quantized GGUF writer.
#include "model/quantize.h"

#include <cstring>

#include <gtest/gtest.h>

#include "common/test_support.h"
#include "model/checkpoint.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

using testing::TempDir;

std::string MakeModel(const TempDir& dir, int64_t hidden, int64_t ffn, int64_t n_layers) {
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape("tiny");
  opt.hparams.hidden_size = hidden;
  opt.hparams.ffn_size.assign(static_cast<size_t>(n_layers), ffn);
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w.ok() ? w->gguf_path : "";
}

TEST(QuantMix, ParsesNamesAndAliases) {
  EXPECT_EQ(*ParseQuantMix("Q4_K_M"), QuantMix::kQ4_K_M);
  EXPECT_EQ(*ParseQuantMix("q4_k"), QuantMix::kQ4_K_M);
  EXPECT_EQ(*ParseQuantMix("4bit"), QuantMix::kQ4_K_M);
  EXPECT_EQ(*ParseQuantMix("8bit"), QuantMix::kQ8_0);
  EXPECT_EQ(*ParseQuantMix("q4_0"), QuantMix::kQ4_0);
  Result<QuantMix> bad = ParseQuantMix("q7_x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("q7_x"), std::string::npos);
  EXPECT_NE(bad.status().message().find("q4_k_m"), std::string::npos);
  for (const std::string& n : QuantMixNames()) EXPECT_EQ(QuantMixName(*ParseQuantMix(n)), n);
}

TEST(QuantMix, PolicyFollowsLlamaCppMixes) {
  TempDir dir;
  const std::string path = MakeModel(dir, 256, 512, 2);
  ASSERT_FALSE(path.empty());
  Result<Checkpoint> ck = Checkpoint::Open(path);
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  auto type_of = [&](const std::string& name, QuantMix mix) {
    const WeightTensor* t = ck->FindTensor(name);
    EXPECT_NE(t, nullptr) << name;
    return t ? QuantizedTensorType(*ck, *t, mix) : DType::kCount;
  };
  // Tied LM head: q6_K for K and legacy mixes, q8_0 stays q8_0.
  EXPECT_EQ(type_of("token_embd.weight", QuantMix::kQ4_0), DType::kQ6_K);
  EXPECT_EQ(type_of("token_embd.weight", QuantMix::kQ8_0), DType::kQ8_0);
  // q4_k_m: attn_v / ffn_down of "more bits" layers (of 2 layers: layer 1, i >= 7n/8) in q6_K,
  // others q4_K.
  EXPECT_EQ(type_of("blk.1.attn_v.weight", QuantMix::kQ4_K_M), DType::kQ6_K);
  EXPECT_EQ(type_of("blk.1.ffn_down.weight", QuantMix::kQ4_K_M), DType::kQ6_K);
  EXPECT_EQ(type_of("blk.0.attn_v.weight", QuantMix::kQ4_K_M), DType::kQ4_K);
  EXPECT_EQ(type_of("blk.0.ffn_down.weight", QuantMix::kQ4_K_M), DType::kQ4_K);
  EXPECT_EQ(type_of("blk.0.attn_q.weight", QuantMix::kQ4_K_M), DType::kQ4_K);
  EXPECT_EQ(type_of("blk.1.ffn_gate.weight", QuantMix::kQ4_K_M), DType::kQ4_K);
  // Norms keep their type.
  EXPECT_EQ(type_of("blk.0.attn_norm.weight", QuantMix::kQ4_K_M), DType::kF32);
  EXPECT_EQ(type_of("output_norm.weight", QuantMix::kQ4_0), DType::kF32);
  // f16 mix converts matrices only.
  EXPECT_EQ(type_of("blk.0.attn_q.weight", QuantMix::kF16), DType::kF16);
  EXPECT_EQ(type_of("blk.0.attn_norm.weight", QuantMix::kF16), DType::kF32);
}

TEST(QuantMix, RowsThatAreNotWholeSuperBlocksFallBack) {
  TempDir dir;
  const std::string path = MakeModel(dir, 96, 160, 2);  // 96 and 160: multiples of 32, not 256
  ASSERT_FALSE(path.empty());
  Result<Checkpoint> ck = Checkpoint::Open(path);
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  const WeightTensor* q = ck->FindTensor("blk.1.attn_q.weight");
  const WeightTensor* embd = ck->FindTensor("token_embd.weight");
  ASSERT_TRUE(q && embd);
  EXPECT_EQ(QuantizedTensorType(*ck, *q, QuantMix::kQ4_K_M), DType::kQ5_0);
  EXPECT_EQ(QuantizedTensorType(*ck, *q, QuantMix::kQ5_K_M), DType::kQ5_1);
  EXPECT_EQ(QuantizedTensorType(*ck, *q, QuantMix::kQ6_K), DType::kQ8_0);
  EXPECT_EQ(QuantizedTensorType(*ck, *q, QuantMix::kQ2_K), DType::kQ4_0);
  EXPECT_EQ(QuantizedTensorType(*ck, *embd, QuantMix::kQ4_K_M), DType::kQ8_0);
}

TEST(QuantMix, InMemoryEqualsWrittenFile) {
  TempDir dir;
  const std::string path = MakeModel(dir, 256, 512, 2);
  ASSERT_FALSE(path.empty());
  Result<Checkpoint> mem = Checkpoint::Open(path);
  ASSERT_TRUE(mem.ok());
  ASSERT_TRUE(QuantizeCheckpointInMemory(*mem, QuantMix::kQ4_K_M, 2).ok());
  const std::string out = dir.File("q.gguf");
  Result<Checkpoint> src = Checkpoint::Open(path);
  ASSERT_TRUE(src.ok());
  Status s = WriteQuantizedGguf(*src, QuantMix::kQ4_K_M, out, 1);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Result<Checkpoint> file = Checkpoint::Open(out);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->tensors().size(), mem->tensors().size());
  for (size_t i = 0; i < mem->tensors().size(); ++i) {
    const WeightTensor& a = mem->tensors()[i];
    const WeightTensor& b = file->tensors()[i];
    ASSERT_EQ(a.name, b.name);
    ASSERT_EQ(a.dtype, b.dtype) << a.name;
    ASSERT_EQ(a.n_bytes, b.n_bytes) << a.name;
    EXPECT_EQ(0, std::memcmp(a.data, b.data, a.n_bytes)) << a.name << " (thread count must not matter)";
  }
  EXPECT_EQ(*file->gguf()->GetInt("general.file_type"), 15);
}

TEST(QuantMix, HuggingFaceInputToQuantizeIsAClearError) {
  TempDir dir;
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape("tiny");
  opt.write_gguf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  ASSERT_TRUE(w.ok());
  Result<Checkpoint> ck = Checkpoint::Open(w->hf_dir);
  ASSERT_TRUE(ck.ok());
  Status s = WriteQuantizedGguf(*ck, QuantMix::kQ8_0, dir.File("x.gguf"), 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--quantize"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace gemma_local
