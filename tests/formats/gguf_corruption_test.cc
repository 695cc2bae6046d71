// Hostile and corrupt GGUF inputs. Every case must fail cleanly (no crash, no over-read: run under
// ASan), with the right StatusCode and a message that names the file and the key, tensor or field.
//
// Inputs are handed to the parser in exactly-sized heap buffers so that ASan flags any read past
// the end.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace gemma_local::gguf {
namespace {

constexpr char kName[] = "model.gguf";
constexpr uint64_t k2Pow63 = uint64_t{1} << 63;

// GGUF value type ids and ggml type ids used below.
constexpr uint32_t kTU8 = 0, kTU32 = 4, kTBool = 7, kTString = 8, kTArray = 9, kTU64 = 10;
constexpr uint32_t kTI32 = 5;
constexpr uint32_t kGgmlF32 = 0, kGgmlQ4_0 = 2, kGgmlQ4_2 = 4;

// Assembles GGUF bytes field by field (little-endian), so any field can hold any value.
class Bytes {
 public:
  Bytes& Raw(std::string_view s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& U(uint64_t v, int width) {
    for (int i = 0; i < width; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& U8(uint8_t v) { return U(v, 1); }
  Bytes& U32(uint32_t v) { return U(v, 4); }
  Bytes& U64(uint64_t v) { return U(v, 8); }
  Bytes& I64(int64_t v) { return U(static_cast<uint64_t>(v), 8); }
  Bytes& Str(std::string_view s) { return U64(s.size()).Raw(s); }
  Bytes& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return Raw("GGUF").U32(version).U64(n_tensors).U64(n_kv);
  }
  Bytes& Key(std::string_view key, uint32_t type) { return Str(key).U32(type); }
  Bytes& Tensor(std::string_view name, const std::vector<int64_t>& ne, uint32_t type,
                uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) I64(d);
    return U32(type).U64(offset);
  }
  Bytes& Pad(uint64_t alignment = 32) {
    while (b_.size() % alignment != 0) b_.push_back(0);
    return *this;
  }
  Bytes& Zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  Bytes& Cut(size_t n) {  // drops the last n bytes
    b_.resize(b_.size() - n);
    return *this;
  }
  operator std::vector<uint8_t>() const { return b_; }  // NOLINT: builder sugar

 private:
  std::vector<uint8_t> b_;
};

// A small valid file: two keys and two f32 tensors ("a" [16] at 0, "b" [8] at 64).
Bytes ValidTwoTensors() {
  return Bytes()
      .Header(3, 2, 2)
      .Key("general.name", kTString)
      .Str("tiny")
      .Key("general.count", kTU32)
      .U32(7)
      .Tensor("a", {16}, kGgmlF32, 0)
      .Tensor("b", {8}, kGgmlF32, 64)
      .Pad()
      .Zeros(96);
}

// One f32 tensor [8] named `name` at `offset`, with 32 bytes of data after the padding.
Bytes OneTensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type,
                uint64_t offset = 0) {
  return Bytes().Header(3, 1, 0).Tensor(name, ne, type, offset).Pad().Zeros(32);
}

Result<GgufFile> ParseExact(const std::vector<uint8_t>& bytes) {
  // An exactly-sized heap copy: ASan catches any read past the end.
  std::unique_ptr<uint8_t[]> copy(bytes.empty() ? nullptr : new uint8_t[bytes.size()]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return GgufFile::ParseBytes(copy.get(), bytes.size(), kName);
}

std::vector<uint8_t> ValidFromWriter() {
  GgufWriter w;
  w.Set("general.architecture", Value::String("gemma3"));
  w.Set("gemma3.block_count", Value::U32(26));
  w.Set("gemma3.rope.freq_base", Value::F32(10000.0f));
  w.Set("tokenizer.ggml.add_bos_token", Value::Bool(true));
  w.Set("tokenizer.ggml.tokens", Value::StringArray({"<pad>", "<eos>", "▁hello"}));
  w.Set("tokenizer.ggml.token_type", Value::I32Array({3, 3, 1}));
  w.Set("nested", Value::Array(ValueType::kArray, {Value::U32Array({1, 2}), Value::I32Array({})}));
  w.Set("general.i64", Value::I64(-9));
  EXPECT_TRUE(
      w.AddTensor("blk.0.attn_q.weight", DType::kQ4_0, {32, 2}, std::vector<uint8_t>(36, 0x11))
          .ok());
  // Last tensor ends on an alignment boundary, so the file has no trailing padding and every
  // strict prefix is truncated.
  EXPECT_TRUE(
      w.AddTensor("output_norm.weight", DType::kF32, {8}, std::vector<uint8_t>(32, 0x22)).ok());
  Result<std::vector<uint8_t>> bytes = w.Serialize();
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

struct CorruptCase {
  std::string name;
  std::vector<uint8_t> bytes;
  StatusCode code;
  std::vector<std::string> expect;  // substrings of the message (besides the file name)
};

std::vector<CorruptCase> Cases() {
  const StatusCode kCorrupt = StatusCode::kCorruptData;
  const StatusCode kUnsupported = StatusCode::kUnsupported;
  std::vector<uint8_t> valid = ValidFromWriter();
  auto prefix = [&](size_t n) { return std::vector<uint8_t>(valid.begin(), valid.begin() + n); };
  auto with_version = [](uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
    return Bytes().Raw("GGUF").U8(b0).U8(b1).U8(b2).U8(b3).U64(0).U64(0);
  };
  Bytes bomb = Bytes().Header(3, 0, 1).Key("bomb", kTArray);
  for (int i = 0; i < 100000; ++i) bomb.U32(kTArray).U64(1);
  Bytes shallow_bomb = Bytes().Header(3, 0, 1).Key("bomb", kTArray);
  for (int i = 0; i < kMaxArrayNesting; ++i) shallow_bomb.U32(kTArray).U64(1);
  shallow_bomb.U32(kTU8).U64(0);  // 9 levels of arrays
  const std::string long_name(70000, 'n');

  return {
      // --- header ---
      {"empty_file", {}, kCorrupt, {"empty file"}},
      {"truncated_magic", Bytes().Raw("GG"), kCorrupt, {"truncated", "magic"}},
      {"bad_magic", Bytes().Raw("GGML").U32(3).U64(0).U64(0), kCorrupt, {"bad magic", "GGML"}},
      {"truncated_version", Bytes().Raw("GGUF").U8(3), kCorrupt, {"truncated", "version"}},
      {"version_0", with_version(0, 0, 0, 0), kCorrupt, {"version 0"}},
      {"version_1", with_version(1, 0, 0, 0), kUnsupported, {"version 1", "not supported"}},
      {"version_4", with_version(4, 0, 0, 0), kUnsupported, {"version 4"}},
      {"big_endian_v3", with_version(0, 0, 0, 3), kUnsupported, {"big-endian", "version 3"}},
      {"truncated_tensor_count",
       Bytes().Raw("GGUF").U32(3).U32(0),
       kCorrupt,
       {"truncated", "tensor_count"}},
      {"truncated_kv_count",
       Bytes().Raw("GGUF").U32(3).U64(0).U32(0),
       kCorrupt,
       {"truncated", "kv_count"}},
      {"absurd_kv_count",
       Bytes().Header(3, 0, k2Pow63).Zeros(64),
       kCorrupt,
       {"kv_count 9223372036854775808 is impossible"}},
      {"absurd_tensor_count",
       Bytes().Header(3, k2Pow63, 0).Zeros(64),
       kCorrupt,
       {"tensor_count 9223372036854775808 is impossible"}},
      {"max_counts", Bytes().Header(3, ~uint64_t{0}, ~uint64_t{0}), kCorrupt, {"kv_count"}},
      // --- keys ---
      {"truncated_inside_key",
       Bytes().Header(3, 0, 1).U64(20).Raw("general"),
       kCorrupt,
       {"key #0", "key length 20 exceeds the 7 bytes that remain"}},
      {"absurd_key_length",
       Bytes().Header(3, 0, 1).U64(k2Pow63).Zeros(16),
       kCorrupt,
       {"key #0", "key length 9223372036854775808"}},
      {"key_over_limit",
       Bytes().Header(3, 0, 1).Key(long_name, kTU8).U8(0),
       kCorrupt,
       {"key #0", "exceeds the limit of 65536 bytes"}},
      {"empty_key",
       Bytes().Header(3, 0, 1).Key("", kTU32).U32(1).Zeros(8),
       kCorrupt,
       {"key #0", "empty key"}},
      {"invalid_utf8_key",
       Bytes().Header(3, 0, 1).Key("bad\xff", kTU32).U32(1),
       kCorrupt,
       {"key #0", "bad\\xFF", "not valid UTF-8"}},
      {"duplicate_key",
       Bytes().Header(3, 0, 2).Key("general.name", kTU8).U8(1).Key("general.name", kTU8).U8(2),
       kCorrupt,
       {"duplicate key 'general.name'", "#0", "#1"}},
      {"second_key_truncated",
       Bytes().Header(3, 0, 2).Key("general.name", kTString).Str("x").Key("general.c", kTU32),
       kCorrupt,
       {"key 'general.c'", "truncated", "u32 value"}},
      // --- values ---
      {"unknown_value_type",
       Bytes().Header(3, 0, 1).Key("general.x", 13).U64(0),
       kCorrupt,
       {"key 'general.x'", "unknown value type 13"}},
      {"truncated_inside_value",
       Bytes().Header(3, 0, 1).Key("a.count", kTU32).U8(1).U8(2),
       kCorrupt,
       {"key 'a.count'", "truncated", "u32 value"}},
      {"bool_not_0_or_1",
       Bytes().Header(3, 0, 1).Key("flag", kTBool).U8(2),
       kCorrupt,
       {"key 'flag'", "bool value must be 0 or 1, got 2"}},
      {"absurd_string_value_length",
       Bytes().Header(3, 0, 1).Key("general.name", kTString).U64(k2Pow63).Zeros(8),
       kCorrupt,
       {"key 'general.name'", "string value length 9223372036854775808"}},
      {"invalid_utf8_string_value",
       Bytes().Header(3, 0, 1).Key("general.name", kTString).Str("\xc3\x28"),
       kCorrupt,
       {"key 'general.name'", "not valid UTF-8"}},
      {"invalid_utf8_in_string_array",
       Bytes()
           .Header(3, 0, 1)
           .Key("tokenizer.ggml.tokens", kTArray)
           .U32(kTString)
           .U64(2)
           .Str("ok")
           .Str("\xed\xa0\x80"),
       kCorrupt,
       {"key 'tokenizer.ggml.tokens'", "element 1", "not valid UTF-8"}},
      {"truncated_inside_array",
       Bytes().Header(3, 0, 1).Key("arr", kTArray).U32(kTString).U64(2).Str("a").U64(5).Raw("ab"),
       kCorrupt,
       {"key 'arr'", "element 1", "string value length 5 exceeds"}},
      {"array_count_exceeds_bytes",
       Bytes().Header(3, 0, 1).Key("arr", kTArray).U32(kTI32).U64(4).U32(1).U32(2),
       kCorrupt,
       {"key 'arr'", "array count 4 is impossible"}},
      {"absurd_array_count",
       Bytes().Header(3, 0, 1).Key("arr", kTArray).U32(kTU8).U64(k2Pow63).Zeros(64),
       kCorrupt,
       {"key 'arr'", "array count 9223372036854775808"}},
      {"absurd_nested_array_count",
       Bytes().Header(3, 0, 1).Key("arr", kTArray).U32(kTArray).U64(1).U32(kTU64).U64(k2Pow63),
       kCorrupt,
       {"key 'arr'", "element 0", "array count 9223372036854775808"}},
      {"unknown_array_element_type",
       Bytes().Header(3, 0, 1).Key("arr", kTArray).U32(77).U64(0),
       kCorrupt,
       {"key 'arr'", "unknown array element type 77"}},
      {"array_nesting_9_levels",
       shallow_bomb,
       kCorrupt,
       {"key 'bomb'", "nested deeper than 8 levels"}},
      {"array_nesting_bomb_100k_levels",
       bomb,
       kCorrupt,
       {"key 'bomb'", "nested deeper than 8 levels"}},
      // --- general.alignment ---
      {"alignment_0",
       Bytes().Header(3, 0, 1).Key("general.alignment", kTU32).U32(0),
       kCorrupt,
       {"key 'general.alignment'", "alignment 0 must be a nonzero power of two"}},
      {"alignment_3",
       Bytes().Header(3, 0, 1).Key("general.alignment", kTU32).U32(3),
       kCorrupt,
       {"key 'general.alignment'", "alignment 3"}},
      {"alignment_wrong_type",
       Bytes().Header(3, 0, 1).Key("general.alignment", kTU64).U64(32),
       kCorrupt,
       {"key 'general.alignment'", "expected u32, got u64"}},
      // --- tensor infos ---
      {"truncated_tensor_name",
       Bytes().Header(3, 1, 0).U64(40).Raw(std::string(30, 't')),
       kCorrupt,
       {"tensor #0", "name length 40 exceeds the 30 bytes"}},
      {"truncated_inside_tensor_info",
       Bytes().Header(3, 1, 0).Str("blk.0.attn_q.weight").U32(2).I64(8).U32(0),
       kCorrupt,
       {"tensor 'blk.0.attn_q.weight'", "truncated", "ne[1]"}},
      {"truncated_tensor_offset",
       Bytes().Header(3, 1, 0).Str("blk.0.attn_q.weight").U32(1).I64(8).U32(0).U32(0),
       kCorrupt,
       {"tensor 'blk.0.attn_q.weight'", "truncated", "offset"}},
      {"empty_tensor_name",
       OneTensor("", {8}, kGgmlF32),
       kCorrupt,
       {"tensor #0", "empty tensor name"}},
      {"invalid_utf8_tensor_name",
       OneTensor("w\xc0\xaf", {8}, kGgmlF32),
       kCorrupt,
       {"tensor #0", "w\\xC0\\xAF", "not valid UTF-8"}},
      {"tensor_name_over_limit",
       OneTensor(long_name, {8}, kGgmlF32),
       kCorrupt,
       {"tensor #0", "exceeds the limit of 65536 bytes"}},
      {"n_dims_0",
       Bytes().Header(3, 1, 0).Str("w").U32(0).Zeros(64),
       kCorrupt,
       {"tensor 'w'", "n_dims 0 is out of range [1, 4]"}},
      {"n_dims_5",
       OneTensor("w", {1, 1, 1, 1, 8}, kGgmlF32),
       kCorrupt,
       {"tensor 'w'", "n_dims 5 is out of range"}},
      {"ne_zero", OneTensor("w", {8, 0}, kGgmlF32), kCorrupt, {"tensor 'w'", "ne[1] = 0", ">= 1"}},
      {"ne_negative", OneTensor("w", {-5}, kGgmlF32), kCorrupt, {"tensor 'w'", "ne[0] = -5"}},
      {"ne_product_overflow",
       OneTensor("w", {1ll << 32, 1ll << 32}, kGgmlF32),
       kCorrupt,
       {"tensor 'w'", "[4294967296, 4294967296]", "overflows int64"}},
      {"byte_size_overflow",
       OneTensor("w", {1ll << 62}, kGgmlF32),
       kCorrupt,
       {"tensor 'w'", "overflows 64 bits"}},
      {"unknown_ggml_type",
       OneTensor("w", {8}, 99),
       kUnsupported,
       {"tensor 'w'", "unknown ggml type id 99"}},
      {"removed_ggml_type",
       OneTensor("w", {32}, kGgmlQ4_2),
       kUnsupported,
       {"tensor 'w'", "q4_2", "removed"}},
      {"ne0_not_multiple_of_block",
       OneTensor("w", {33}, kGgmlQ4_0),
       kCorrupt,
       {"tensor 'w'", "ne[0] = 33 is not a multiple of the q4_0 block size 32"}},
      {"duplicate_tensor_name",
       Bytes()
           .Header(3, 2, 0)
           .Tensor("w", {8}, kGgmlF32, 0)
           .Tensor("w", {8}, kGgmlF32, 32)
           .Pad()
           .Zeros(64),
       kCorrupt,
       {"duplicate tensor name 'w'", "#0", "#1"}},
      // --- tensor placement ---
      {"offset_not_aligned",
       OneTensor("w", {4}, kGgmlF32, 16),
       kCorrupt,
       {"tensor 'w'", "offset 16 is not a multiple of the alignment 32"}},
      {"offset_outside_file",
       OneTensor("w", {8}, kGgmlF32, 4096),
       kCorrupt,
       {"tensor 'w'", "data [4160, 4192) extends past the end of the file (96 bytes)"}},
      {"offset_plus_size_overflow",
       OneTensor("w", {8}, kGgmlF32, ~uint64_t{31}),
       kCorrupt,
       {"tensor 'w'", "overflows 64 bits"}},
      {"overlapping_tensors",
       Bytes()
           .Header(3, 2, 0)
           .Tensor("a", {16}, kGgmlF32, 0)
           .Tensor("b", {8}, kGgmlF32, 32)
           .Pad()
           .Zeros(64),
       kCorrupt,
       {"tensor 'b'", "overlaps tensor 'a'"}},
      {"overlapping_tensors_reverse_order",
       Bytes()
           .Header(3, 2, 0)
           .Tensor("late", {8}, kGgmlF32, 32)
           .Tensor("early", {16}, kGgmlF32, 0)
           .Pad()
           .Zeros(64),
       kCorrupt,
       {"tensor 'late'", "overlaps tensor 'early'"}},
      {"alignment_changes_validity",
       Bytes()
           .Header(3, 1, 1)
           .Key("general.alignment", kTU32)
           .U32(64)
           .Tensor("w", {8}, kGgmlF32, 32)
           .Pad(64)
           .Zeros(64),
       kCorrupt,
       {"tensor 'w'", "offset 32 is not a multiple of the alignment 64"}},
      {"truncated_inside_tensor_data",
       ValidTwoTensors().Cut(1),
       kCorrupt,
       {"tensor 'b'", "extends past the end of the file"}},
      {"truncated_at_data_section",
       ValidTwoTensors().Cut(96),
       kCorrupt,
       {"tensor 'a'", "extends past the end of the file"}},
      {"truncated_writer_file_before_minimal_size",
       prefix(100),
       kCorrupt,
       {"kv_count 8 is impossible", "truncated file or corrupt count"}},
      {"truncated_writer_file_inside_string_array",
       prefix(230),
       kCorrupt,
       {"key 'tokenizer.ggml.tokens'", "array count 3 is impossible", "3 bytes remain"}},
  };
}

TEST(GgufCorruption, ValidBaselinesParse) {
  // Positive controls: the builders produce valid files, so each case fails for its own reason.
  Result<GgufFile> two = ParseExact(ValidTwoTensors());
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(two->tensors().size(), 2u);
  Result<GgufFile> one = ParseExact(OneTensor("w", {8}, kGgmlF32));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  Result<GgufFile> writer = ParseExact(ValidFromWriter());
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
}

TEST(GgufCorruption, TableOfHostileInputs) {
  const std::vector<CorruptCase> cases = Cases();
  EXPECT_GE(cases.size(), 30u);
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<GgufFile> r = ParseExact(c.bytes);
    ASSERT_FALSE(r.ok()) << "parsed OK";
    const std::string& msg = r.status().message();
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_EQ(msg.rfind(std::string(kName) + ": ", 0), 0u) << msg;
    for (const std::string& s : c.expect) {
      EXPECT_NE(msg.find(s), std::string::npos) << "missing '" << s << "' in: " << msg;
    }
  }
}

// Every strict prefix of a valid file is truncated somewhere (header, a key, a value, an array,
// a tensor info, the padding or the data) and must fail cleanly.
TEST(GgufCorruption, TruncationAtEveryByteOffset) {
  const std::vector<uint8_t> valid = ValidFromWriter();
  ASSERT_TRUE(ParseExact(valid).ok());
  for (size_t n = 0; n < valid.size(); ++n) {
    Result<GgufFile> r = ParseExact(std::vector<uint8_t>(valid.begin(), valid.begin() + n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_EQ(r.status().code(), StatusCode::kCorruptData) << n << ": " << r.status().ToString();
    EXPECT_EQ(r.status().message().rfind("model.gguf: ", 0), 0u) << r.status().message();
  }
}

// Overwrites every byte with a few values: the parser may accept (e.g. a changed string byte)
// but must never crash or over-read, and every error must carry the file name. Accepted files
// must have in-bounds tensor views.
TEST(GgufCorruption, ByteMutationSweep) {
  const std::vector<uint8_t> valid = ValidFromWriter();
  size_t failures = 0;
  for (size_t i = 0; i < valid.size(); ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x80}, uint8_t(valid[i] + 1)}) {
      std::vector<uint8_t> bytes = valid;
      bytes[i] = v;
      std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
      std::memcpy(copy.get(), bytes.data(), bytes.size());
      Result<GgufFile> r = GgufFile::ParseBytes(copy.get(), bytes.size(), kName);
      if (!r.ok()) {
        ++failures;
        EXPECT_EQ(r.status().message().rfind("model.gguf: ", 0), 0u) << r.status().message();
        continue;
      }
      for (const TensorInfo& t : r->tensors()) {
        ASSERT_GE(t.data, copy.get());
        ASSERT_LE(t.data + t.n_bytes, copy.get() + bytes.size());
      }
    }
  }
  EXPECT_GT(failures, 0u);
}

}  // namespace
}  // namespace gemma_local::gguf
