// Hostile and corrupt safetensors inputs: every case must fail cleanly (no crash, no sanitizer
// report) with a message that starts with the file name and names the tensor or field at fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "formats/safetensors.h"

namespace gemma_local::safetensors {
namespace {

namespace fs = std::filesystem;

constexpr const char* kName = "hostile.safetensors";

std::vector<uint8_t> Le64(uint64_t v) {
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

// A file with the given header (space-padded to a multiple of 8) and `data_bytes` of payload.
std::vector<uint8_t> FromHeader(std::string header, size_t data_bytes) {
  while (header.size() % 8 != 0) header += ' ';
  std::vector<uint8_t> out = Le64(header.size());
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(0xA0 + i));
  return out;
}

std::vector<uint8_t> Raw(uint64_t length_prefix, const std::string& rest) {
  std::vector<uint8_t> out = Le64(length_prefix);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// One tensor 'a' of type F32 with the given fields spliced in verbatim.
std::string One(const std::string& fields) { return "{\"a\":{" + fields + "}}"; }

const std::string kGoodA = R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16])";
const std::string kGoodB = R"("b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]})";
// A valid two-tensor header with 19 data bytes, for cases that break one piece of it.
std::string TwoWith(const std::string& a_fields) {
  return "{\"a\":{" + a_fields + "}," + kGoodB + "}";
}

struct Case {
  std::string name;
  std::vector<uint8_t> bytes;
  std::vector<std::string> needles;  // all must appear in the message
};

std::vector<Case> Cases() {
  const std::string big_dims = "[" + [] {
    std::string s;
    for (int i = 0; i < 65; ++i) s += (i ? ",1" : "1");
    return s;
  }() + "]";
  std::vector<Case> c = {
      // Framing.
      {"empty_file", {}, {"0 bytes", "8-byte header length"}},
      {"shorter_than_8_bytes", {1, 0, 0, 0, 0}, {"5 bytes", "8-byte header length"}},
      {"header_length_exceeds_file", Raw(100, "{}      "), {"header length 100", "8 bytes"}},
      {"header_length_2_pow_63",
       Raw(1ull << 63, "{}      "),
       {"header length 9223372036854775808", "limit"}},
      {"header_length_all_ones", Raw(~0ull, "{}"), {"18446744073709551615", "limit"}},
      {"header_length_over_cap",
       Raw(kMaxHeaderBytes + 1, "{}      "),
       {"header length 104857601", "limit of 104857600"}},
      {"header_length_zero", Raw(0, ""), {"header length is 0"}},
      // Header encoding and JSON syntax.
      {"header_not_json", FromHeader("this is not json", 0), {"not valid JSON", "line 1"}},
      {"header_trailing_garbage", FromHeader("{} x", 0), {"not valid JSON"}},
      {"header_truncated_json", FromHeader(R"({"a":{"dtype":"F32")", 0), {"not valid JSON"}},
      {"header_nul_padding",
       Raw(8, std::string("{}\0\0\0\0\0\0", 8)),
       {"not valid JSON", "NUL byte at byte 2"}},
      {"header_nul_then_junk",
       FromHeader(std::string("{}\0{\"a\":5}", 9), 0),
       {"NUL byte at byte 2"}},
      {"header_comment", FromHeader("/**/{}", 0), {"not valid JSON"}},
      {"header_nan",
       FromHeader(One(R"("dtype":"F32","shape":[NaN],"data_offsets":[0,4])"), 4),
       {"not valid JSON"}},
      {"header_number_overflow",
       FromHeader(One(R"("dtype":"F32","shape":[1e400],"data_offsets":[0,4])"), 4),
       {"not valid JSON", "1e400"}},
      {"header_array", FromHeader("[1,2]", 0), {"must be a JSON object", "array"}},
      {"header_string", FromHeader("\"abc\"", 0), {"must be a JSON object", "string 'abc'"}},
      {"header_null", FromHeader("null", 0), {"must be a JSON object", "null"}},
      {"header_deep_nesting",
       FromHeader(std::string(50000, '['), 0),
       {"must be a JSON object", "array"}},
      {"header_invalid_utf8",
       FromHeader("{\"a\xFF\":{}}", 0),
       {"not valid UTF-8 at byte 3", "{\"a\\xFF"}},
      {"tensor_name_overlong_utf8",
       FromHeader("{\"na\xC0\xAFme\":{" + kGoodA + "}}", 16),
       {"not valid UTF-8 at byte 4", "na\\xC0\\xAFme"}},
      {"tensor_name_surrogate_utf8",
       FromHeader("{\"x\xED\xA0\x80\":{" + kGoodA + "}}", 16),
       {"not valid UTF-8", "x\\xED\\xA0\\x80"}},
      {"tensor_name_lone_surrogate_escape",
       FromHeader("{\"\\ud800x\":{" + kGoodA + "}}", 16),
       {"not valid JSON", "surrogate"}},
      {"empty_tensor_name", FromHeader("{\"\":{" + kGoodA + "}}", 16), {"tensor name is empty"}},
      {"duplicate_tensor_name",
       FromHeader("{\"a\":{" + kGoodA + "},\"a\":{" + kGoodA + "}}", 16),
       {"duplicate tensor name 'a'"}},
      // Entries.
      {"entry_not_object",
       FromHeader(R"({"a":5})", 0),
       {"tensor 'a'", "entry must be an object", "integer 5"}},
      {"entry_array", FromHeader(R"({"a":[0,4]})", 0), {"tensor 'a'", "entry must be", "array"}},
      {"unknown_extra_field",
       FromHeader(One(kGoodA + R"(,"offsets":[0,16])"), 16),
       {"tensor 'a'", "unknown field 'offsets'"}},
      {"duplicate_field",
       FromHeader(One(kGoodA + R"(,"dtype":"F32")"), 16),
       {"tensor 'a'", "duplicate field 'dtype'"}},
      {"missing_dtype",
       FromHeader(One(R"("shape":[4],"data_offsets":[0,16])"), 16),
       {"tensor 'a'", "missing field 'dtype'"}},
      {"missing_shape",
       FromHeader(One(R"("dtype":"F32","data_offsets":[0,16])"), 16),
       {"tensor 'a'", "missing field 'shape'"}},
      {"missing_data_offsets",
       FromHeader(One(R"("dtype":"F32","shape":[4])"), 16),
       {"tensor 'a'", "missing field 'data_offsets'"}},
      // dtype.
      {"unknown_dtype",
       FromHeader(TwoWith(R"("dtype":"F4","shape":[2,2],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "unknown dtype 'F4'", "known: F32"}},
      {"lowercase_dtype",
       FromHeader(TwoWith(R"("dtype":"f32","shape":[2,2],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "unknown dtype 'f32'"}},
      {"dtype_not_string",
       FromHeader(TwoWith(R"("dtype":5,"shape":[2,2],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "field 'dtype' must be a string", "integer 5"}},
      {"dtype_array",
       FromHeader(TwoWith(R"("dtype":["F32"],"shape":[2,2],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "field 'dtype'", "array"}},
      // shape.
      {"shape_not_array",
       FromHeader(TwoWith(R"("dtype":"F32","shape":4,"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "field 'shape'", "integer 4"}},
      {"shape_object",
       FromHeader(TwoWith(R"("dtype":"F32","shape":{},"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "field 'shape'", "object"}},
      {"shape_negative_dim",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[2,-2],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "shape[1] is negative integer -2"}},
      {"shape_fractional_dim",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[2.5],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "shape[0]", "2.5"}},
      {"shape_float_integral_dim",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4.0],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "shape[0]", "4.0"}},
      {"shape_string_dim",
       FromHeader(TwoWith(R"("dtype":"F32","shape":["4"],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "shape[0]", "string '4'"}},
      {"shape_nested_dim",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[[4]],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "shape[0]", "array"}},
      {"shape_dim_over_int64",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,16])"),
                  19),
       {"tensor 'a'", "shape[0] is 9223372036854775808"}},
      {"shape_dim_over_uint64",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,16])"),
                  19),
       {"tensor 'a'", "shape[0]", "18446744073709551616"}},
      {"shape_product_overflow",
       FromHeader(TwoWith(R"("dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,16])"),
                  19),
       {"tensor 'a'", "element count", "[4294967296, 4294967296]", "overflows"}},
      {"shape_byte_size_overflow",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[2305843009213693952,4],"data_offsets":[0,16])"),
                  19),
       {"tensor 'a'", "of F32", "overflows"}},
      {"shape_too_many_dims",
       FromHeader(TwoWith(R"("dtype":"F32","shape":)" + big_dims + R"(,"data_offsets":[0,16])"),
                  19),
       {"tensor 'a'", "more than 64 dimensions"}},
      // data_offsets.
      {"offsets_not_array",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":"0")"), 19),
       {"tensor 'a'", "field 'data_offsets'", "string '0'"}},
      {"offsets_one_element",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0])"), 19),
       {"tensor 'a'", "data_offsets must hold exactly 2", "got 1"}},
      {"offsets_three_elements",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0,16,16])"), 19),
       {"tensor 'a'", "data_offsets must hold exactly 2", "got more"}},
      {"offsets_negative",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[-1,15])"), 19),
       {"tensor 'a'", "data_offsets[0] is negative integer -1"}},
      {"offsets_float",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0,16.0])"), 19),
       {"tensor 'a'", "data_offsets[1]", "16.0"}},
      {"offsets_begin_after_end",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[16,0])"), 19),
       {"tensor 'a'", "[16, 0]", "begin > end"}},
      {"offsets_end_past_data",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0,1000])"), 19),
       {"tensor 'a'", "[0, 1000)", "past the data section", "19 bytes"}},
      {"offsets_huge",
       FromHeader(
           TwoWith(
               R"("dtype":"F32","shape":[4],"data_offsets":[18446744073709551615,18446744073709551615])"),
           19),
       {"tensor 'a'", "past the data section"}},
      {"offsets_size_mismatch",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0,10])"), 19),
       {"tensor 'a'", "[0, 10) hold 10 bytes", "shape [4] of F32 needs 16"}},
      {"zero_size_with_bytes",
       FromHeader(TwoWith(R"("dtype":"F32","shape":[0,4],"data_offsets":[0,16])"), 19),
       {"tensor 'a'", "hold 16 bytes", "needs 0"}},
      // Layout.
      {"overlapping_tensors",
       FromHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                  24),
       {"tensor 'b'", "[8, 24)", "overlaps tensor 'a'", "[0, 16)"}},
      {"identical_offsets",
       FromHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}})",
                  16),
       {"tensor 'b'", "overlaps tensor 'a'"}},
      {"empty_tensor_inside_another",
       FromHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                  16),
       {"tensor 'z'", "[8, 8)", "overlaps tensor 'a'"}},
      {"hole_between_tensors",
       FromHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"U8","shape":[3],"data_offsets":[20,23]}})",
                  23),
       {"hole of 4", "tensor 'a' (ends at 16)", "tensor 'b' (starts at 20)"}},
      {"hole_before_first_tensor",
       FromHeader(One(R"("dtype":"F32","shape":[4],"data_offsets":[4,20])"), 20),
       {"hole of 4", "before tensor 'a'"}},
      {"trailing_bytes",
       FromHeader(TwoWith(kGoodA), 24),
       {"5 trailing bytes", "last tensor 'b'", "holds 24 bytes"}},
      {"data_without_tensors", FromHeader("{}", 3), {"3 bytes", "lists no tensors"}},
      {"only_metadata_with_data",
       FromHeader(R"({"__metadata__":{"k":"v"}})", 1),
       {"1 bytes", "lists no tensors"}},
      // __metadata__.
      {"metadata_array",
       FromHeader(R"({"__metadata__":[]})", 0),
       {"__metadata__ must be an object", "array"}},
      {"metadata_string",
       FromHeader(R"({"__metadata__":"x"})", 0),
       {"__metadata__ must be an object", "string 'x'"}},
      {"metadata_null",
       FromHeader(R"({"__metadata__":null})", 0),
       {"__metadata__ must be an object", "null"}},
      {"metadata_value_number",
       FromHeader(R"({"__metadata__":{"k":1}})", 0),
       {"__metadata__ key 'k'", "must be a string", "integer 1"}},
      {"metadata_value_object",
       FromHeader(R"({"__metadata__":{"k":{"x":"y"}}})", 0),
       {"__metadata__ key 'k'", "must be a string", "object"}},
      {"metadata_value_deep",
       FromHeader(R"({"__metadata__":{"k":)" + std::string(10000, '['), 0),
       {"__metadata__ key 'k'", "array"}},
      {"metadata_duplicate_key",
       FromHeader(R"({"__metadata__":{"k":"1","k":"2"}})", 0),
       {"__metadata__", "duplicate key 'k'"}},
      {"metadata_twice",
       FromHeader(R"({"__metadata__":{},"__metadata__":{}})", 0),
       {"duplicate __metadata__"}},
  };
  return c;
}

// The bytes of a case in an exactly-sized heap block, so any over-read trips ASan.
std::unique_ptr<uint8_t[]> ExactCopy(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() == 0 ? 1 : bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return copy;
}

void ExpectCleanError(const Result<SafetensorsFile>& r, const std::string& file,
                      const std::vector<std::string>& needles, const std::string& case_name) {
  ASSERT_FALSE(r.ok()) << case_name << ": parsed successfully";
  const std::string& msg = r.status().message();
  EXPECT_EQ(msg.rfind(file + ": ", 0), 0u) << case_name << ": " << msg;
  for (const std::string& n : needles) {
    EXPECT_NE(msg.find(n), std::string::npos)
        << case_name << ": message lacks \"" << n << "\": " << msg;
  }
}

TEST(SafetensorsCorruptionTest, TableOfHostileFiles) {
  const std::vector<Case> cases = Cases();
  EXPECT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<uint8_t[]> copy = ExactCopy(c.bytes);
    Result<SafetensorsFile> r = SafetensorsFile::ParseBytes(copy.get(), c.bytes.size(), kName);
    ExpectCleanError(r, kName, c.needles, c.name);
  }
}

TEST(SafetensorsCorruptionTest, ErrorCodesAndExactMessage) {
  auto parse = [](const std::vector<uint8_t>& b) {
    return SafetensorsFile::ParseBytes(b.data(), b.size(), "model.safetensors");
  };
  Result<SafetensorsFile> mismatch = parse(
      FromHeader(R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,10]}})", 10));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kCorruptData);
  EXPECT_EQ(mismatch.status().message(),
            "model.safetensors: tensor 'model.norm.weight': data_offsets [0, 10) hold 10 bytes, "
            "shape [4] of F32 needs 16");
  Result<SafetensorsFile> unknown =
      parse(FromHeader(One(R"("dtype":"F6_E2M3","shape":[1],"data_offsets":[0,1])"), 1));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(parse({}).ok());
  EXPECT_EQ(parse({}).status().code(), StatusCode::kCorruptData);
}

// A valid small file with metadata, three tensors (one empty); every proper prefix must fail.
std::vector<uint8_t> ValidSmallFile() {
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  EXPECT_TRUE(w.AddTensor("w", DType::kF32, {2, 3}, std::vector<uint8_t>(24, 1)).ok());
  EXPECT_TRUE(w.AddTensor("e", DType::kBF16, {0, 3}, {}).ok());
  EXPECT_TRUE(w.AddTensor("b", DType::kU8, {5}, {1, 2, 3, 4, 5}).ok());
  Result<std::vector<uint8_t>> bytes = w.Serialize();
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(SafetensorsCorruptionTest, TruncationAtEveryByteOffset) {
  const std::vector<uint8_t> full = ValidSmallFile();
  ASSERT_TRUE(SafetensorsFile::ParseBytes(full.data(), full.size(), kName).ok());
  for (size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    std::vector<uint8_t> prefix(full.begin(), full.begin() + len);
    std::unique_ptr<uint8_t[]> copy = ExactCopy(prefix);
    Result<SafetensorsFile> r = SafetensorsFile::ParseBytes(copy.get(), len, kName);
    ExpectCleanError(r, kName, {}, "truncated to " + std::to_string(len));
  }
}

// Every single-byte corruption of the file either still parses or fails with a clean error; a
// successful parse must still describe an exact tiling of the data section.
TEST(SafetensorsCorruptionTest, ByteFlipSweepNeverCrashes) {
  const std::vector<uint8_t> full = ValidSmallFile();
  const uint8_t replacements[] = {0x00, 0xFF, '"', '{', '}', '[', ']', ',', ':', '-', '9', ' '};
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t r : replacements) {
      std::vector<uint8_t> mutated = full;
      mutated[i] = r;
      std::unique_ptr<uint8_t[]> copy = ExactCopy(mutated);
      Result<SafetensorsFile> res = SafetensorsFile::ParseBytes(copy.get(), mutated.size(), kName);
      if (!res.ok()) {
        EXPECT_EQ(res.status().message().rfind(std::string(kName) + ": ", 0), 0u);
        continue;
      }
      uint64_t covered = 0;
      for (const Tensor& t : res->tensors()) {
        EXPECT_EQ(t.offset, covered) << t.name;
        covered = t.offset + t.n_bytes;
        EXPECT_GE(t.data, copy.get());
        EXPECT_LE(t.data + t.n_bytes, copy.get() + mutated.size());
      }
    }
  }
}

TEST(SafetensorsCorruptionTest, HostileFileOnDiskNamesThePath) {
  const fs::path path =
      fs::temp_directory_path() / ("st_corrupt_" + std::to_string(::getpid()) + ".safetensors");
  const std::vector<uint8_t> bytes =
      FromHeader(TwoWith(R"("dtype":"F32","shape":[4],"data_offsets":[0,10])"), 19);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  Result<SafetensorsFile> r = SafetensorsFile::Open(path.string());
  ExpectCleanError(r, path.string(), {"tensor 'a'", "hold 10 bytes"}, "on disk");
  Result<SafetensorsCheckpoint> ck = SafetensorsCheckpoint::Open(path.string());
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().message().rfind(path.string() + ": ", 0), 0u) << ck.status().message();
  fs::remove(path);
}

// ---- Sharded checkpoints with a hostile or inconsistent index. ----

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("st_index_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void WriteShard(const std::string& path, const std::vector<std::string>& names) {
  SafetensorsWriter w;
  for (const std::string& n : names)
    EXPECT_TRUE(w.AddTensor(n, DType::kF32, {2}, std::vector<uint8_t>(8, 3)).ok());
  EXPECT_TRUE(w.WriteFile(path).ok());
}

// Shard 1 holds t0, t1; shard 2 holds t2, t3; the index matches unless a case changes it.
std::string IndexJson(const std::string& weight_map_body) {
  return R"({"metadata":{"total_size":32},"weight_map":{)" + weight_map_body + "}}";
}
const std::string kGoodMap = std::string(R"("t0":")") + kShard1 + R"(","t1":")" + kShard1 +
                             R"(","t2":")" + kShard2 + R"(","t3":")" + kShard2 + R"(")";

struct IndexCase {
  std::string name;
  std::function<void(const std::string& dir)> mutate;  // applied to a valid checkpoint
  StatusCode code;
  std::vector<std::string> needles;
  bool open_dir = true;  // else open the index path
};

std::vector<IndexCase> IndexCases() {
  auto index_text = [](std::string text) {
    return
        [text](const std::string& dir) { WriteText(dir + "/model.safetensors.index.json", text); };
  };
  const StatusCode kCorrupt = StatusCode::kCorruptData;
  return {
      {"missing_shard",
       [](const std::string& dir) { fs::remove(dir + "/" + kShard2); },
       StatusCode::kNotFound,
       {"shard '" + std::string(kShard2) + "'", "not found"}},
      {"shard_path_traversal",
       index_text(
           IndexJson(R"("t0":"../x.safetensors",)" + kGoodMap.substr(kGoodMap.find(",") + 1))),
       kCorrupt,
       {"tensor 't0'", "'../x.safetensors'", "plain file name"}},
      {"shard_absolute_path",
       index_text(IndexJson(R"("t9":"/etc/passwd",)" + kGoodMap)),
       kCorrupt,
       {"tensor 't9'", "'/etc/passwd'", "plain file name"}},
      {"shard_subdirectory",
       index_text(IndexJson(R"("t9":"sub/x.safetensors",)" + kGoodMap)),
       kCorrupt,
       {"'sub/x.safetensors'"}},
      {"shard_name_with_nul",
       index_text(IndexJson(R"("t9":"x\u0000.safetensors",)" + kGoodMap)),
       kCorrupt,
       {"tensor 't9'", "plain file name"}},
      {"weight_map_not_object",
       index_text(R"({"weight_map":["t0"]})"),
       kCorrupt,
       {"'weight_map' must be an object", "array"}},
      {"weight_map_string",
       index_text(R"({"weight_map":"x"})"),
       kCorrupt,
       {"'weight_map' must be an object", "string 'x'"}},
      {"weight_map_value_not_string",
       index_text(IndexJson(R"("t0":1)")),
       kCorrupt,
       {"tensor 't0'", "shard must be a file name string", "number 1"}},
      {"weight_map_missing", index_text(R"({"metadata":{}})"), kCorrupt, {"no 'weight_map'"}},
      {"weight_map_empty", index_text(IndexJson("")), kCorrupt, {"lists no tensors"}},
      {"weight_map_duplicate_tensor",
       index_text(IndexJson(kGoodMap + R"(,"t0":")" + kShard2 + R"(")")),
       kCorrupt,
       {"lists tensor 't0' twice"}},
      {"metadata_not_object",
       index_text(R"({"metadata":[],"weight_map":{)" + kGoodMap + "}}"),
       kCorrupt,
       {"'metadata' must be an object"}},
      {"index_invalid_json", index_text("{\"weight_map\": {"), kCorrupt, {"not valid JSON"}},
      {"index_not_object", index_text("[]"), kCorrupt, {"must be a JSON object"}},
      {"index_nul_then_junk",
       index_text(IndexJson(kGoodMap) + std::string("\0junk", 5)),
       kCorrupt,
       {"NUL byte"}},
      {"index_invalid_utf8", index_text("{\"weight_map\":{\"\xFF\":\"x\"}}"), kCorrupt, {"UTF-8"}},
      {"index_deep_nesting",
       index_text(R"({"other":)" + std::string(5000, '[')),
       kCorrupt,
       {"deeper than 64"}},
      {"tensor_listed_but_absent",
       index_text(IndexJson(kGoodMap + R"(,"ghost":")" + kShard1 + R"(")")),
       kCorrupt,
       {"tensor 'ghost'", std::string("shard '") + kShard1 + "'", "does not contain it"}},
      {"tensor_in_shard_not_in_index",
       index_text(IndexJson(kGoodMap.substr(0, kGoodMap.rfind(",")))),
       kCorrupt,
       {"tensor 't3'", std::string("shard '") + kShard2 + "'", "does not list it"}},
      {"tensor_assigned_to_wrong_shard",
       index_text(IndexJson(std::string(R"("t0":")") + kShard2 + R"(","t1":")" + kShard1 +
                            R"(","t2":")" + kShard2 + R"(","t3":")" + kShard2 + R"(")")),
       kCorrupt,
       {"tensor 't0'", "is in shard '" + std::string(kShard1),
        "assigns it to shard '" + std::string(kShard2)}},
      {"same_tensor_in_two_shards",
       [](const std::string& dir) {
         WriteShard(dir + "/" + kShard2, {"t2", "t3", "t0"});
       },
       kCorrupt,
       {"tensor 't0'", "appears in both", std::string(kShard1), std::string(kShard2)}},
      {"index_path_opened_directly",
       index_text(IndexJson(kGoodMap + R"(,"ghost":"nope.st")")),
       StatusCode::kNotFound,
       {"shard 'nope.st'", "'ghost'", "not found"},
       /*open_dir=*/false},
  };
}

TEST(SafetensorsCorruptionTest, TableOfHostileIndexes) {
  const std::vector<IndexCase> cases = IndexCases();
  for (const IndexCase& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedTempDir tmp;
    const std::string dir = tmp.path();
    WriteShard(dir + "/" + kShard1, {"t0", "t1"});
    WriteShard(dir + "/" + kShard2, {"t2", "t3"});
    const std::string index_path = dir + "/model.safetensors.index.json";
    WriteText(index_path, IndexJson(kGoodMap));
    ASSERT_TRUE(SafetensorsCheckpoint::Open(dir).ok());  // valid before the mutation
    c.mutate(dir);
    Result<SafetensorsCheckpoint> r = SafetensorsCheckpoint::Open(c.open_dir ? dir : index_path);
    ASSERT_FALSE(r.ok()) << c.name << ": opened successfully";
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    const std::string& msg = r.status().message();
    EXPECT_EQ(msg.rfind(index_path + ": ", 0), 0u) << msg;
    for (const std::string& n : c.needles) {
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\": " << msg;
    }
  }
}

TEST(SafetensorsCorruptionTest, CorruptShardErrorNamesTheShard) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  WriteShard(dir + "/" + kShard1, {"t0", "t1"});
  const std::vector<uint8_t> bad =
      FromHeader(R"({"t2":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("t3":{"dtype":"F32","shape":[3],"data_offsets":[8,16]}})",
                 16);
  {
    std::ofstream out(dir + "/" + kShard2, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bad.data()), static_cast<std::streamsize>(bad.size()));
  }
  WriteText(dir + "/model.safetensors.index.json", IndexJson(kGoodMap));
  Result<SafetensorsCheckpoint> r = SafetensorsCheckpoint::Open(dir);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  EXPECT_EQ(msg.rfind(dir + "/" + kShard2 + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("tensor 't3'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape [3] of F32 needs 12"), std::string::npos) << msg;
}

}  // namespace
}  // namespace gemma_local::safetensors
