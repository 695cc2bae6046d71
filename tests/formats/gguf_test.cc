// Round-trip and API tests for the GGUF reader and writer (formats/gguf.h). Hostile inputs are in
// gguf_corruption_test.cc.
#include "formats/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace gemma_local::gguf {
namespace {

constexpr char kName[] = "model.gguf";

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

std::vector<uint8_t> MustSerialize(const GgufWriter& w, uint64_t alignment = 32) {
  Result<std::vector<uint8_t>> bytes = w.Serialize(alignment);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? std::move(bytes).value() : std::vector<uint8_t>{};
}

GgufFile MustParse(const std::vector<uint8_t>& bytes) {
  Result<GgufFile> f = GgufFile::ParseBytes(bytes.data(), bytes.size(), kName);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(f).value() : GgufFile();
}

// Deep equality of two values, including the on-disk type of every element.
void ExpectSameValue(const Value& a, const Value& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  ASSERT_EQ(a.data.index(), b.data.index()) << where;
  if (const auto* arr = std::get_if<ArrayValue>(&a.data)) {
    const auto& brr = std::get<ArrayValue>(b.data);
    ASSERT_EQ(arr->elem_type, brr.elem_type) << where;
    ASSERT_EQ(arr->elems.size(), brr.elems.size()) << where;
    for (size_t i = 0; i < arr->elems.size(); ++i) {
      ExpectSameValue(arr->elems[i], brr.elems[i], where + "[" + std::to_string(i) + "]");
    }
  } else if (const auto* d = std::get_if<double>(&a.data)) {
    const double e = std::get<double>(b.data);
    EXPECT_TRUE((std::isnan(*d) && std::isnan(e)) || *d == e) << where;
  } else if (const auto* u = std::get_if<uint64_t>(&a.data)) {
    EXPECT_EQ(*u, std::get<uint64_t>(b.data)) << where;
  } else if (const auto* i = std::get_if<int64_t>(&a.data)) {
    EXPECT_EQ(*i, std::get<int64_t>(b.data)) << where;
  } else if (const auto* t = std::get_if<bool>(&a.data)) {
    EXPECT_EQ(*t, std::get<bool>(b.data)) << where;
  } else {
    EXPECT_EQ(std::get<std::string>(a.data), std::get<std::string>(b.data)) << where;
  }
}

// Writes `w`, parses it back, and checks the metadata came back in order and unchanged.
GgufFile RoundTrip(const GgufWriter& w, const std::vector<KeyValue>& expected) {
  GgufFile f = MustParse(MustSerialize(w));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), expected.size());
  for (size_t i = 0; i < std::min(expected.size(), f.metadata().size()); ++i) {
    EXPECT_EQ(f.metadata()[i].key, expected[i].key);
    ExpectSameValue(f.metadata()[i].value, expected[i].value, expected[i].key);
  }
  return f;
}

TEST(GgufRoundTrip, EveryScalarType) {
  const std::vector<KeyValue> kvs = {
      {"t.u8", Value::U8(255)},
      {"t.i8", {ValueType::kI8, int64_t{-128}}},
      {"t.u16", {ValueType::kU16, uint64_t{65535}}},
      {"t.i16", {ValueType::kI16, int64_t{-32768}}},
      {"t.u32", Value::U32(std::numeric_limits<uint32_t>::max())},
      {"t.i32", Value::I32(std::numeric_limits<int32_t>::min())},
      {"t.u64", Value::U64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", Value::I64(std::numeric_limits<int64_t>::min())},
      {"t.f32", Value::F32(-1.5e-7f)},
      {"t.f64", Value::F64(3.141592653589793)},
      {"t.f32nan", Value::F32(std::numeric_limits<float>::quiet_NaN())},
      {"t.true", Value::Bool(true)},
      {"t.false", Value::Bool(false)},
      {"t.string", Value::String("gemma")},
  };
  GgufWriter w;
  for (const auto& kv : kvs) w.Set(kv.key, kv.value);
  GgufFile f = RoundTrip(w, kvs);
  EXPECT_EQ(f.GetInt("t.i8").value(), -128);
  EXPECT_EQ(f.GetInt("t.u32").value(), 4294967295);
  EXPECT_EQ(f.GetInt("t.i64").value(), std::numeric_limits<int64_t>::min());
  EXPECT_FLOAT_EQ(static_cast<float>(f.GetFloat("t.f32").value()), -1.5e-7f);
  EXPECT_EQ(f.GetFloat("t.f64").value(), 3.141592653589793);
  EXPECT_EQ(f.GetFloat("t.u16").value(), 65535.0);  // integers widen to float
  EXPECT_TRUE(f.GetBool("t.true").value());
  EXPECT_FALSE(f.GetBool("t.false").value());
  EXPECT_EQ(f.GetString("t.string").value(), "gemma");
}

TEST(GgufRoundTrip, Strings) {
  const std::vector<KeyValue> kvs = {
      {"s.empty", Value::String("")},
      {"s.unicode", Value::String("żółw 🐢 日本語")},
      {"s.nul", Value::String(std::string("a\0b", 3))},
      {"s.long", Value::String(std::string(100000, 'x'))},
  };
  GgufWriter w;
  for (const auto& kv : kvs) w.Set(kv.key, kv.value);
  GgufFile f = RoundTrip(w, kvs);
  EXPECT_EQ(f.GetString("s.nul").value().size(), 3u);
}

TEST(GgufRoundTrip, ArraysOfEveryType) {
  auto arr = [](ValueType t, std::vector<Value> v) { return Value::Array(t, std::move(v)); };
  const std::vector<KeyValue> kvs = {
      {"a.u8", arr(ValueType::kU8, {Value::U8(0), Value::U8(200)})},
      {"a.i8", arr(ValueType::kI8, {{ValueType::kI8, int64_t{-1}}})},
      {"a.u16", arr(ValueType::kU16, {{ValueType::kU16, uint64_t{7}}})},
      {"a.i16", arr(ValueType::kI16, {{ValueType::kI16, int64_t{-300}}})},
      {"a.u32", Value::U32Array({1, 2, 4000000000u})},
      {"a.i32", Value::I32Array({-1, 0, 1})},
      {"a.u64", arr(ValueType::kU64, {Value::U64(1ull << 63)})},
      {"a.i64", arr(ValueType::kI64, {Value::I64(-5)})},
      {"a.f32", Value::F32Array({0.5f, -2.0f})},
      {"a.f64", arr(ValueType::kF64, {Value::F64(1e300)})},
      {"a.bool", Value::BoolArray({true, false, true})},
      {"a.string", Value::StringArray({"<pad>", "", "▁the", "🐢"})},
      {"a.empty", Value::I32Array({})},
      {"a.empty_strings", Value::StringArray({})},
  };
  GgufWriter w;
  for (const auto& kv : kvs) w.Set(kv.key, kv.value);
  GgufFile f = RoundTrip(w, kvs);
  EXPECT_EQ(f.GetIntArray("a.i32").value(), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(f.GetIntArray("a.u32").value(), (std::vector<int64_t>{1, 2, 4000000000}));
  EXPECT_EQ(f.GetFloatArray("a.f32").value(), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(f.GetFloatArray("a.i16").value(), (std::vector<double>{-300}));
  EXPECT_EQ(f.GetBoolArray("a.bool").value(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.GetStringArray("a.string").value(),
            (std::vector<std::string>{"<pad>", "", "▁the", "🐢"}));
  EXPECT_TRUE(f.GetIntArray("a.empty").value().empty());
  EXPECT_TRUE(f.GetStringArray("a.empty_strings").value().empty());
  // An element beyond int64 is reported with its index.
  Result<std::vector<int64_t>> big = f.GetIntArray("a.u64");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("element 0"), std::string::npos);
}

// `levels` arrays nested inside each other, the innermost holding one i32.
Value Nested(int levels) {
  Value v = Value::I32Array({42});
  for (int i = 1; i < levels; ++i) v = Value::Array(ValueType::kArray, {v});
  return v;
}

TEST(GgufRoundTrip, NestedArrays) {
  const std::vector<KeyValue> kvs = {
      {"n.matrix", Value::Array(ValueType::kArray,
                                {Value::I32Array({1, 2}), Value::I32Array({}),
                                 Value::StringArray({"x"}), Value::Array(ValueType::kArray, {})})},
      {"n.deepest_allowed", Nested(kMaxArrayNesting)},
  };
  GgufWriter w;
  for (const auto& kv : kvs) w.Set(kv.key, kv.value);
  GgufFile f = RoundTrip(w, kvs);
  Result<std::vector<int64_t>> wrong = f.GetIntArray("n.matrix");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("expected an array of integers, got array of array"),
            std::string::npos)
      << wrong.status().message();

  GgufWriter too_deep;
  too_deep.Set("n.too_deep", Nested(kMaxArrayNesting + 1));
  Result<std::vector<uint8_t>> bytes = too_deep.Serialize();
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bytes.status().message().find("'n.too_deep'"), std::string::npos);
}

TEST(GgufRoundTrip, UnicodeKeysAndInsertionOrder) {
  GgufWriter w;
  w.Set("zeta", Value::U32(1));
  w.Set("ключ.名前", Value::String("v"));
  w.Set("alpha", Value::U32(2));
  w.Set("zeta", Value::String("replaced"));  // replaces in place, keeps position 0
  GgufFile f = RoundTrip(w, {{"zeta", Value::String("replaced")},
                             {"ключ.名前", Value::String("v")},
                             {"alpha", Value::U32(2)}});
  EXPECT_EQ(f.GetString("ключ.名前").value(), "v");
}

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> ne;
};

const std::vector<TensorSpec>& SampleTensors() {
  static const std::vector<TensorSpec> specs = {
      {"f32.odd", DType::kF32, {3, 5, 7}},     {"f16.vec", DType::kF16, {7}},
      {"bf16.mat", DType::kBF16, {5, 3}},      {"q8_0.mat", DType::kQ8_0, {96, 5}},
      {"q4_0.cube", DType::kQ4_0, {64, 3, 2}}, {"q6_k.mat", DType::kQ6_K, {256, 3}},
      {"i32.4d", DType::kI32, {1, 1, 1, 13}},
  };
  return specs;
}

// Adds SampleTensors() with random contents; returns the contents by tensor.
std::vector<std::vector<uint8_t>> AddSampleTensors(GgufWriter& w) {
  std::vector<std::vector<uint8_t>> contents;
  uint32_t seed = 1;
  for (const auto& s : SampleTensors()) {
    uint64_t n = 1;
    for (int64_t d : s.ne) n *= static_cast<uint64_t>(d);
    auto bytes = RandomBytes(DTypeByteSize(s.dtype, n).value(), seed++);
    contents.push_back(bytes);
    EXPECT_TRUE(w.AddTensor(s.name, s.dtype, s.ne, bytes).ok()) << s.name;
  }
  return contents;
}

void ExpectSampleTensors(const GgufFile& f, const std::vector<std::vector<uint8_t>>& contents,
                         const uint8_t* base) {
  ASSERT_EQ(f.tensors().size(), SampleTensors().size());
  for (size_t i = 0; i < SampleTensors().size(); ++i) {
    const TensorSpec& s = SampleTensors()[i];
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(s.name);
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.dtype, s.dtype);
    EXPECT_EQ(t.ne, s.ne);
    EXPECT_EQ(t.n_bytes, contents[i].size());
    EXPECT_EQ(t.offset % f.alignment(), 0u);
    EXPECT_EQ((f.data_offset() + t.offset) % f.alignment(), 0u);
    // Zero copy: the view points into the caller's buffer / the mapping.
    EXPECT_EQ(t.data, base + f.data_offset() + t.offset);
    EXPECT_EQ(std::memcmp(t.data, contents[i].data(), t.n_bytes), 0);
    EXPECT_EQ(f.FindTensor(s.name), &t);
  }
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
}

TEST(GgufTensors, SeveralDTypesWithOddShapes) {
  GgufWriter w;
  w.Set("general.architecture", Value::String("gemma3"));
  auto contents = AddSampleTensors(w);
  auto bytes = MustSerialize(w);
  GgufFile f = MustParse(bytes);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.Find("general.alignment"), nullptr);  // default alignment is not written
  EXPECT_EQ(f.tensors()[0].n_elements(), 105u);
  ExpectSampleTensors(f, contents, bytes.data());
  EXPECT_EQ(f.file_size(), bytes.size());
}

class GgufAlignmentTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(GgufAlignmentTest, CustomAlignmentRoundTrips) {
  const uint64_t alignment = GetParam();
  GgufWriter w;
  w.Set("general.name", Value::String("aligned"));
  auto contents = AddSampleTensors(w);
  auto bytes = MustSerialize(w, alignment);
  GgufFile f = MustParse(bytes);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  if (alignment == 32) {
    EXPECT_EQ(f.Find("general.alignment"), nullptr);
  } else {
    EXPECT_EQ(f.GetInt("general.alignment").value(), static_cast<int64_t>(alignment));
    // Appended after the caller's keys.
    EXPECT_EQ(f.metadata().back().key, "general.alignment");
    EXPECT_EQ(f.metadata().back().value.type, ValueType::kU32);
  }
  ExpectSampleTensors(f, contents, bytes.data());
  // Re-serializing the parsed metadata (which now carries general.alignment) is stable.
  GgufWriter again;
  for (const auto& kv : f.metadata()) again.Set(kv.key, kv.value);
  AddSampleTensors(again);
  EXPECT_EQ(MustSerialize(again, alignment), bytes);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufAlignmentTest, ::testing::Values(1, 32, 64, 4096));

TEST(GgufWriter, RejectsBadAlignment) {
  GgufWriter w;
  for (uint64_t a : {uint64_t{0}, uint64_t{3}, uint64_t{48}, uint64_t{1} << 33}) {
    Result<std::vector<uint8_t>> r = w.Serialize(a);
    ASSERT_FALSE(r.ok()) << a;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::to_string(a)), std::string::npos);
  }
  w.Set("general.alignment", Value::U32(64));
  Result<std::vector<uint8_t>> r = w.Serialize(32);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("general.alignment"), std::string::npos);
  EXPECT_TRUE(w.Serialize(64).ok());
}

TEST(GgufWriter, AddTensorValidates) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("t", DType::kF32, {2}, std::vector<uint8_t>(8)).ok());
  struct Case {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    size_t bytes;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"t", DType::kF32, {2}, 8, "duplicate tensor name"},
      {"", DType::kF32, {2}, 8, "empty tensor name"},
      {"bad\xff", DType::kF32, {2}, 8, "UTF-8"},
      {"d0", DType::kF32, {}, 4, "0 dims"},
      {"d5", DType::kF32, {1, 1, 1, 1, 1}, 4, "5 dims"},
      {"zero", DType::kF32, {4, 0}, 0, "ne[1] = 0"},
      {"neg", DType::kF32, {-4}, 0, "ne[0] = -4"},
      {"overflow", DType::kF32, {1ll << 32, 1ll << 32}, 0, "overflows int64"},
      {"size", DType::kF32, {3}, 8, "data has 8 bytes, expected 12"},
      {"q4", DType::kQ4_0, {33}, 18, "not a multiple of the q4_0 block size 32"},
      {"removed", DType::kRemovedQ4_2, {32}, 0, "q4_2 was removed"},
      {"u8", DType::kU8, {4}, 4, "u8 has no GGUF type id"},
  };
  for (const Case& c : cases) {
    Status s = w.AddTensor(c.name, c.dtype, c.ne, std::vector<uint8_t>(c.bytes));
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
}

TEST(GgufWriter, RejectsValuesTheReaderWouldReject) {
  struct Case {
    std::string key;
    Value value;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"", Value::U8(1), "key #0 is empty"},
      {"bad\xc0", Value::U8(1), "not valid UTF-8"},
      {"s", Value::String("\xed\xa0\x80"), "not valid UTF-8"},  // surrogate
      {"wrong_alt", {ValueType::kU32, int64_t{1}}, "wrong C++ alternative"},
      {"range", {ValueType::kU8, uint64_t{256}}, "u8 value 256 out of range"},
      {"srange", {ValueType::kI16, int64_t{40000}}, "i16 value 40000 out of range"},
      {"mixed", Value::Array(ValueType::kU32, {Value::U32(1), Value::I32(2)}),
       "element 1: has type i32 in an array of u32"},
      {"badtype", {static_cast<ValueType>(99), uint64_t{0}}, "unknown value type 99"},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    w.Set(c.key, c.value);
    Result<std::vector<uint8_t>> r = w.Serialize();
    ASSERT_FALSE(r.ok()) << c.key;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

TEST(GgufGetters, ErrorsNameFileKeyAndTypes) {
  GgufWriter w;
  w.Set("n.u32", Value::U32(7));
  w.Set("n.big", Value::U64(std::numeric_limits<uint64_t>::max()));
  w.Set("n.str", Value::String("x"));
  w.Set("n.strs", Value::StringArray({"a"}));
  w.Set("n.ints", Value::I32Array({1}));
  GgufFile f = MustParse(MustSerialize(w));

  auto expect_error = [](const Status& s, StatusCode code, const std::string& text) {
    EXPECT_EQ(s.code(), code) << s.ToString();
    EXPECT_EQ(s.message().rfind("model.gguf: ", 0), 0u) << s.message();
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
  };
  expect_error(f.GetInt("n.nope").status(), StatusCode::kNotFound, "key 'n.nope' is missing");
  expect_error(f.GetString("n.u32").status(), StatusCode::kCorruptData,
               "key 'n.u32': expected string, got u32");
  expect_error(f.GetInt("n.str").status(), StatusCode::kCorruptData,
               "key 'n.str': expected an integer, got string");
  expect_error(f.GetInt("n.big").status(), StatusCode::kCorruptData,
               "u64 value 18446744073709551615 does not fit in int64");
  expect_error(f.GetBool("n.u32").status(), StatusCode::kCorruptData, "expected bool, got u32");
  expect_error(f.GetFloat("n.str").status(), StatusCode::kCorruptData,
               "expected a number, got string");
  expect_error(f.GetStringArray("n.ints").status(), StatusCode::kCorruptData,
               "expected an array of string, got array of i32");
  expect_error(f.GetIntArray("n.strs").status(), StatusCode::kCorruptData,
               "expected an array of integers, got array of string");
  expect_error(f.GetBoolArray("n.u32").status(), StatusCode::kCorruptData,
               "expected an array of bool, got u32");
  expect_error(f.GetFloatArray("n.missing").status(), StatusCode::kNotFound, "missing");
  EXPECT_EQ(f.GetFloat("n.big").value(), 18446744073709551615.0);
  EXPECT_EQ(f.GetFloatArray("n.ints").value(), std::vector<double>{1.0});
}

TEST(GgufParse, Version2) {
  GgufWriter w;
  w.Set("general.architecture", Value::String("gemma"));
  ASSERT_TRUE(w.AddTensor("w", DType::kF32, {4}, std::vector<uint8_t>(16, 1)).ok());
  auto bytes = MustSerialize(w);
  ASSERT_EQ(bytes[4], 3);
  bytes[4] = 2;  // v2 has the same layout as v3 (64-bit counts); only the number differs
  GgufFile f = MustParse(bytes);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.GetString("general.architecture").value(), "gemma");
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].data[0], 1);
}

TEST(GgufParse, EmptyFileWithoutTensorsOrPaddingIsAccepted) {
  // llama.cpp accepts a metadata-only file whose data-section padding was omitted.
  const uint8_t header[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0,
                            0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0};
  Result<GgufFile> f = GgufFile::ParseBytes(header, sizeof(header), kName);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_TRUE(f->tensors().empty());
}

// A fresh directory under the system temp dir, removed at the end of the test.
class GgufFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gguf_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(GgufFileTest, WriteFileThenOpenIsZeroCopyAndKeepsMappingAlive) {
  GgufWriter w;
  w.Set("general.name", Value::String("tiny"));
  auto contents = AddSampleTensors(w);
  const std::string path = (dir_ / "tiny.gguf").string();
  ASSERT_TRUE(w.WriteFile(path, 64).ok());
  // Same bytes as Serialize, and no temp file left behind.
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(on_disk, MustSerialize(w, 64));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);

  Result<std::shared_ptr<const MappedFile>> mapping = MappedFile::Open(path);
  ASSERT_TRUE(mapping.ok());
  const uint8_t* base = (*mapping)->data();
  Result<GgufFile> parsed = GgufFile::Parse(*mapping);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  mapping = MappedFile::Open(path);  // drop our reference; the GgufFile holds the mapping
  EXPECT_EQ(parsed->path(), path);
  GgufFile copy = *parsed;
  parsed = NotFoundError("dropped");  // destroy the original; the copy shares the mapping
  ExpectSampleTensors(copy, contents, base);

  Result<GgufFile> opened = GgufFile::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->alignment(), 64u);
  EXPECT_EQ(opened->GetString("general.name").value(), "tiny");

  // Overwriting an existing file goes through rename too.
  GgufWriter small;
  small.Set("general.name", Value::String("replaced"));
  ASSERT_TRUE(small.WriteFile(path).ok());
  EXPECT_EQ(GgufFile::Open(path)->GetString("general.name").value(), "replaced");
  // The first copy still reads its own (old, still mapped) bytes.
  ExpectSampleTensors(copy, contents, base);
}

TEST_F(GgufFileTest, IoErrorsNameThePath) {
  GgufWriter w;
  const std::string missing_dir = (dir_ / "no" / "such" / "dir" / "x.gguf").string();
  Status s = w.WriteFile(missing_dir);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find(missing_dir), std::string::npos) << s.message();

  const std::string nonexistent = (dir_ / "absent.gguf").string();
  Result<GgufFile> r = GgufFile::Open(nonexistent);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find(nonexistent), std::string::npos);

  // A corrupt file on disk names its path.
  const std::string junk = (dir_ / "junk.gguf").string();
  std::ofstream(junk) << "not a gguf file";
  r = GgufFile::Open(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind(junk + ": bad magic", 0), 0u) << r.status().message();

  // An invalid write leaves no file behind.
  GgufWriter bad;
  bad.Set("", Value::U8(0));
  const std::string target = (dir_ / "bad.gguf").string();
  EXPECT_FALSE(bad.WriteFile(target).ok());
  EXPECT_FALSE(std::filesystem::exists(target));
}

// Valid files for the fuzzer's seed corpus (committed in tests/fuzz/seeds/gguf_fuzz/). Always
// checked here; written out only when GGUF_SEED_CORPUS_DIR is set, to regenerate the seeds (see
// tests/fuzz/gguf_fuzz.cc for the command).
TEST(GgufSeedCorpus, SeedsParseAndAreWrittenOnRequest) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  {
    GgufWriter w;
    seeds.emplace_back("empty", MustSerialize(w));
  }
  {
    GgufWriter w;
    w.Set("general.architecture", Value::String("gemma3"));
    w.Set("gemma3.block_count", Value::U32(2));
    w.Set("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6f));
    w.Set("tokenizer.ggml.tokens", Value::StringArray({"<pad>", "<eos>", "▁a", "b"}));
    w.Set("tokenizer.ggml.scores", Value::F32Array({0, 0, -1.5f, -2}));
    w.Set("tokenizer.ggml.token_type", Value::I32Array({3, 3, 1, 1}));
    w.Set("tokenizer.ggml.add_bos_token", Value::Bool(true));
    w.Set("nested", Value::Array(ValueType::kArray, {Value::U32Array({1}), Value::BoolArray({})}));
    w.Set("general.size", Value::U64(123456789));
    w.Set("general.offset", Value::I64(-3));
    w.Set("general.ratio", Value::F64(0.25));
    EXPECT_TRUE(w.AddTensor("token_embd.weight", DType::kQ8_0, {32, 4}, RandomBytes(136, 7)).ok());
    EXPECT_TRUE(w.AddTensor("output_norm.weight", DType::kF32, {8}, RandomBytes(32, 8)).ok());
    seeds.emplace_back("metadata_and_tensors", MustSerialize(w));
    seeds.emplace_back("alignment_1", MustSerialize(w, 1));
    seeds.emplace_back("alignment_64", MustSerialize(w, 64));
  }
  {
    GgufWriter w;
    AddSampleTensors(w);
    seeds.emplace_back("dtypes", MustSerialize(w));
  }
  const char* dir = std::getenv("GGUF_SEED_CORPUS_DIR");
  for (const auto& [name, bytes] : seeds) {
    MustParse(bytes);
    if (dir == nullptr) continue;
    std::filesystem::create_directories(dir);
    // ".bin", not ".gguf": *.gguf is git-ignored, and the seeds are committed.
    std::ofstream out(std::filesystem::path(dir) / (name + ".bin"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << name;
  }
}

}  // namespace
}  // namespace gemma_local::gguf
