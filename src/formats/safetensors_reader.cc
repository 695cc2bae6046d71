// safetensors reader: validates the untrusted JSON header and builds zero-copy tensor views.
//
// Structure: (1) the 8-byte length prefix is checked against the file and kMaxHeaderBytes;
// (2) the header bytes must be UTF-8; (3) a SAX handler walks the JSON once, enforcing the
// header's grammar as it goes (so a hostile header is rejected at its first wrong token, without
// building a DOM and without nesting deeper than the grammar allows); (4) a semantic pass checks
// dtypes, sizes and the offset layout. Rules follow the reference Rust implementation
// (huggingface/safetensors): tensors must tile the data section exactly, with no overlap, hole or
// trailing byte, and a tensor entry holds exactly dtype, shape and data_offsets.
#include <algorithm>
#include <exception>
#include <limits>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/error_text.h"
#include "core/utf8.h"
#include "formats/safetensors.h"

namespace gemma_local::safetensors {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kLengthPrefixBytes = 8;
// No real tensor has more dimensions (numpy caps at 64); the cap bounds per-entry memory.
constexpr size_t kMaxDims = 64;
constexpr const char* kMetadataKey = "__metadata__";

uint64_t ReadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string KnownDTypeNames() {
  std::string out;
  for (size_t i = 0; i < static_cast<size_t>(DType::kCount); ++i) {
    const char* name = Traits(static_cast<DType>(i)).safetensors_name;
    if (name == nullptr) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// One tensor entry as the SAX pass saw it, before semantic validation.
struct RawEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false;
  bool has_shape = false;
  bool has_offsets = false;
};

// A JSON value event as reported by the SAX parser; described only when it is an error.
struct Scalar {
  enum class Kind { kNull, kBool, kNegative, kUnsigned, kFloat, kString, kBinary, kObject, kArray };
  Kind kind;
  uint64_t unsigned_value = 0;        // kUnsigned (also "-0")
  int64_t negative_value = 0;         // kNegative
  bool bool_value = false;            // kBool
  const std::string* text = nullptr;  // kString: the value; kFloat: the literal as written

  // "null", "boolean true", "negative integer -3", "string 'F4'", "array", ...
  std::string Describe() const {
    switch (kind) {
      case Kind::kNull:
        return "null";
      case Kind::kBool:
        return bool_value ? "boolean true" : "boolean false";
      case Kind::kNegative:
        return "negative integer " + std::to_string(negative_value);
      case Kind::kUnsigned:
        return "integer " + std::to_string(unsigned_value);
      case Kind::kFloat:
        return "number " + EscapeForMessage(*text, 40) + " (not a 64-bit integer)";
      case Kind::kString:
        return "string " + QuoteName(*text);
      case Kind::kBinary:
        return "binary value";
      case Kind::kObject:
        return "object";
      case Kind::kArray:
        return "array";
    }
    return "value";
  }
};

// Walks the header's JSON events and enforces the safetensors grammar:
//   { "__metadata__": {string: string}?, "<name>": {"dtype": string, "shape": [uint...],
//     "data_offsets": [uint, uint]}, ... }
// Every handler returns false (which stops nlohmann's parser) after recording the first error in
// error(); nothing is ever nested deeper than the grammar allows, so hostile nesting costs nothing.
class HeaderHandler final : public nlohmann::json_sax<Json> {
 public:
  // After a successful parse: the entries in header order and the metadata.
  std::vector<RawEntry>& entries() { return entries_; }
  std::map<std::string, std::string>& metadata() { return metadata_; }
  // Empty unless a handler failed; then the error text (without the file name).
  const std::string& error() const { return error_; }

  bool null() override { return OnScalar({Scalar::Kind::kNull}); }
  bool boolean(bool val) override {
    Scalar v{Scalar::Kind::kBool};
    v.bool_value = val;
    return OnScalar(v);
  }
  bool number_integer(number_integer_t val) override {
    // nlohmann reports only literals with a leading '-' here; "-0" is still a valid zero.
    Scalar v{val == 0 ? Scalar::Kind::kUnsigned : Scalar::Kind::kNegative};
    v.negative_value = val;
    return OnScalar(v);
  }
  bool number_unsigned(number_unsigned_t val) override {
    Scalar v{Scalar::Kind::kUnsigned};
    v.unsigned_value = val;
    return OnScalar(v);
  }
  bool number_float(number_float_t, const string_t& literal) override {
    // Fractions, exponents and integers beyond 64 bits all arrive here.
    Scalar v{Scalar::Kind::kFloat};
    v.text = &literal;
    return OnScalar(v);
  }
  bool string(string_t& val) override {
    Scalar v{Scalar::Kind::kString};
    v.text = &val;
    return OnScalar(v);
  }
  bool binary(binary_t&) override {
    return OnScalar({Scalar::Kind::kBinary});  // never produced by JSON text
  }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::kStart:
        state_ = State::kRootKey;
        return true;
      case State::kRootValue:
        if (pending_key_ == kMetadataKey) {
          state_ = State::kMetaKey;
        } else {
          entry_ = RawEntry{};
          entry_.name = pending_key_;
          state_ = State::kEntryKey;
        }
        return true;
      default:
        return OnScalar({Scalar::Kind::kObject});
    }
  }

  bool start_array(std::size_t) override {
    if (state_ == State::kEntryValue && field_ == Field::kShape) {
      state_ = State::kShape;
      return true;
    }
    if (state_ == State::kEntryValue && field_ == Field::kOffsets) {
      state_ = State::kOffsets;
      return true;
    }
    return OnScalar({Scalar::Kind::kArray});
  }

  bool key(string_t& val) override {
    switch (state_) {
      case State::kRootKey:
        if (val.empty()) {
          return Fail("tensor name is empty (the header has an entry with key \"\")");
        }
        if (val == kMetadataKey && seen_metadata_) return Fail("duplicate __metadata__ entry");
        if (val == kMetadataKey) seen_metadata_ = true;
        pending_key_ = val;
        state_ = State::kRootValue;
        return true;
      case State::kMetaKey:
        if (metadata_.count(val) != 0) return Fail("__metadata__: duplicate key " + QuoteName(val));
        pending_key_ = val;
        state_ = State::kMetaValue;
        return true;
      case State::kEntryKey: {
        bool* seen = nullptr;
        if (val == "dtype") {
          field_ = Field::kDtype, seen = &entry_.has_dtype;
        } else if (val == "shape") {
          field_ = Field::kShape, seen = &entry_.has_shape;
        } else if (val == "data_offsets") {
          field_ = Field::kOffsets, seen = &entry_.has_offsets;
        } else {
          return Fail(TensorPrefix() + "unknown field " + QuoteName(val) +
                      " (a tensor entry holds only dtype, shape and data_offsets)");
        }
        if (*seen) return Fail(TensorPrefix() + "duplicate field " + QuoteName(val));
        *seen = true;
        state_ = State::kEntryValue;
        return true;
      }
      default:
        return Fail("internal: unexpected key event");  // the parser never emits this
    }
  }

  bool end_object() override {
    switch (state_) {
      case State::kRootKey:
        state_ = State::kDone;
        return true;
      case State::kMetaKey:
        state_ = State::kRootKey;
        return true;
      case State::kEntryKey:
        if (!entry_.has_dtype) return Fail(TensorPrefix() + "missing field 'dtype'");
        if (!entry_.has_shape) return Fail(TensorPrefix() + "missing field 'shape'");
        if (!entry_.has_offsets) return Fail(TensorPrefix() + "missing field 'data_offsets'");
        entries_.push_back(std::move(entry_));
        entry_ = RawEntry{};
        state_ = State::kRootKey;
        return true;
      default:
        return Fail("internal: unexpected end of object");
    }
  }

  bool end_array() override {
    if (state_ == State::kShape) {
      state_ = State::kEntryKey;
      return true;
    }
    if (state_ == State::kOffsets) {
      if (entry_.offsets.size() != 2) {
        return Fail(TensorPrefix() +
                    "data_offsets must hold exactly 2 integers [begin, end], got " +
                    std::to_string(entry_.offsets.size()));
      }
      state_ = State::kEntryKey;
      return true;
    }
    return Fail("internal: unexpected end of array");
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    return Fail(std::string("header is not valid JSON: ") + EscapeForMessage(ex.what(), 300));
  }

 private:
  enum class State {
    kStart,
    kRootKey,
    kRootValue,
    kMetaKey,
    kMetaValue,
    kEntryKey,
    kEntryValue,
    kShape,
    kOffsets,
    kDone,
  };
  enum class Field { kDtype, kShape, kOffsets };

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  std::string TensorPrefix() const { return "tensor " + QuoteName(entry_.name) + ": "; }

  // Any value event that is not the start of an expected object/array lands here.
  bool OnScalar(const Scalar& v) {
    switch (state_) {
      case State::kStart:
        return Fail("header must be a JSON object, got " + v.Describe());
      case State::kRootValue:
        if (pending_key_ == kMetadataKey) {
          return Fail("__metadata__ must be an object of string to string, got " + v.Describe());
        }
        return Fail("tensor " + QuoteName(pending_key_) +
                    ": entry must be an object with dtype, shape and data_offsets, got " +
                    v.Describe());
      case State::kMetaValue:
        if (v.kind != Scalar::Kind::kString) {
          return Fail("__metadata__ key " + QuoteName(pending_key_) + ": value must be a string, got " +
                      v.Describe());
        }
        metadata_.emplace(std::move(pending_key_), *v.text);
        state_ = State::kMetaKey;
        return true;
      case State::kEntryValue:
        if (field_ == Field::kDtype && v.kind == Scalar::Kind::kString) {
          entry_.dtype = *v.text;
          state_ = State::kEntryKey;
          return true;
        }
        if (field_ == Field::kDtype) {
          return Fail(TensorPrefix() + "field 'dtype' must be a string, got " + v.Describe());
        }
        if (field_ == Field::kShape) {
          return Fail(TensorPrefix() +
                      "field 'shape' must be an array of non-negative integers, got " +
                      v.Describe());
        }
        return Fail(TensorPrefix() + "field 'data_offsets' must be an array of 2 integers, got " +
                    v.Describe());
      case State::kShape: {
        auto where = [&] { return "shape[" + std::to_string(entry_.shape.size()) + "]"; };
        if (v.kind != Scalar::Kind::kUnsigned) {
          return Fail(TensorPrefix() + where() + " is " + v.Describe() +
                      ", expected a non-negative integer");
        }
        if (v.unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Fail(TensorPrefix() + where() + " is " + std::to_string(v.unsigned_value) +
                      ", larger than the largest dimension (2^63 - 1)");
        }
        if (entry_.shape.size() == kMaxDims) {
          return Fail(TensorPrefix() + "shape has more than " + std::to_string(kMaxDims) +
                      " dimensions");
        }
        entry_.shape.push_back(static_cast<int64_t>(v.unsigned_value));
        return true;
      }
      case State::kOffsets: {
        if (v.kind != Scalar::Kind::kUnsigned) {
          return Fail(TensorPrefix() + "data_offsets[" + std::to_string(entry_.offsets.size()) +
                      "] is " + v.Describe() + ", expected a non-negative integer");
        }
        if (entry_.offsets.size() == 2) {
          return Fail(TensorPrefix() +
                      "data_offsets must hold exactly 2 integers [begin, end], got more");
        }
        entry_.offsets.push_back(v.unsigned_value);
        return true;
      }
      case State::kRootKey:
      case State::kMetaKey:
      case State::kEntryKey:
      case State::kDone:
        break;
    }
    return Fail("internal: unexpected JSON value");  // the parser never emits this
  }

  State state_ = State::kStart;
  Field field_ = Field::kDtype;
  std::string pending_key_;
  bool seen_metadata_ = false;
  RawEntry entry_;
  std::vector<RawEntry> entries_;
  std::map<std::string, std::string> metadata_;
  std::string error_;
};

}  // namespace

uint64_t Tensor::n_elements() const {
  // 0 when any dimension is 0 (negative ones never pass validation). Saturates instead of
  // wrapping; tensors from the reader or for the writer never overflow (both validate).
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return 0;
  }
  for (int64_t d : shape) {
    auto next = CheckedMul(n, static_cast<uint64_t>(d));
    if (!next) return std::numeric_limits<uint64_t>::max();
    n = *next;
  }
  return n;
}

// Fills SafetensorsFile's private fields (it is the class's friend).
class SafetensorsParser {
 public:
  static Result<SafetensorsFile> Run(const uint8_t* data, uint64_t size, std::string name,
                                     std::shared_ptr<const MappedFile> mapping) {
    // The boundary where nlohmann's (or the standard library's) exceptions stop.
    try {
      SafetensorsFile file;
      file.mapping_ = std::move(mapping);
      file.path_ = name;
      file.file_size_ = size;
      Status status = Fill(data, size, file);
      if (!status.ok()) return status.WithContext(file.path_);
      return file;
    } catch (const std::bad_alloc&) {
      return ResourceExhaustedError(name + ": out of memory while parsing the safetensors header");
    } catch (const std::exception& e) {
      return InternalError(
          name + ": unexpected exception while parsing: " + EscapeForMessage(e.what(), 200));
    }
  }

 private:
  // Errors returned from here lack the file name; Run adds it.
  static Status Fill(const uint8_t* data, uint64_t size, SafetensorsFile& file) {
    if (data == nullptr && size != 0) return InvalidArgumentError("null data with non-zero size");
    if (size < kLengthPrefixBytes) {
      return CorruptDataError("file is " + std::to_string(size) +
                              " bytes, too short for the 8-byte header length");
    }
    const uint64_t header_len = ReadLe64(data);
    if (header_len > kMaxHeaderBytes) {
      return CorruptDataError("header length " + std::to_string(header_len) +
                              " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                              " bytes");
    }
    const uint64_t available = size - kLengthPrefixBytes;
    if (header_len > available) {
      return CorruptDataError("header length " + std::to_string(header_len) + " exceeds the " +
                              std::to_string(available) +
                              " bytes that follow the 8-byte length prefix (file is " +
                              std::to_string(size) + " bytes; truncated?)");
    }
    if (header_len == 0) return CorruptDataError("header length is 0; expected a JSON object");
    const char* header = reinterpret_cast<const char*>(data + kLengthPrefixBytes);
    const std::string_view header_view(header, static_cast<size_t>(header_len));
    const size_t bad = FirstInvalidUtf8Offset(header_view);
    if (bad != header_view.size()) {
      const size_t from = bad < 24 ? 0 : bad - 24;
      return CorruptDataError(
          "header is not valid UTF-8 at byte " + std::to_string(bad) + " (near \"" +
          EscapeForMessage(header_view.substr(from, bad - from + 8), 120) + "\")");
    }
    // nlohmann's lexer treats a NUL byte as end of input, so "{...}\0junk" would pass; a raw NUL
    // is never valid JSON (not between tokens, not inside a string), so reject it outright.
    const size_t nul = header_view.find('\0');
    if (nul != std::string_view::npos) {
      return CorruptDataError("header is not valid JSON: NUL byte at byte " + std::to_string(nul));
    }

    HeaderHandler handler;
    const bool parsed = Json::sax_parse(header, header + header_len, &handler,
                                        nlohmann::json::input_format_t::json, /*strict=*/true,
                                        /*ignore_comments=*/false);
    if (!parsed || !handler.error().empty()) {
      return CorruptDataError(handler.error().empty() ? std::string("header is not valid JSON")
                                                      : handler.error());
    }
    file.metadata_ = std::move(handler.metadata());
    std::vector<RawEntry>& entries = handler.entries();

    // Duplicate names first: nlohmann would hand both to us, and a duplicate usually also
    // "overlaps" itself, which would be a confusing message.
    std::vector<size_t> order(entries.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return entries[a].name < entries[b].name; });
    for (size_t i = 1; i < order.size(); ++i) {
      if (entries[order[i]].name == entries[order[i - 1]].name) {
        return CorruptDataError("duplicate tensor name " + QuoteName(entries[order[i]].name));
      }
    }

    const uint64_t data_size = available - header_len;
    const uint8_t* data_section = data + kLengthPrefixBytes + header_len;
    std::vector<Tensor> tensors;
    tensors.reserve(entries.size());  // bounded by the header bytes present, not a claim
    for (RawEntry& e : entries) {
      GL_ASSIGN_OR_RETURN(Tensor t, MakeTensor(e, data_size, data_section, file.path_));
      tensors.push_back(std::move(t));
    }
    GL_RETURN_IF_ERROR(CheckLayout(tensors, data_size));

    file.tensors_ = std::move(tensors);
    file.by_name_.resize(file.tensors_.size());
    for (size_t i = 0; i < file.by_name_.size(); ++i) file.by_name_[i] = i;
    const std::vector<Tensor>& ts = file.tensors_;
    std::sort(file.by_name_.begin(), file.by_name_.end(),
              [&](size_t a, size_t b) { return ts[a].name < ts[b].name; });
    return Status::Ok();
  }

  static Result<Tensor> MakeTensor(RawEntry& e, uint64_t data_size, const uint8_t* data_section,
                                   const std::string& path) {
    const std::string prefix = "tensor " + QuoteName(e.name) + ": ";
    if (!IsValidUtf8(e.name)) return CorruptDataError(prefix + "name is not valid UTF-8");
    std::optional<DType> dtype = DTypeFromSafetensorsName(e.dtype);
    if (!dtype) {
      return UnsupportedError(prefix + "unknown dtype " + QuoteName(e.dtype) +
                              " (known: " + KnownDTypeNames() + ")");
    }
    const char* dtype_name = Traits(*dtype).safetensors_name;

    // Element count: 0 when any dimension is 0 (empty tensors are legal), else an overflow-checked
    // product.
    uint64_t n_elements = 1;
    const bool empty = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
    if (empty) {
      n_elements = 0;
    } else {
      for (int64_t d : e.shape) {
        auto next = CheckedMul(n_elements, static_cast<uint64_t>(d));
        if (!next) {
          return CorruptDataError(prefix + "element count of shape " + DimsText(e.shape) +
                                  " overflows 64 bits");
        }
        n_elements = *next;
      }
    }
    Result<uint64_t> needed = DTypeByteSize(*dtype, n_elements);
    if (!needed.ok()) {
      return CorruptDataError(prefix + "shape " + DimsText(e.shape) + " of " + dtype_name +
                              ": " + needed.status().message());
    }

    const uint64_t begin = e.offsets[0];
    const uint64_t end = e.offsets[1];
    if (begin > end) {
      return CorruptDataError(prefix + "data_offsets [" + std::to_string(begin) + ", " +
                              std::to_string(end) + "] have begin > end");
    }
    if (end > data_size) {
      return CorruptDataError(prefix + "data_offsets " + ByteRange(begin, end) +
                              " end past the data section, which holds " +
                              std::to_string(data_size) + " bytes");
    }
    if (end - begin != *needed) {
      return CorruptDataError(prefix + "data_offsets " + ByteRange(begin, end) + " hold " +
                              std::to_string(end - begin) + " bytes, shape " +
                              DimsText(e.shape) + " of " + dtype_name + " needs " +
                              std::to_string(*needed));
    }

    Tensor t;
    t.name = std::move(e.name);
    t.dtype = *dtype;
    t.shape = std::move(e.shape);
    t.offset = begin;
    t.n_bytes = end - begin;
    t.data = data_section + begin;  // at most one past the end, for an empty trailing tensor
    t.file = path;
    return t;
  }

  // Sorts by offset and requires the tensors to tile [0, data_size) exactly, like the reference.
  static Status CheckLayout(std::vector<Tensor>& tensors, uint64_t data_size) {
    std::sort(tensors.begin(), tensors.end(), [](const Tensor& a, const Tensor& b) {
      if (a.offset != b.offset) return a.offset < b.offset;
      if (a.n_bytes != b.n_bytes) return a.n_bytes < b.n_bytes;
      return a.name < b.name;
    });
    uint64_t covered = 0;          // end of the bytes claimed so far
    const Tensor* last = nullptr;  // the tensor that set `covered`
    for (const Tensor& t : tensors) {
      const uint64_t end = t.offset + t.n_bytes;  // validated <= data_size
      if (t.offset < covered) {
        return CorruptDataError("tensor " + QuoteName(t.name) + " at data_offsets " +
                                ByteRange(t.offset, end) + " overlaps tensor " +
                                QuoteName(last->name) + " at " +
                                ByteRange(last->offset, last->offset + last->n_bytes));
      }
      if (t.offset > covered) {
        const std::string gap = std::to_string(t.offset - covered);
        if (last == nullptr) {
          return CorruptDataError("hole of " + gap + " unused bytes before tensor " +
                                  QuoteName(t.name) + " at data_offsets " + ByteRange(t.offset, end) +
                                  "; the first tensor must start at 0");
        }
        return CorruptDataError("hole of " + gap + " unused bytes between tensor " +
                                QuoteName(last->name) + " (ends at " + std::to_string(covered) +
                                ") and tensor " + QuoteName(t.name) + " (starts at " +
                                std::to_string(t.offset) + ")");
      }
      if (end > covered || last == nullptr) {
        covered = end;
        last = &t;
      }
    }
    if (covered != data_size) {
      const std::string extra = std::to_string(data_size - covered);
      if (last == nullptr) {
        return CorruptDataError("data section holds " + extra +
                                " bytes but the header lists no tensors");
      }
      return CorruptDataError(extra + " trailing bytes after the last tensor " + QuoteName(last->name) +
                              " (tensors end at " + std::to_string(covered) +
                              ", the data section holds " + std::to_string(data_size) + " bytes)");
    }
    return Status::Ok();
  }
};

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  return Parse(std::move(mapping));
}

Result<SafetensorsFile> SafetensorsFile::Parse(std::shared_ptr<const MappedFile> mapping) {
  if (mapping == nullptr) return InvalidArgumentError("SafetensorsFile::Parse: null mapping");
  const uint8_t* data = mapping->data();
  const uint64_t size = mapping->size();
  std::string path = mapping->path();
  return SafetensorsParser::Run(data, size, std::move(path), std::move(mapping));
}

Result<SafetensorsFile> SafetensorsFile::ParseBytes(const uint8_t* data, uint64_t size,
                                                    std::string display_name) {
  return SafetensorsParser::Run(data, size, std::move(display_name), nullptr);
}

const Tensor* SafetensorsFile::FindTensor(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [&](size_t i, std::string_view n) { return tensors_[i].name < n; });
  if (it == by_name_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

}  // namespace gemma_local::safetensors
