// Checkpoint::Open rejects weights that contradict the hyper-parameters, naming the tensor.
#include <functional>

#include <gtest/gtest.h>

#include "common/test_support.h"
#include "formats/gguf.h"
#include "model/checkpoint.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

using testing::TempDir;

// Writes a copy of `src` to `dst`, letting `edit` drop (return false) or change tensors.
using TensorEdit = std::function<bool(std::string& name, DType& dtype, std::vector<int64_t>& ne,
                                      std::vector<uint8_t>& data)>;
void Rewrite(const std::string& src, const std::string& dst, const TensorEdit& edit) {
  Result<gguf::GgufFile> f = gguf::GgufFile::Open(src);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f->metadata()) w.Set(kv.key, kv.value);
  for (const gguf::TensorInfo& t : f->tensors()) {
    std::string name = t.name;
    DType dtype = t.dtype;
    std::vector<int64_t> ne = t.ne;
    std::vector<uint8_t> data(t.data, t.data + t.n_bytes);
    if (!edit(name, dtype, ne, data)) continue;
    ASSERT_TRUE(w.AddTensor(name, dtype, ne, std::move(data)).ok()) << name;
  }
  ASSERT_TRUE(w.WriteFile(dst).ok());
}

std::string MakeTiny(const TempDir& dir) {
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape("tiny");
  opt.write_hf = false;
  Result<testgen::WrittenModel> w = testgen::WriteTestModel(opt, dir.path());
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return w->gguf_path;
}

std::string OpenError(const std::string& path) {
  Result<Checkpoint> ck = Checkpoint::Open(path);
  EXPECT_FALSE(ck.ok()) << path;
  return ck.ok() ? "" : ck.status().ToString();
}

TEST(CheckpointValidation, MissingTensorIsNamed) {
  TempDir dir;
  const std::string src = MakeTiny(dir);
  Rewrite(src, dir.File("bad.gguf"), [](std::string& name, DType&, std::vector<int64_t>&, std::vector<uint8_t>&) {
    return name != "blk.1.ffn_up.weight";
  });
  const std::string err = OpenError(dir.File("bad.gguf"));
  EXPECT_NE(err.find("bad.gguf"), std::string::npos) << err;
  EXPECT_NE(err.find("blk.1.ffn_up.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
}

TEST(CheckpointValidation, WrongDimsAreNamedWithExpectedAndActual) {
  TempDir dir;
  const std::string src = MakeTiny(dir);
  Rewrite(src, dir.File("bad.gguf"), [](std::string& name, DType&, std::vector<int64_t>& ne, std::vector<uint8_t>& data) {
    if (name == "blk.0.attn_q.weight") {  // {64, 64} -> {64, 32}
      ne = {64, 32};
      data.resize(64 * 32 * 4);
    }
    return true;
  });
  const std::string err = OpenError(dir.File("bad.gguf"));
  EXPECT_NE(err.find("blk.0.attn_q.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 32]"), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 64]"), std::string::npos) << err;
}

TEST(CheckpointValidation, UnexpectedTensorIsRejected) {
  TempDir dir;
  Result<gguf::GgufFile> f = gguf::GgufFile::Open(MakeTiny(dir));
  ASSERT_TRUE(f.ok());
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f->metadata()) w.Set(kv.key, kv.value);
  for (const gguf::TensorInfo& t : f->tensors()) {
    ASSERT_TRUE(w.AddTensor(t.name, t.dtype, t.ne, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  }
  ASSERT_TRUE(w.AddTensor("blk.7.post_ffw_norm.weight", DType::kF32, {64}, std::vector<uint8_t>(256, 0)).ok());
  ASSERT_TRUE(w.WriteFile(dir.File("bad.gguf")).ok());
  const std::string err = OpenError(dir.File("bad.gguf"));
  EXPECT_NE(err.find("unexpected tensor 'blk.7.post_ffw_norm.weight'"), std::string::npos) << err;
}

TEST(CheckpointValidation, QuantizedNormIsUnsupported) {
  TempDir dir;
  const std::string src = MakeTiny(dir);
  Rewrite(src, dir.File("bad.gguf"), [](std::string& name, DType& dtype, std::vector<int64_t>&, std::vector<uint8_t>& data) {
    if (name == "output_norm.weight") {  // 64 f32 -> 2 q8_0 blocks
      dtype = DType::kQ8_0;
      data.assign(2 * 34, 0);
    }
    return true;
  });
  const std::string err = OpenError(dir.File("bad.gguf"));
  EXPECT_NE(err.find("output_norm.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("q8_0"), std::string::npos) << err;
}

TEST(CheckpointValidation, RequireDTypesNamesTheTensor) {
  TempDir dir;
  const std::string src = MakeTiny(dir);
  Rewrite(src, dir.File("q.gguf"), [](std::string& name, DType& dtype, std::vector<int64_t>& ne, std::vector<uint8_t>& data) {
    if (name == "blk.0.ffn_down.weight") {  // {128, 64} f32 -> q4_0
      dtype = DType::kQ4_0;
      data.assign(128 / 32 * 64 * 18, 0);
    }
    return true;
  });
  Result<Checkpoint> ck = Checkpoint::Open(dir.File("q.gguf"));
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();  // loading accepts every known type
  Status s = ck->RequireDTypes({DType::kF32, DType::kF16, DType::kBF16});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.0.ffn_down.weight"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("q4_0"), std::string::npos) << s.ToString();
  EXPECT_TRUE(ck->RequireDTypes({DType::kF32, DType::kQ4_0}).ok());
}

TEST(CheckpointValidation, SharedLayerKvWeightsAreTolerated) {
  // Some Gemma 4 checkpoints carry unused K/V weights on KV-shared layers (spec §7 item 7d).
  TempDir dir;
  testgen::TestModelOptions opt;
  opt.hparams = *testgen::PresetShape("g4-e2b-like");
  opt.write_hf = false;
  ASSERT_TRUE(testgen::WriteTestModel(opt, dir.path()).ok());
  Result<gguf::GgufFile> f = gguf::GgufFile::Open(dir.File("model.gguf"));
  ASSERT_TRUE(f.ok());
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f->metadata()) w.Set(kv.key, kv.value);
  for (const gguf::TensorInfo& t : f->tensors()) {
    ASSERT_TRUE(w.AddTensor(t.name, t.dtype, t.ne, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  }
  // Layer 7 is sliding and shared (donor 3): add K/V with the donor's geometry.
  const gguf::TensorInfo* k = f->FindTensor("blk.3.attn_k.weight");
  const gguf::TensorInfo* v = f->FindTensor("blk.3.attn_v.weight");
  ASSERT_TRUE(k && v);
  ASSERT_TRUE(w.AddTensor("blk.7.attn_k.weight", k->dtype, k->ne, std::vector<uint8_t>(k->data, k->data + k->n_bytes)).ok());
  ASSERT_TRUE(w.AddTensor("blk.7.attn_v.weight", v->dtype, v->ne, std::vector<uint8_t>(v->data, v->data + v->n_bytes)).ok());
  ASSERT_TRUE(w.WriteFile(dir.File("with_kv.gguf")).ok());
  Result<Checkpoint> ck = Checkpoint::Open(dir.File("with_kv.gguf"));
  EXPECT_TRUE(ck.ok()) << ck.status().ToString();
}

}  // namespace
}  // namespace gemma_local
