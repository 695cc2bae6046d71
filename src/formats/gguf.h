// GGUF (v2 and v3) reader and writer. Knows nothing of Gemma: it maps bytes to typed metadata and
// tensor views and back.
//
// Reader contract:
// - The file is memory-mapped; TensorInfo::data points into the mapping (zero copy) and stays valid
//   while the GgufFile (or any copy of its shared mapping) lives.
// - Every length, count and offset is checked against the bytes that remain, with overflow-safe
//   arithmetic, before use. Nothing is allocated in proportion to a claimed count before the bytes
//   for it have been seen. Errors name the file and the key or tensor, with expected vs actual.
// - Tensor types: every ggml type is recognized (core/dtype.h); whether a type can be *computed*
//   is decided by the model loader, not here.
// Thread-safety: a parsed GgufFile is immutable; concurrent reads are safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "gemma_local/status.h"

namespace gemma_local::gguf {

// GGUF metadata value types (ids as in the GGUF spec).
enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* ValueTypeName(ValueType type);
// Encoded bytes of a fixed-size scalar type; 0 for string, array and unknown ids.
int ScalarWidth(ValueType type);

// Limits shared by the reader and the writer (the writer never produces what the reader rejects).
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;              // GGML_MAX_DIMS
inline constexpr int kMaxArrayNesting = 8;           // array levels; bounds parser recursion
inline constexpr uint64_t kMaxKeyBytes = 64 * 1024;  // metadata keys are short identifiers
inline constexpr uint64_t kMaxTensorNameBytes = 64 * 1024;  // ggml uses 63; other tools more

struct Value;
struct ArrayValue {
  ValueType elem_type = ValueType::kU8;
  std::vector<Value> elems;
};

// One metadata value. Integers of every width are held widened (unsigned in `uint64_t`, signed
// in `int64_t`), floats in `double`; `type` keeps the on-disk type so a writer round-trips it.
struct Value {
  ValueType type = ValueType::kU8;
  std::variant<uint64_t, int64_t, double, bool, std::string, ArrayValue> data;

  static Value U8(uint8_t v) { return {ValueType::kU8, uint64_t{v}}; }
  static Value U32(uint32_t v) { return {ValueType::kU32, uint64_t{v}}; }
  static Value I32(int32_t v) { return {ValueType::kI32, int64_t{v}}; }
  static Value U64(uint64_t v) { return {ValueType::kU64, v}; }
  static Value I64(int64_t v) { return {ValueType::kI64, v}; }
  static Value F32(float v) { return {ValueType::kF32, double{v}}; }
  static Value F64(double v) { return {ValueType::kF64, v}; }
  static Value Bool(bool v) { return {ValueType::kBool, v}; }
  static Value String(std::string v) { return {ValueType::kString, std::move(v)}; }
  static Value Array(ValueType elem_type, std::vector<Value> elems) {
    return {ValueType::kArray, ArrayValue{elem_type, std::move(elems)}};
  }
  static Value StringArray(const std::vector<std::string>& v);
  static Value F32Array(const std::vector<float>& v);
  static Value I32Array(const std::vector<int32_t>& v);
  static Value U32Array(const std::vector<uint32_t>& v);
  static Value BoolArray(const std::vector<bool>& v);
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> ne;      // dims, innermost (contiguous) first, 1..4 entries
  uint64_t offset = 0;          // from the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
  uint64_t n_elements() const;
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static Result<GgufFile> Open(const std::string& path);
  // Parses bytes owned by `mapping` (tests and fuzzers build one from memory through this too).
  static Result<GgufFile> Parse(std::shared_ptr<const MappedFile> mapping);
  // Parses caller-owned bytes that must outlive the result; `display_name` is used in errors.
  static Result<GgufFile> ParseBytes(const uint8_t* data, uint64_t size, std::string display_name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return file_size_; }

  const std::vector<KeyValue>& metadata() const { return metadata_; }
  const Value* Find(std::string_view key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

  // Typed getters. Errors name the file and key, and say which type was found.
  // GetInt accepts every integer type and checks the value fits in int64.
  Result<int64_t> GetInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;  // f32, f64 (and integers)
  Result<bool> GetBool(std::string_view key) const;
  Result<std::string> GetString(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  Result<std::vector<double>> GetFloatArray(std::string_view key) const;
  Result<std::vector<bool>> GetBoolArray(std::string_view key) const;
  Result<std::vector<std::string>> GetStringArray(std::string_view key) const;

 private:
  std::shared_ptr<const MappedFile> mapping_;  // may be null for ParseBytes
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  uint64_t file_size_ = 0;
  std::vector<KeyValue> metadata_;
  std::vector<TensorInfo> tensors_;

  friend class GgufParser;
};

// Builds a GGUF v3 file. Keys keep insertion order (setting an existing key replaces its value in
// place). Tensor data is written in insertion order, each aligned to `alignment`.
class GgufWriter {
 public:
  void Set(std::string key, Value value);
  // `data` must hold exactly DTypeByteSize(dtype, prod(ne)) bytes; `ne` is innermost first.
  Status AddTensor(std::string name, DType dtype, std::vector<int64_t> ne, std::vector<uint8_t> data);
  // Writes the file ("general.alignment" is written when alignment != 32).
  Status WriteFile(const std::string& path, uint64_t alignment = 32) const;
  // The same bytes as WriteFile, in memory (for tests and fuzz corpora).
  Result<std::vector<uint8_t>> Serialize(uint64_t alignment = 32) const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<KeyValue> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace gemma_local::gguf
