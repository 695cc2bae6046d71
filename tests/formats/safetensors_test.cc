// Round-trip and API tests for the safetensors reader/writer (formats/safetensors.h). Hostile
// inputs live in safetensors_corruption_test.cc.
#include "formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace gemma_local::safetensors {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("safetensors_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return out;
}

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::vector<DType> SafetensorsDTypes() {
  std::vector<DType> out;
  for (size_t i = 0; i < static_cast<size_t>(DType::kCount); ++i) {
    if (Traits(static_cast<DType>(i)).safetensors_name != nullptr) {
      out.push_back(static_cast<DType>(i));
    }
  }
  return out;
}

uint64_t ElementBytes(DType dtype) { return Traits(dtype).block_bytes; }

uint64_t Product(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

struct Spec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Every safetensors dtype with an odd shape, a scalar and an empty tensor.
std::vector<Spec> AllDTypeSpecs() {
  std::vector<Spec> specs;
  uint8_t seed = 1;
  for (DType dtype : SafetensorsDTypes()) {
    const std::string base = std::string(Traits(dtype).safetensors_name);
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{3, 5, 7}, {}, {0}, {2, 0, 3}, {1}, {13}}) {
      Spec s;
      s.name =
          base + ".shape" + std::to_string(shape.size()) + "_" + std::to_string(Product(shape));
      s.dtype = dtype;
      s.shape = shape;
      s.data = Pattern(Product(shape) * ElementBytes(dtype), seed++);
      specs.push_back(std::move(s));
    }
  }
  return specs;
}

TEST(SafetensorsTest, RoundTripEveryDTypeAndShape) {
  const std::vector<Spec> specs = AllDTypeSpecs();
  ASSERT_EQ(SafetensorsDTypes().size(), 16u);  // F32..F8_E8M0, as the format lists them
  SafetensorsWriter writer;
  for (const Spec& s : specs) ASSERT_TRUE(writer.AddTensor(s.name, s.dtype, s.shape, s.data).ok());
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();

  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "rt");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->path(), "rt");
  EXPECT_EQ(file->file_size(), bytes->size());
  ASSERT_EQ(file->tensors().size(), specs.size());
  EXPECT_TRUE(file->metadata().empty());
  for (const Spec& s : specs) {
    const Tensor* t = file->FindTensor(s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->name, s.name);
    EXPECT_EQ(t->dtype, s.dtype) << s.name;
    EXPECT_EQ(t->shape, s.shape) << s.name;
    EXPECT_EQ(t->n_elements(), Product(s.shape)) << s.name;
    EXPECT_EQ(t->n_bytes, s.data.size()) << s.name;
    EXPECT_EQ(t->file, "rt");
    if (!s.data.empty()) {
      EXPECT_EQ(std::memcmp(t->data, s.data.data(), s.data.size()), 0) << s.name;
    }
  }
}

TEST(SafetensorsTest, RoundTripThroughFileAndZeroCopyPointers) {
  ScopedTempDir dir;
  const std::string path = dir / "model.safetensors";
  const std::vector<Spec> specs = AllDTypeSpecs();
  SafetensorsWriter writer;
  for (const Spec& s : specs) ASSERT_TRUE(writer.AddTensor(s.name, s.dtype, s.shape, s.data).ok());
  ASSERT_TRUE(writer.WriteFile(path).ok());
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);

  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(fs::file_size(path), bytes->size());

  Result<std::shared_ptr<const MappedFile>> mapping = MappedFile::Open(path);
  ASSERT_TRUE(mapping.ok());
  const std::shared_ptr<const MappedFile> map = *mapping;
  ASSERT_EQ(std::memcmp(map->data(), bytes->data(), bytes->size()), 0);  // WriteFile == Serialize
  Result<SafetensorsFile> file = SafetensorsFile::Parse(map);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->path(), path);
  const uint64_t data_start = 8 + ReadLe64(map->data());
  for (const Tensor& t : file->tensors()) {
    // Zero copy: every view points into the mapping at data section + offset.
    EXPECT_EQ(t.data, map->data() + data_start + t.offset) << t.name;
    EXPECT_LE(t.offset + t.n_bytes + data_start, map->size());
    EXPECT_EQ(t.file, path);
  }
  // Open() is Parse(MappedFile::Open()).
  Result<SafetensorsFile> opened = SafetensorsFile::Open(path);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->tensors().size(), specs.size());
}

TEST(SafetensorsTest, ParseBytesViewsPointIntoCallerBuffer) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddTensor("w", DType::kF32, {2, 3}, Pattern(24, 7)).ok());
  ASSERT_TRUE(writer.AddTensor("b", DType::kBF16, {3}, Pattern(6, 9)).ok());
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "x");
  ASSERT_TRUE(file.ok());
  const uint64_t data_start = 8 + ReadLe64(bytes->data());
  const Tensor* w = file->FindTensor("w");
  const Tensor* b = file->FindTensor("b");
  ASSERT_NE(w, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(w->data, bytes->data() + data_start);
  EXPECT_EQ(b->data, bytes->data() + data_start + 24);
}

TEST(SafetensorsTest, HeaderIsPaddedWithSpacesAndKeepsInsertionOrder) {
  for (int extra = 0; extra < 9; ++extra) {
    SafetensorsWriter writer;
    // Names of varying length exercise every padding remainder.
    ASSERT_TRUE(
        writer.AddTensor("zeta" + std::string(extra, 'x'), DType::kU8, {3}, {1, 2, 3}).ok());
    ASSERT_TRUE(writer.AddTensor("alpha", DType::kI16, {2}, {4, 5, 6, 7}).ok());
    Result<std::vector<uint8_t>> bytes = writer.Serialize();
    ASSERT_TRUE(bytes.ok());
    const uint64_t n = ReadLe64(bytes->data());
    EXPECT_EQ(n % 8, 0u);
    const std::string header(reinterpret_cast<const char*>(bytes->data() + 8), n);
    const size_t close = header.rfind('}');
    ASSERT_NE(close, std::string::npos);
    EXPECT_LT(n - (close + 1), 8u);
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
    // Insertion order, in the header and in the data section.
    EXPECT_LT(header.find("\"zeta"), header.find("\"alpha\""));
    EXPECT_NE(header.find("\"data_offsets\":[0,3]"), std::string::npos) << header;
    EXPECT_NE(header.find("\"data_offsets\":[3,7]"), std::string::npos) << header;
    EXPECT_EQ(bytes->size(), 8 + n + 7);
    EXPECT_EQ(header.find("__metadata__"), std::string::npos);  // only when set

    Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "p");
    ASSERT_TRUE(file.ok());
    ASSERT_EQ(file->tensors().size(), 2u);
    EXPECT_EQ(file->tensors()[0].name, "zeta" + std::string(extra, 'x'));  // sorted by offset
    EXPECT_EQ(file->tensors()[1].name, "alpha");
  }
}

TEST(SafetensorsTest, MetadataRoundTrip) {
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  writer.SetMetadata("empty", "");
  writer.SetMetadata("unicode \xC3\xA9", "\xE2\x9C\x93 \"quoted\" \\ \n");
  writer.SetMetadata("format", "np");  // last value wins
  ASSERT_TRUE(writer.AddTensor("t", DType::kF16, {1}, {0, 60}).ok());
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  const std::string header(reinterpret_cast<const char*>(bytes->data() + 8),
                           ReadLe64(bytes->data()));
  EXPECT_EQ(header.find("{\"__metadata__\":{"), 0u) << header;  // first, like the reference
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "m");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const std::map<std::string, std::string> expected = {
      {"format", "np"}, {"empty", ""}, {"unicode \xC3\xA9", "\xE2\x9C\x93 \"quoted\" \\ \n"}};
  EXPECT_EQ(file->metadata(), expected);
}

TEST(SafetensorsTest, EmptyWriterProducesAValidFile) {
  SafetensorsWriter writer;
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), 16u);  // "{}" padded to 8
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "e");
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->FindTensor("x"), nullptr);
}

// Files as other writers produce them: metadata last, no padding, unusual whitespace, "-0".
TEST(SafetensorsTest, AcceptsForeignButValidHeaders) {
  const std::string fixed =
      " {\n \"b\" : {\"shape\": [2], \"data_offsets\": [8, 12], \"dtype\": \"I16\"},\n"
      " \"a\": {\"data_offsets\": [0, 8], \"dtype\": \"F32\", \"shape\": [1, 2]},\n"
      " \"z\": {\"dtype\": \"F64\", \"shape\": [0, 5], \"data_offsets\": [12, 12]},\n"
      " \"__metadata__\": {\"k\": \"v\"}}\t";
  std::vector<uint8_t> bytes(8);
  const uint64_t n = fixed.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  bytes.insert(bytes.end(), fixed.begin(), fixed.end());
  const std::vector<uint8_t> payload = Pattern(12, 3);
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes.data(), bytes.size(), "f");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->tensors()[0].name, "a");
  EXPECT_EQ(file->tensors()[1].name, "b");
  EXPECT_EQ(file->tensors()[2].name, "z");
  EXPECT_EQ(file->tensors()[2].n_bytes, 0u);
  EXPECT_EQ(file->metadata().at("k"), "v");

  // "-0" is a valid zero dimension.
  std::string neg_zero = fixed;
  neg_zero.replace(neg_zero.find("[0, 5]"), 6, "[-0, 5]");
  std::vector<uint8_t> b2(8);
  for (int i = 0; i < 8; ++i) b2[i] = static_cast<uint8_t>(neg_zero.size() >> (8 * i));
  b2.insert(b2.end(), neg_zero.begin(), neg_zero.end());
  b2.insert(b2.end(), payload.begin(), payload.end());
  Result<SafetensorsFile> f2 = SafetensorsFile::ParseBytes(b2.data(), b2.size(), "f2");
  ASSERT_TRUE(f2.ok()) << f2.status().ToString();
  EXPECT_EQ(f2->FindTensor("z")->shape, (std::vector<int64_t>{0, 5}));
}

TEST(SafetensorsTest, ZeroSizeTensorsMaySitAnywhereOnTheTiling) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddTensor("e0", DType::kF32, {0}, {}).ok());
  ASSERT_TRUE(writer.AddTensor("a", DType::kU8, {2}, {1, 2}).ok());
  ASSERT_TRUE(writer.AddTensor("e1", DType::kBF16, {4, 0}, {}).ok());
  ASSERT_TRUE(writer.AddTensor("b", DType::kU8, {1}, {3}).ok());
  ASSERT_TRUE(writer.AddTensor("e2", DType::kBool, {0}, {}).ok());
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "z");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<std::string> names;
  for (const Tensor& t : file->tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"e0", "a", "e1", "b", "e2"}));
  EXPECT_EQ(file->FindTensor("e2")->offset, 3u);
}

TEST(SafetensorsTest, FindTensor) {
  SafetensorsWriter writer;
  const std::vector<std::string> names = {"model.layers.10.mlp", "model.layers.1.mlp",
                                          "model.layers.2.mlp", "model", "\xE2\x9C\x93"};
  for (const std::string& n : names) ASSERT_TRUE(writer.AddTensor(n, DType::kU8, {1}, {7}).ok());
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "n");
  ASSERT_TRUE(file.ok());
  for (const std::string& n : names) {
    const Tensor* t = file->FindTensor(n);
    ASSERT_NE(t, nullptr) << n;
    EXPECT_EQ(t->name, n);
  }
  EXPECT_EQ(file->FindTensor(""), nullptr);
  EXPECT_EQ(file->FindTensor("model."), nullptr);
  EXPECT_EQ(file->FindTensor("model.layers.1"), nullptr);
  EXPECT_EQ(file->FindTensor("zzz"), nullptr);
  EXPECT_EQ(file->FindTensor(std::string_view("model\0", 6)), nullptr);
}

TEST(SafetensorsTest, WriterRejectsInvalidTensors) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddTensor("ok", DType::kF32, {2}, Pattern(8, 0)).ok());
  struct Bad {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    size_t bytes;
    std::string needle;
  };
  const std::vector<Bad> bad = {
      {"", DType::kF32, {1}, 4, "name is empty"},
      {"ok", DType::kF32, {1}, 4, "already added"},
      {"__metadata__", DType::kF32, {1}, 4, "reserved"},
      {"bad\xFF", DType::kF32, {1}, 4, "UTF-8"},
      {"neg", DType::kF32, {2, -1}, 4, "shape[1] is -1"},
      {"size", DType::kF32, {3}, 8, "data holds 8 bytes"},
      {"q", DType::kQ4_0, {32}, 18, "no safetensors representation"},
      {"big", DType::kU8, {1ll << 40, 1ll << 40}, 0, "overflows"},
  };
  for (const Bad& b : bad) {
    Status s = writer.AddTensor(b.name, b.dtype, b.shape, std::vector<uint8_t>(b.bytes));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << b.needle;
    EXPECT_NE(s.message().find(b.needle), std::string::npos) << s.message();
  }
  Result<std::vector<uint8_t>> bytes = writer.Serialize();
  ASSERT_TRUE(bytes.ok());
  Result<SafetensorsFile> file = SafetensorsFile::ParseBytes(bytes->data(), bytes->size(), "w");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->tensors().size(), 1u);
}

TEST(SafetensorsTest, WriterErrorsNameThePath) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddTensor("t", DType::kU8, {1}, {1}).ok());
  ScopedTempDir dir;
  const std::string path = dir / "missing_dir/model.safetensors";
  Status s = writer.WriteFile(path);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_EQ(s.message().rfind(path, 0), 0u) << s.message();

  SafetensorsWriter bad_meta;
  bad_meta.SetMetadata("k", "\xC0\xAF");
  Result<std::vector<uint8_t>> bytes = bad_meta.Serialize();
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.status().message().find("'k'"), std::string::npos);
  const std::string meta_path = dir / "meta.safetensors";
  Status ws = bad_meta.WriteFile(meta_path);
  EXPECT_FALSE(ws.ok());
  EXPECT_EQ(ws.message().rfind(meta_path, 0), 0u) << ws.message();
  EXPECT_FALSE(fs::exists(meta_path));

  EXPECT_FALSE(writer.WriteSharded(dir / "s", 0).ok());
  EXPECT_FALSE(SafetensorsWriter().WriteSharded(dir / "s", 10).ok());
}

TEST(SafetensorsTest, WriteFileReplacesAtomically) {
  ScopedTempDir dir;
  const std::string path = dir / "model.safetensors";
  SafetensorsWriter first;
  ASSERT_TRUE(first.AddTensor("a", DType::kU8, {1}, {1}).ok());
  ASSERT_TRUE(first.WriteFile(path).ok());
  SafetensorsWriter second;
  ASSERT_TRUE(second.AddTensor("b", DType::kU8, {2}, {1, 2}).ok());
  ASSERT_TRUE(second.WriteFile(path).ok());
  Result<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->FindTensor("a"), nullptr);
  EXPECT_NE(file->FindTensor("b"), nullptr);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

// Sizes 40, 40, 100, 8, 8 with a 64-byte limit: [40] [40] [100] [8, 8].
SafetensorsWriter ShardedWriter() {
  SafetensorsWriter writer;
  EXPECT_TRUE(writer.AddTensor("l0.w", DType::kF32, {10}, Pattern(40, 1)).ok());
  EXPECT_TRUE(writer.AddTensor("l1.w", DType::kF32, {2, 5}, Pattern(40, 2)).ok());
  EXPECT_TRUE(writer.AddTensor("big", DType::kU8, {100}, Pattern(100, 3)).ok());
  EXPECT_TRUE(writer.AddTensor("a.bias", DType::kI64, {1}, Pattern(8, 4)).ok());
  EXPECT_TRUE(writer.AddTensor("b.bias", DType::kF16, {2, 2}, Pattern(8, 5)).ok());
  writer.SetMetadata("format", "pt");
  return writer;
}

void ExpectShardedCheckpoint(const SafetensorsCheckpoint& ck, const std::string& dir) {
  const std::vector<std::string> expected_shards = {
      dir + "/model-00001-of-00004.safetensors", dir + "/model-00002-of-00004.safetensors",
      dir + "/model-00003-of-00004.safetensors", dir + "/model-00004-of-00004.safetensors"};
  EXPECT_EQ(ck.shard_paths(), expected_shards);
  uint64_t total = 0;
  for (const std::string& p : expected_shards) total += fs::file_size(p);
  EXPECT_EQ(ck.total_file_bytes(), total);
  std::vector<std::string> names;
  for (const Tensor& t : ck.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"l0.w", "l1.w", "big", "a.bias", "b.bias"}));
  const Tensor* big = ck.FindTensor("big");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->file, expected_shards[2]);
  EXPECT_EQ(big->n_bytes, 100u);
  EXPECT_EQ(std::memcmp(big->data, Pattern(100, 3).data(), 100), 0);
  const Tensor* bb = ck.FindTensor("b.bias");
  ASSERT_NE(bb, nullptr);
  EXPECT_EQ(bb->file, expected_shards[3]);
  EXPECT_EQ(bb->dtype, DType::kF16);
  EXPECT_EQ(bb->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(std::memcmp(bb->data, Pattern(8, 5).data(), 8), 0);
  EXPECT_EQ(ck.FindTensor("nope"), nullptr);
}

TEST(SafetensorsTest, ShardedWriteAndOpenViaDirectoryAndIndex) {
  ScopedTempDir tmp;
  const std::string dir = tmp / "ckpt";
  ASSERT_TRUE(ShardedWriter().WriteSharded(dir, 64).ok());

  // The index, as transformers writes it.
  std::ifstream in(dir + "/model.safetensors.index.json");
  nlohmann::json index = nlohmann::json::parse(in);
  EXPECT_EQ(index["metadata"]["total_size"], 196);
  const nlohmann::json expected_map = {{"l0.w", "model-00001-of-00004.safetensors"},
                                       {"l1.w", "model-00002-of-00004.safetensors"},
                                       {"big", "model-00003-of-00004.safetensors"},
                                       {"a.bias", "model-00004-of-00004.safetensors"},
                                       {"b.bias", "model-00004-of-00004.safetensors"}};
  EXPECT_EQ(index["weight_map"], expected_map);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 5);

  Result<SafetensorsCheckpoint> via_dir = SafetensorsCheckpoint::Open(dir);
  ASSERT_TRUE(via_dir.ok()) << via_dir.status().ToString();
  ExpectShardedCheckpoint(*via_dir, dir);

  Result<SafetensorsCheckpoint> via_index =
      SafetensorsCheckpoint::Open(dir + "/model.safetensors.index.json");
  ASSERT_TRUE(via_index.ok()) << via_index.status().ToString();
  ExpectShardedCheckpoint(*via_index, dir);

  // Each shard carries the writer's metadata.
  Result<SafetensorsFile> shard = SafetensorsFile::Open(dir + "/model-00004-of-00004.safetensors");
  ASSERT_TRUE(shard.ok());
  EXPECT_EQ(shard->metadata().at("format"), "pt");
}

TEST(SafetensorsTest, OpenSingleShardFileOfAShardedCheckpoint) {
  ScopedTempDir tmp;
  const std::string dir = tmp / "ckpt";
  ASSERT_TRUE(ShardedWriter().WriteSharded(dir, 64).ok());
  const std::string shard = dir + "/model-00004-of-00004.safetensors";
  Result<SafetensorsCheckpoint> ck = SafetensorsCheckpoint::Open(shard);
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  EXPECT_EQ(ck->shard_paths(), std::vector<std::string>{shard});
  EXPECT_EQ(ck->total_file_bytes(), fs::file_size(shard));
  ASSERT_EQ(ck->tensors().size(), 2u);
  EXPECT_NE(ck->FindTensor("a.bias"), nullptr);
  EXPECT_EQ(ck->FindTensor("big"), nullptr);
}

TEST(SafetensorsTest, ShardingEdgeCases) {
  ScopedTempDir tmp;
  // Everything fits: one shard, still with an index.
  ASSERT_TRUE(ShardedWriter().WriteSharded(tmp / "one", 1 << 20).ok());
  EXPECT_TRUE(fs::exists(tmp / "one/model-00001-of-00001.safetensors"));
  Result<SafetensorsCheckpoint> one = SafetensorsCheckpoint::Open(tmp / "one");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->tensors().size(), 5u);
  // A limit of 1 byte: every tensor gets its own shard.
  ASSERT_TRUE(ShardedWriter().WriteSharded(tmp / "many", 1).ok());
  Result<SafetensorsCheckpoint> many = SafetensorsCheckpoint::Open(tmp / "many");
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  EXPECT_EQ(many->shard_paths().size(), 5u);
  EXPECT_EQ(many->shard_paths().back(), tmp / "many/model-00005-of-00005.safetensors");
  // Exactly at the limit: 40 + 40 = 80 fits in 80.
  ASSERT_TRUE(ShardedWriter().WriteSharded(tmp / "exact", 80).ok());
  Result<SafetensorsCheckpoint> exact = SafetensorsCheckpoint::Open(tmp / "exact");
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->shard_paths().size(), 3u);  // [40, 40] [100] [8, 8]
}

TEST(SafetensorsTest, CheckpointOpenDirectoryWithSingleFileAndIndexPreference) {
  ScopedTempDir tmp;
  SafetensorsWriter single;
  ASSERT_TRUE(single.AddTensor("only", DType::kF32, {1}, Pattern(4, 1)).ok());
  ASSERT_TRUE(single.WriteFile(tmp / "model.safetensors").ok());
  Result<SafetensorsCheckpoint> ck = SafetensorsCheckpoint::Open(tmp.path());
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  EXPECT_EQ(ck->shard_paths(), std::vector<std::string>{tmp / "model.safetensors"});
  EXPECT_NE(ck->FindTensor("only"), nullptr);

  // With an index next to it, the index wins.
  ASSERT_TRUE(ShardedWriter().WriteSharded(tmp.path(), 64).ok());
  Result<SafetensorsCheckpoint> both = SafetensorsCheckpoint::Open(tmp.path() + "/");
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->shard_paths().size(), 4u);
  EXPECT_EQ(both->FindTensor("only"), nullptr);
}

TEST(SafetensorsTest, CheckpointIndexMayCarryExtraFields) {
  ScopedTempDir tmp;
  ASSERT_TRUE(ShardedWriter().WriteSharded(tmp.path(), 64).ok());
  const std::string index_path = tmp / "model.safetensors.index.json";
  std::ifstream in(index_path);
  nlohmann::json index = nlohmann::json::parse(in);
  in.close();
  index["metadata"]["nested"] = {{"a", {1, 2, {{"b", nullptr}}}}};
  index["something_else"] = {1, 2, 3};
  std::ofstream(index_path) << index.dump();
  Result<SafetensorsCheckpoint> ck = SafetensorsCheckpoint::Open(index_path);
  ASSERT_TRUE(ck.ok()) << ck.status().ToString();
  EXPECT_EQ(ck->tensors().size(), 5u);
}

TEST(SafetensorsTest, OpenMissingPaths) {
  ScopedTempDir tmp;
  Result<SafetensorsFile> f = SafetensorsFile::Open(tmp / "nope.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message().rfind(tmp / "nope.safetensors", 0), 0u);
  Result<SafetensorsCheckpoint> c = SafetensorsCheckpoint::Open(tmp / "nope");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.status().message().rfind(tmp / "nope", 0), 0u);
  Result<SafetensorsCheckpoint> empty_dir = SafetensorsCheckpoint::Open(tmp.path());
  ASSERT_FALSE(empty_dir.ok());
  EXPECT_EQ(empty_dir.status().code(), StatusCode::kNotFound);
  EXPECT_NE(empty_dir.status().message().find("model.safetensors.index.json"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local::safetensors
