// GGUF reader: parses untrusted bytes into metadata and zero-copy tensor views.
//
// Security contract (the input may be hostile):
// - Every read goes through Need(), which compares against the bytes that remain; lengths, counts
//   and offsets are combined only with checked arithmetic (core/checked_math.h).
// - A claimed count is first checked against `remaining / min_encoded_size` (an impossible count
//   is an error), and containers are reserved only up to a small cap (ReserveHint), so memory
//   follows the bytes actually parsed, never a claimed count.
// - Array nesting is bounded by kMaxArrayNesting, bounding recursion depth.
// - Low-level helpers return messages without the file name; Run() adds the "<file>: " prefix
//   exactly once, and each loop adds its "key 'k'" / "tensor 't'" / "element i" context, so every
//   error reads "<file>: <where>: <what, with expected vs actual>".
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/error_text.h"
#include "core/utf8.h"
#include "formats/gguf.h"

namespace gemma_local::gguf {
namespace {

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::kF64);
// Smallest possible encodings, used to reject impossible counts before reserving anything.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;  // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, off
constexpr uint64_t kArrayHeaderBytes = 4 + 8;                    // element type, count

// Bytes one element of `type` takes at least (exactly, for fixed-size scalars).
uint64_t MinEncodedSize(ValueType type) {
  if (type == ValueType::kString) return 8;  // the u64 length
  if (type == ValueType::kArray) return kArrayHeaderBytes;
  const int width = ScalarWidth(type);
  return width > 0 ? static_cast<uint64_t>(width) : 1;
}

// Quotes a key or tensor name for an error message: printable UTF-8 as is, anything else escaped
// (it may be the very bytes being rejected).
// Counts are already checked against the remaining bytes, but an in-memory element is far larger
// than its smallest encoding (a 1-byte u8 becomes a ~48-byte Value). Reserving only up to a cap
// and growing geometrically beyond it keeps memory proportional to what actually parsed, not to
// what a hostile count claims.
size_t ReserveHint(uint64_t count) {
  constexpr uint64_t kMaxReserve = uint64_t{1} << 16;
  return static_cast<size_t>(std::min(count, kMaxReserve));
}

std::string ShapeString(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

}  // namespace

// One parse of one buffer. Not reusable; holds no state beyond the cursor.
class GgufParser {
 public:
  GgufParser(const uint8_t* data, uint64_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}

  Result<GgufFile> Run() {
    GgufFile file;
    file.path_ = name_;
    file.file_size_ = size_;
    Status s = ParseAll(file);
    if (!s.ok()) return s.WithContext(name_);
    return file;
  }

 private:
  uint64_t remaining() const { return size_ - pos_; }

  // OK when `n` more bytes exist; otherwise a truncation error naming `what`.
  // `what` + `suffix` names the field; they are joined only on error, keeping the hot path (one
  // call per vocabulary entry) free of allocations.
  Status Need(uint64_t n, std::string_view what, std::string_view suffix = {}) const {
    if (n <= remaining()) return Status::Ok();
    return CorruptDataError("truncated: " + std::string(what) + std::string(suffix) + " needs " +
                            std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                            ", but only " + std::to_string(remaining()) + " remain (file is " +
                            std::to_string(size_) + " bytes)");
  }

  // Reads a little-endian unsigned integer of `width` bytes (1, 2, 4 or 8). Assembled bytewise so
  // the result is independent of host endianness and alignment.
  Result<uint64_t> ReadUint(int width, std::string_view what, std::string_view suffix = {}) {
    GL_RETURN_IF_ERROR(Need(static_cast<uint64_t>(width), what, suffix));
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += static_cast<uint64_t>(width);
    return v;
  }

  // Reads a GGUF string (u64 length + bytes) as a view into the input. The length is checked
  // against both the remaining bytes and `max_len` before anything is touched.
  Result<std::string_view> ReadString(std::string_view what, uint64_t max_len) {
    GL_ASSIGN_OR_RETURN(uint64_t len, ReadUint(8, what, " length"));
    if (len > remaining()) {
      return CorruptDataError(std::string(what) + " length " + std::to_string(len) +
                              " exceeds the " + std::to_string(remaining()) +
                              " bytes that remain at offset " + std::to_string(pos_));
    }
    if (len > max_len) {
      return CorruptDataError(std::string(what) + " length " + std::to_string(len) +
                              " exceeds the limit of " + std::to_string(max_len) + " bytes");
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

  Status ParseAll(GgufFile& file) {
    GL_RETURN_IF_ERROR(ParseHeader(file));
    GL_ASSIGN_OR_RETURN(uint64_t tensor_count, ReadUint(8, "tensor_count"));
    GL_ASSIGN_OR_RETURN(uint64_t kv_count, ReadUint(8, "kv_count"));
    GL_RETURN_IF_ERROR(CheckCounts(tensor_count, kv_count));
    GL_RETURN_IF_ERROR(ParseMetadata(file, kv_count));
    GL_RETURN_IF_ERROR(ParseAlignment(file));
    GL_RETURN_IF_ERROR(ParseTensorInfos(file, tensor_count));
    return PlaceTensors(file);
  }

  Status ParseHeader(GgufFile& file) {
    if (size_ == 0) return CorruptDataError("empty file (0 bytes); expected a GGUF header");
    GL_RETURN_IF_ERROR(Need(4, "the magic"));
    std::string_view magic(reinterpret_cast<const char*>(data_), 4);
    if (magic != "GGUF") {
      return CorruptDataError("bad magic: expected \"GGUF\", got \"" + EscapeForMessage(magic) +
                              "\"; not a GGUF file");
    }
    pos_ = 4;
    GL_ASSIGN_OR_RETURN(uint64_t v64, ReadUint(4, "the version"));
    const auto version = static_cast<uint32_t>(v64);
    if (version == 2 || version == 3) {
      file.version_ = version;
      return Status::Ok();
    }
    const uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3) {
      return UnsupportedError("version field reads 0x" + Hex(version) +
                              ": this is a big-endian GGUF (version " + std::to_string(swapped) +
                              "); only little-endian files are supported");
    }
    if (version == 0) return CorruptDataError("invalid GGUF version 0");
    if (version == 1) {
      return UnsupportedError(
          "GGUF version 1 is not supported (32-bit counts, pre-2023 format); supported versions "
          "are 2 and 3; re-convert the model with a current llama.cpp");
    }
    return UnsupportedError("unsupported GGUF version " + std::to_string(version) +
                            "; supported versions are 2 and 3");
  }

  static std::string Hex(uint32_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s(8, '0');
    for (int i = 7; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kDigits[v & 0xF];
    return s;
  }

  // Rejects counts the remaining bytes cannot possibly hold, so later reserves stay bounded.
  Status CheckCounts(uint64_t tensor_count, uint64_t kv_count) const {
    auto kv_bytes = CheckedMul(kv_count, kMinKvBytes);
    if (!kv_bytes || *kv_bytes > remaining()) {
      return CorruptDataError(
          "kv_count " + std::to_string(kv_count) + " is impossible: each entry takes at least " +
          std::to_string(kMinKvBytes) + " bytes and only " + std::to_string(remaining()) +
          " bytes remain (truncated file or corrupt count)");
    }
    auto ti_bytes = CheckedMul(tensor_count, kMinTensorInfoBytes);
    auto total = ti_bytes ? CheckedAdd(*ti_bytes, *kv_bytes) : std::nullopt;
    if (!total || *total > remaining()) {
      return CorruptDataError("tensor_count " + std::to_string(tensor_count) +
                              " is impossible: each tensor info takes at least " +
                              std::to_string(kMinTensorInfoBytes) + " bytes and only " +
                              std::to_string(remaining() - *kv_bytes) +
                              " bytes remain after the minimal metadata (truncated file or "
                              "corrupt count)");
    }
    return Status::Ok();
  }

  Status ParseMetadata(GgufFile& file, uint64_t kv_count) {
    // Keys are views into the input: stable, unlike the std::string copies being moved around.
    std::unordered_map<std::string_view, uint64_t> seen;
    file.metadata_.reserve(ReserveHint(kv_count));
    for (uint64_t i = 0; i < kv_count; ++i) {
      const std::string entry = "key #" + std::to_string(i);
      Result<std::string_view> key = ReadString("key", kMaxKeyBytes);
      if (!key.ok()) return key.status().WithContext(entry);
      if (key->empty()) return CorruptDataError(entry + ": empty key");
      if (size_t bad = FirstInvalidUtf8Offset(*key); bad != key->size()) {
        return CorruptDataError(entry + ": key " + QuoteName(*key) + " is not valid UTF-8 (byte " +
                                std::to_string(bad) + " of " + std::to_string(key->size()) + ")");
      }
      auto [it, inserted] = seen.emplace(*key, i);
      if (!inserted) {
        return CorruptDataError("duplicate key " + QuoteName(*key) + " (entries #" +
                                std::to_string(it->second) + " and #" + std::to_string(i) + ")");
      }
      Result<Value> value = ReadTypedValue(0);
      if (!value.ok()) return value.status().WithContext("key " + QuoteName(*key));
      file.metadata_.push_back(KeyValue{std::string(*key), std::move(value).value()});
    }
    return Status::Ok();
  }

  // Reads a u32 value type followed by a value of that type.
  Result<Value> ReadTypedValue(int depth) {
    GL_ASSIGN_OR_RETURN(uint64_t raw, ReadUint(4, "value type"));
    if (raw > kMaxValueType) {
      return CorruptDataError("unknown value type " + std::to_string(raw) + " (valid: 0.." +
                              std::to_string(kMaxValueType) + ")");
    }
    return ReadValue(static_cast<ValueType>(raw), depth);
  }

  // Reads one value of a known `type`. `depth` counts the arrays enclosing it.
  Result<Value> ReadValue(ValueType type, int depth) {
    switch (type) {
      case ValueType::kU8:
      case ValueType::kU16:
      case ValueType::kU32:
      case ValueType::kU64: {
        const int width = static_cast<int>(MinEncodedSize(type));
        GL_ASSIGN_OR_RETURN(uint64_t v, ReadUint(width, ValueTypeName(type), " value"));
        return Value{type, v};
      }
      case ValueType::kI8:
      case ValueType::kI16:
      case ValueType::kI32:
      case ValueType::kI64: {
        const int width = static_cast<int>(MinEncodedSize(type));
        GL_ASSIGN_OR_RETURN(uint64_t v, ReadUint(width, ValueTypeName(type), " value"));
        // Sign-extend from `width` bytes (two's complement on disk).
        const int shift = 64 - 8 * width;
        const auto s = static_cast<int64_t>(v << shift) >> shift;
        return Value{type, s};
      }
      case ValueType::kF32: {
        GL_ASSIGN_OR_RETURN(uint64_t v, ReadUint(4, "f32 value"));
        return Value{type, double{std::bit_cast<float>(static_cast<uint32_t>(v))}};
      }
      case ValueType::kF64: {
        GL_ASSIGN_OR_RETURN(uint64_t v, ReadUint(8, "f64 value"));
        return Value{type, std::bit_cast<double>(v)};
      }
      case ValueType::kBool: {
        GL_ASSIGN_OR_RETURN(uint64_t v, ReadUint(1, "bool value"));
        if (v > 1) {
          return CorruptDataError("bool value must be 0 or 1, got " + std::to_string(v));
        }
        return Value{type, v == 1};
      }
      case ValueType::kString: {
        GL_ASSIGN_OR_RETURN(std::string_view s, ReadString("string value", remaining()));
        if (size_t bad = FirstInvalidUtf8Offset(s); bad != s.size()) {
          return CorruptDataError("string value is not valid UTF-8 (byte " + std::to_string(bad) +
                                  " of " + std::to_string(s.size()) + "): \"" +
                                  EscapeForMessage(s) + "\"");
        }
        return Value{type, std::string(s)};
      }
      case ValueType::kArray:
        return ReadArray(depth);
    }
    return InternalError("unhandled value type");  // ReadTypedValue checked the range
  }

  Result<Value> ReadArray(int depth) {
    if (depth >= kMaxArrayNesting) {
      return CorruptDataError("arrays nested deeper than " + std::to_string(kMaxArrayNesting) +
                              " levels");
    }
    GL_ASSIGN_OR_RETURN(uint64_t raw, ReadUint(4, "array element type"));
    if (raw > kMaxValueType) {
      return CorruptDataError("unknown array element type " + std::to_string(raw) + " (valid: 0.." +
                              std::to_string(kMaxValueType) + ")");
    }
    const auto elem_type = static_cast<ValueType>(raw);
    GL_ASSIGN_OR_RETURN(uint64_t count, ReadUint(8, "array count"));
    const uint64_t min_size = MinEncodedSize(elem_type);
    if (count > remaining() / min_size) {
      return CorruptDataError(
          "array count " + std::to_string(count) + " is impossible: " + ValueTypeName(elem_type) +
          " elements take at least " + std::to_string(min_size) +
          (min_size == 1 ? " byte" : " bytes") + " each and only " + std::to_string(remaining()) +
          " bytes remain (truncated file or corrupt count)");
    }
    ArrayValue arr;
    arr.elem_type = elem_type;
    arr.elems.reserve(ReserveHint(count));
    for (uint64_t j = 0; j < count; ++j) {
      Result<Value> e = ReadValue(elem_type, depth + 1);
      if (!e.ok()) return e.status().WithContext("element " + std::to_string(j));
      arr.elems.push_back(std::move(e).value());
    }
    return Value{ValueType::kArray, std::move(arr)};
  }

  Status ParseAlignment(GgufFile& file) {
    const Value* v = file.Find("general.alignment");
    if (v == nullptr) {
      file.alignment_ = kDefaultAlignment;
      return Status::Ok();
    }
    const auto* u = std::get_if<uint64_t>(&v->data);
    if (v->type != ValueType::kU32 || u == nullptr) {
      return CorruptDataError(std::string("key 'general.alignment': expected u32, got ") +
                              ValueTypeName(v->type));
    }
    if (*u == 0 || !std::has_single_bit(*u)) {
      return CorruptDataError("key 'general.alignment': alignment " + std::to_string(*u) +
                              " must be a nonzero power of two");
    }
    file.alignment_ = *u;
    return Status::Ok();
  }

  Status ParseTensorInfos(GgufFile& file, uint64_t tensor_count) {
    std::unordered_map<std::string_view, uint64_t> seen;
    file.tensors_.reserve(ReserveHint(tensor_count));
    for (uint64_t i = 0; i < tensor_count; ++i) {
      const std::string entry = "tensor #" + std::to_string(i);
      Result<std::string_view> name = ReadString("name", kMaxTensorNameBytes);
      if (!name.ok()) return name.status().WithContext(entry);
      if (name->empty()) return CorruptDataError(entry + ": empty tensor name");
      if (size_t bad = FirstInvalidUtf8Offset(*name); bad != name->size()) {
        return CorruptDataError(entry + ": tensor name " + QuoteName(*name) +
                                " is not valid UTF-8 (byte " + std::to_string(bad) + " of " +
                                std::to_string(name->size()) + ")");
      }
      auto [it, inserted] = seen.emplace(*name, i);
      if (!inserted) {
        return CorruptDataError("duplicate tensor name " + QuoteName(*name) + " (tensors #" +
                                std::to_string(it->second) + " and #" + std::to_string(i) + ")");
      }
      TensorInfo info;
      info.name = std::string(*name);
      Status s = ParseTensorInfo(info);
      if (!s.ok()) return s.WithContext("tensor " + QuoteName(*name));
      file.tensors_.push_back(std::move(info));
    }
    return Status::Ok();
  }

  // Reads n_dims, ne, type and offset of one tensor and derives n_bytes.
  Status ParseTensorInfo(TensorInfo& info) {
    GL_ASSIGN_OR_RETURN(uint64_t n_dims, ReadUint(4, "n_dims"));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return CorruptDataError("n_dims " + std::to_string(n_dims) + " is out of range [1, " +
                              std::to_string(kMaxDims) + "]");
    }
    uint64_t n_elements = 1;
    for (uint64_t d = 0; d < n_dims; ++d) {
      const std::string field = "ne[" + std::to_string(d) + "]";
      GL_ASSIGN_OR_RETURN(uint64_t raw, ReadUint(8, field));
      const auto ne = static_cast<int64_t>(raw);
      if (ne < 1) {
        return CorruptDataError(field + " = " + std::to_string(ne) +
                                "; every dimension must be >= 1");
      }
      info.ne.push_back(ne);
      auto product = CheckedMul(n_elements, static_cast<uint64_t>(ne));
      if (!product || *product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return CorruptDataError("element count of shape " + ShapeString(info.ne) +
                                " overflows int64");
      }
      n_elements = *product;
    }
    GL_ASSIGN_OR_RETURN(uint64_t type_id, ReadUint(4, "ggml type"));
    std::optional<DType> dtype = DTypeFromGgmlId(static_cast<uint32_t>(type_id));
    if (!dtype) {
      return UnsupportedError("unknown ggml type id " + std::to_string(type_id) +
                              " (written by a newer ggml, or corrupt)");
    }
    const DTypeTraits& traits = Traits(*dtype);
    if (traits.removed) {
      return UnsupportedError(std::string("type ") + traits.name + " (ggml id " +
                              std::to_string(type_id) +
                              ") was removed from ggml; requantize the model");
    }
    if (static_cast<uint64_t>(info.ne[0]) % traits.block_elems != 0) {
      return CorruptDataError("ne[0] = " + std::to_string(info.ne[0]) +
                              " is not a multiple of the " + traits.name + " block size " +
                              std::to_string(traits.block_elems));
    }
    Result<uint64_t> n_bytes = DTypeByteSize(*dtype, n_elements);
    if (!n_bytes.ok()) return n_bytes.status();
    GL_ASSIGN_OR_RETURN(uint64_t offset, ReadUint(8, "offset"));
    info.dtype = *dtype;
    info.n_bytes = *n_bytes;
    info.offset = offset;
    return Status::Ok();
  }

  // Fixes the data section start, bounds-checks every tensor, and rejects overlaps.
  Status PlaceTensors(GgufFile& file) {
    // With no tensors, writers may omit the padding, so data_offset may exceed the file size; with
    // tensors, the per-tensor bounds check below rejects that.
    auto data_offset = CheckedAlignUp(pos_, file.alignment_);
    if (!data_offset) return CorruptDataError("data section offset overflows 64 bits");
    file.data_offset_ = *data_offset;
    for (TensorInfo& t : file.tensors_) {
      const std::string where = "tensor " + QuoteName(t.name);
      if (t.offset % file.alignment_ != 0) {
        return CorruptDataError(where + ": offset " + std::to_string(t.offset) +
                                " is not a multiple of the alignment " +
                                std::to_string(file.alignment_));
      }
      auto begin = CheckedAdd(*data_offset, t.offset);
      auto end = begin ? CheckedAdd(*begin, t.n_bytes) : std::nullopt;
      if (!end) {
        return CorruptDataError(where + ": data offset " + std::to_string(*data_offset) + " + " +
                                std::to_string(t.offset) + " + size " + std::to_string(t.n_bytes) +
                                " overflows 64 bits");
      }
      if (*end > size_) {
        return CorruptDataError(where + ": data " + ByteRange(*begin, *end) +
                                " extends past the end of the file (" + std::to_string(size_) +
                                " bytes)");
      }
      t.data = data_ + *begin;
    }
    std::vector<const TensorInfo*> order;
    order.reserve(file.tensors_.size());
    for (const TensorInfo& t : file.tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const TensorInfo& prev = *order[i - 1];
      const TensorInfo& cur = *order[i];
      const uint64_t prev_end = prev.offset + prev.n_bytes;  // bounded by the file size above
      if (prev_end > cur.offset) {
        return CorruptDataError(
            "tensor " + QuoteName(cur.name) + ": data " +
            ByteRange(*data_offset + cur.offset, *data_offset + cur.offset + cur.n_bytes) +
            " overlaps tensor " + QuoteName(prev.name) + " at " +
            ByteRange(*data_offset + prev.offset, *data_offset + prev_end));
      }
    }
    return Status::Ok();
  }

  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string name_;
};

Result<GgufFile> GgufFile::Open(const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  return Parse(std::move(mapping));
}

Result<GgufFile> GgufFile::Parse(std::shared_ptr<const MappedFile> mapping) {
  if (mapping == nullptr) return InvalidArgumentError("GgufFile::Parse: null mapping");
  Result<GgufFile> file = GgufParser(mapping->data(), mapping->size(), mapping->path()).Run();
  if (file.ok()) file->mapping_ = std::move(mapping);
  return file;
}

Result<GgufFile> GgufFile::ParseBytes(const uint8_t* data, uint64_t size,
                                      std::string display_name) {
  if (data == nullptr && size != 0) {
    return InvalidArgumentError(display_name + ": null data with size " + std::to_string(size));
  }
  return GgufParser(data, size, std::move(display_name)).Run();
}

}  // namespace gemma_local::gguf
