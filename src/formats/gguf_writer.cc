// GGUF v3 writer.
//
// Layout (matches llama.cpp's gguf_write_to_buf, so its reader accepts our files): header, the
// metadata in insertion order, the tensor infos in insertion order, zero padding to `alignment`,
// then each tensor's bytes at an aligned offset, each followed by zero padding to `alignment`
// (including the last one: llama.cpp's non-mmap reader reads the padded total).
//
// Everything is validated (Plan) before the first byte is emitted, and the writer refuses to
// produce anything the reader would reject (invalid UTF-8, over-deep arrays, bad shapes), so a
// write either fails cleanly up front or yields a file that round-trips.
#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/checked_math.h"
#include "core/error_text.h"
#include "core/utf8.h"
#include "formats/gguf.h"

namespace gemma_local::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::kF64);
constexpr char kAlignmentKey[] = "general.alignment";

// Byte sink that counts what it has written (the count drives alignment padding).
class Sink {
 public:
  virtual ~Sink() = default;
  Status Write(const void* p, size_t n) {
    written_ += n;
    return DoWrite(static_cast<const uint8_t*>(p), n);
  }
  uint64_t written() const { return written_; }

 private:
  virtual Status DoWrite(const uint8_t* p, size_t n) = 0;
  uint64_t written_ = 0;
};

class VectorSink final : public Sink {
 public:
  explicit VectorSink(std::vector<uint8_t>& out) : out_(out) {}

 private:
  Status DoWrite(const uint8_t* p, size_t n) override {
    out_.insert(out_.end(), p, p + n);
    return Status::Ok();
  }
  std::vector<uint8_t>& out_;
};

// Buffers small writes (the metadata is many tiny fields) and passes large ones straight through.
class FdSink final : public Sink {
 public:
  FdSink(int fd, const std::string& path) : fd_(fd), path_(path) { buf_.reserve(kBufBytes); }

  Status Flush() {
    Status s = WriteAll(buf_.data(), buf_.size());
    buf_.clear();
    return s;
  }

 private:
  static constexpr size_t kBufBytes = 1 << 20;

  Status DoWrite(const uint8_t* p, size_t n) override {
    if (buf_.size() + n <= kBufBytes) {
      buf_.insert(buf_.end(), p, p + n);
      return Status::Ok();
    }
    GL_RETURN_IF_ERROR(Flush());
    if (n <= kBufBytes) {
      buf_.insert(buf_.end(), p, p + n);
      return Status::Ok();
    }
    return WriteAll(p, n);
  }

  Status WriteAll(const uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return IoError(path_ + ": write failed: " + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  int fd_;
  const std::string& path_;
  std::vector<uint8_t> buf_;
};

Status PutUint(Sink& sink, uint64_t v, int width) {
  uint8_t b[8];
  for (int i = 0; i < width; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  return sink.Write(b, static_cast<size_t>(width));
}

Status PutString(Sink& sink, std::string_view s) {
  GL_RETURN_IF_ERROR(PutUint(sink, s.size(), 8));
  return sink.Write(s.data(), s.size());
}

Status PadTo(Sink& sink, uint64_t alignment) {
  static constexpr uint8_t kZeros[256] = {};
  uint64_t pad = (alignment - sink.written() % alignment) % alignment;
  while (pad > 0) {
    const uint64_t n = pad < sizeof(kZeros) ? pad : sizeof(kZeros);
    GL_RETURN_IF_ERROR(sink.Write(kZeros, n));
    pad -= n;
  }
  return Status::Ok();
}

bool IsUnsigned(ValueType t) {
  return t == ValueType::kU8 || t == ValueType::kU16 || t == ValueType::kU32 ||
         t == ValueType::kU64;
}
bool IsSigned(ValueType t) {
  return t == ValueType::kI8 || t == ValueType::kI16 || t == ValueType::kI32 ||
         t == ValueType::kI64;
}

// Checks that `v` is encodable and that the reader will accept it: the held alternative matches
// `type`, integers fit their width, strings are UTF-8, arrays are homogeneous and not over-deep.
// `depth` counts the arrays enclosing `v`. Messages carry no key; the caller adds it.
Status ValidateValue(const Value& v, int depth) {
  const std::string type_name = ValueTypeName(v.type);
  auto mismatch = [&] {
    return InvalidArgumentError("value of type " + type_name +
                                " holds the wrong C++ alternative (index " +
                                std::to_string(v.data.index()) + ")");
  };
  const int width = ScalarWidth(v.type);
  if (IsUnsigned(v.type)) {
    const auto* u = std::get_if<uint64_t>(&v.data);
    if (u == nullptr) return mismatch();
    if (width < 8 && *u >> (8 * width) != 0) {
      return InvalidArgumentError(type_name + " value " + std::to_string(*u) + " out of range");
    }
    return Status::Ok();
  }
  if (IsSigned(v.type)) {
    const auto* s = std::get_if<int64_t>(&v.data);
    if (s == nullptr) return mismatch();
    const int64_t lo =
        width < 8 ? -(int64_t{1} << (8 * width - 1)) : std::numeric_limits<int64_t>::min();
    const int64_t hi =
        width < 8 ? (int64_t{1} << (8 * width - 1)) - 1 : std::numeric_limits<int64_t>::max();
    if (*s < lo || *s > hi) {
      return InvalidArgumentError(type_name + " value " + std::to_string(*s) + " out of range");
    }
    return Status::Ok();
  }
  switch (v.type) {
    case ValueType::kF32:
    case ValueType::kF64:
      return std::holds_alternative<double>(v.data) ? Status::Ok() : mismatch();
    case ValueType::kBool:
      return std::holds_alternative<bool>(v.data) ? Status::Ok() : mismatch();
    case ValueType::kString: {
      const auto* s = std::get_if<std::string>(&v.data);
      if (s == nullptr) return mismatch();
      if (size_t bad = FirstInvalidUtf8Offset(*s); bad != s->size()) {
        return InvalidArgumentError("string value is not valid UTF-8 (byte " + std::to_string(bad) +
                                    " of " + std::to_string(s->size()) + ")");
      }
      return Status::Ok();
    }
    case ValueType::kArray: {
      const auto* arr = std::get_if<ArrayValue>(&v.data);
      if (arr == nullptr) return mismatch();
      if (depth >= kMaxArrayNesting) {
        return InvalidArgumentError("arrays nested deeper than " +
                                    std::to_string(kMaxArrayNesting) + " levels");
      }
      if (static_cast<uint32_t>(arr->elem_type) > kMaxValueType) {
        return InvalidArgumentError("unknown array element type " +
                                    std::to_string(static_cast<uint32_t>(arr->elem_type)));
      }
      for (size_t i = 0; i < arr->elems.size(); ++i) {
        const Value& e = arr->elems[i];
        Status s = e.type == arr->elem_type
                       ? ValidateValue(e, depth + 1)
                       : InvalidArgumentError(std::string("has type ") + ValueTypeName(e.type) +
                                              " in an array of " + ValueTypeName(arr->elem_type));
        if (!s.ok()) return s.WithContext("element " + std::to_string(i));
      }
      return Status::Ok();
    }
    default:
      return InvalidArgumentError("unknown value type " +
                                  std::to_string(static_cast<uint32_t>(v.type)));
  }
}

// Emits the value body (no type tag); ValidateValue has vetted it, so get_if never fails here.
Status EmitValue(Sink& sink, const Value& v) {
  const int width = ScalarWidth(v.type);
  switch (v.type) {
    case ValueType::kU8:
    case ValueType::kU16:
    case ValueType::kU32:
    case ValueType::kU64:
      return PutUint(sink, *std::get_if<uint64_t>(&v.data), width);
    case ValueType::kI8:
    case ValueType::kI16:
    case ValueType::kI32:
    case ValueType::kI64:
      // Two's complement, truncated to the width (the value was range-checked).
      return PutUint(sink, static_cast<uint64_t>(*std::get_if<int64_t>(&v.data)), width);
    case ValueType::kF32:
      return PutUint(sink,
                     std::bit_cast<uint32_t>(static_cast<float>(*std::get_if<double>(&v.data))), 4);
    case ValueType::kF64:
      return PutUint(sink, std::bit_cast<uint64_t>(*std::get_if<double>(&v.data)), 8);
    case ValueType::kBool:
      return PutUint(sink, *std::get_if<bool>(&v.data) ? 1 : 0, 1);
    case ValueType::kString:
      return PutString(sink, *std::get_if<std::string>(&v.data));
    case ValueType::kArray: {
      const auto& arr = *std::get_if<ArrayValue>(&v.data);
      GL_RETURN_IF_ERROR(PutUint(sink, static_cast<uint32_t>(arr.elem_type), 4));
      GL_RETURN_IF_ERROR(PutUint(sink, arr.elems.size(), 8));
      for (const Value& e : arr.elems) GL_RETURN_IF_ERROR(EmitValue(sink, e));
      return Status::Ok();
    }
  }
  return InternalError("unhandled value type");
}

}  // namespace

void GgufWriter::Set(std::string key, Value value) {
  for (auto& kv : metadata_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  metadata_.push_back(KeyValue{std::move(key), std::move(value)});
}

Status GgufWriter::AddTensor(std::string name, DType dtype, std::vector<int64_t> ne,
                             std::vector<uint8_t> data) {
  if (name.empty()) return InvalidArgumentError("GgufWriter::AddTensor: empty tensor name");
  const std::string where = "tensor " + QuoteName(name);
  if (name.size() > kMaxTensorNameBytes) {
    return InvalidArgumentError(where + ": name is " + std::to_string(name.size()) +
                                " bytes, over the limit of " + std::to_string(kMaxTensorNameBytes));
  }
  if (!IsValidUtf8(name)) return InvalidArgumentError(where + ": name is not valid UTF-8");
  for (const auto& t : tensors_) {
    if (t.name == name) return InvalidArgumentError(where + ": duplicate tensor name");
  }
  if (ne.empty() || ne.size() > kMaxDims) {
    return InvalidArgumentError(where + ": " + std::to_string(ne.size()) + " dims, expected 1.." +
                                std::to_string(kMaxDims));
  }
  uint64_t n_elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 1) {
      return InvalidArgumentError(where + ": ne[" + std::to_string(d) + "] = " +
                                  std::to_string(ne[d]) + "; every dimension must be >= 1");
    }
    auto p = CheckedMul(n_elements, static_cast<uint64_t>(ne[d]));
    if (!p || *p > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgumentError(where + ": element count overflows int64");
    }
    n_elements = *p;
  }
  if (dtype >= DType::kCount) return InvalidArgumentError(where + ": invalid dtype");
  const DTypeTraits& traits = Traits(dtype);
  if (traits.removed) {
    return InvalidArgumentError(where + ": type " + traits.name + " was removed from ggml");
  }
  if (traits.ggml_id < 0) {
    return InvalidArgumentError(where + ": type " + traits.name + " has no GGUF type id");
  }
  if (static_cast<uint64_t>(ne[0]) % traits.block_elems != 0) {
    return InvalidArgumentError(where + ": ne[0] = " + std::to_string(ne[0]) +
                                " is not a multiple of the " + traits.name + " block size " +
                                std::to_string(traits.block_elems));
  }
  Result<uint64_t> n_bytes = DTypeByteSize(dtype, n_elements);
  if (!n_bytes.ok()) return n_bytes.status().WithContext(where);
  if (*n_bytes != data.size()) {
    return InvalidArgumentError(where + ": data has " + std::to_string(data.size()) +
                                " bytes, expected " + std::to_string(*n_bytes) + " for " +
                                traits.name + " with " + std::to_string(n_elements) + " elements");
  }
  tensors_.push_back(PendingTensor{std::move(name), dtype, std::move(ne), std::move(data)});
  return Status::Ok();
}

namespace {

// What Plan decides: whether the alignment key is appended, and each tensor's data offset.
struct Layout {
  bool append_alignment_key = false;
  std::vector<uint64_t> offsets;
};

}  // namespace

// Validates everything and computes offsets; see the file comment. (Free function over the
// writer's parts so the private struct stays out of the header.)
template <typename Tensors>
static Result<Layout> PlanLayout(const std::vector<KeyValue>& metadata, const Tensors& tensors,
                                 uint64_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment) ||
      alignment > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgumentError("GGUF alignment " + std::to_string(alignment) +
                                " must be a nonzero power of two that fits in u32");
  }
  Layout layout;
  bool has_alignment_key = false;
  for (size_t i = 0; i < metadata.size(); ++i) {
    const KeyValue& kv = metadata[i];
    const std::string where = "key " + QuoteName(kv.key);
    if (kv.key.empty()) return InvalidArgumentError("key #" + std::to_string(i) + " is empty");
    if (kv.key.size() > kMaxKeyBytes) {
      return InvalidArgumentError(where + ": key is over the limit of " +
                                  std::to_string(kMaxKeyBytes) + " bytes");
    }
    if (!IsValidUtf8(kv.key)) return InvalidArgumentError(where + ": key is not valid UTF-8");
    Status s = ValidateValue(kv.value, 0);
    if (!s.ok()) return s.WithContext(where);
    if (kv.key == kAlignmentKey) {
      has_alignment_key = true;
      const auto* u = std::get_if<uint64_t>(&kv.value.data);
      if (kv.value.type != ValueType::kU32 || u == nullptr || *u != alignment) {
        return InvalidArgumentError(where + ": metadata holds " + ValueTypeName(kv.value.type) +
                                    (u ? " " + std::to_string(*u) : std::string()) +
                                    " but the file is being written with u32 alignment " +
                                    std::to_string(alignment));
      }
    }
  }
  layout.append_alignment_key = !has_alignment_key && alignment != kDefaultAlignment;
  uint64_t offset = 0;
  layout.offsets.reserve(tensors.size());
  for (const auto& t : tensors) {
    layout.offsets.push_back(offset);
    auto end = CheckedAdd(offset, t.data.size());
    auto next = end ? CheckedAlignUp(*end, alignment) : std::nullopt;
    if (!next) return InvalidArgumentError("tensor " + QuoteName(t.name) + ": data offset overflows");
    offset = *next;
  }
  return layout;
}

template <typename Tensors>
static Status EmitFile(Sink& sink, const std::vector<KeyValue>& metadata, const Tensors& tensors,
                       uint64_t alignment, const Layout& layout) {
  GL_RETURN_IF_ERROR(sink.Write("GGUF", 4));
  GL_RETURN_IF_ERROR(PutUint(sink, kVersion, 4));
  GL_RETURN_IF_ERROR(PutUint(sink, tensors.size(), 8));
  GL_RETURN_IF_ERROR(PutUint(sink, metadata.size() + (layout.append_alignment_key ? 1 : 0), 8));
  auto emit_kv = [&sink](std::string_view key, const Value& value) -> Status {
    GL_RETURN_IF_ERROR(PutString(sink, key));
    GL_RETURN_IF_ERROR(PutUint(sink, static_cast<uint32_t>(value.type), 4));
    return EmitValue(sink, value);
  };
  for (const KeyValue& kv : metadata) GL_RETURN_IF_ERROR(emit_kv(kv.key, kv.value));
  if (layout.append_alignment_key) {
    GL_RETURN_IF_ERROR(emit_kv(kAlignmentKey, Value::U32(static_cast<uint32_t>(alignment))));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    GL_RETURN_IF_ERROR(PutString(sink, t.name));
    GL_RETURN_IF_ERROR(PutUint(sink, t.ne.size(), 4));
    for (int64_t d : t.ne) GL_RETURN_IF_ERROR(PutUint(sink, static_cast<uint64_t>(d), 8));
    GL_RETURN_IF_ERROR(PutUint(sink, static_cast<uint32_t>(Traits(t.dtype).ggml_id), 4));
    GL_RETURN_IF_ERROR(PutUint(sink, layout.offsets[i], 8));
  }
  GL_RETURN_IF_ERROR(PadTo(sink, alignment));
  for (const auto& t : tensors) {
    GL_RETURN_IF_ERROR(sink.Write(t.data.data(), t.data.size()));
    GL_RETURN_IF_ERROR(PadTo(sink, alignment));
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> GgufWriter::Serialize(uint64_t alignment) const {
  GL_ASSIGN_OR_RETURN(Layout layout, PlanLayout(metadata_, tensors_, alignment));
  std::vector<uint8_t> out;
  VectorSink sink(out);
  GL_RETURN_IF_ERROR(EmitFile(sink, metadata_, tensors_, alignment, layout));
  return out;
}

// Writes to "<path>.tmp-<pid>-<nonce>" in the same directory (so rename stays on one
// filesystem and is atomic), fsyncs, then renames over `path`. A failure removes the temp file
// and leaves any existing `path` untouched.
Status GgufWriter::WriteFile(const std::string& path, uint64_t alignment) const {
  Result<Layout> layout = PlanLayout(metadata_, tensors_, alignment);
  if (!layout.ok()) return layout.status().WithContext(path);

  // The suffix only needs to make collisions unlikely; O_EXCL makes them safe. (No
  // std::random_device: its constructor may throw.)
  const auto nonce =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(nonce + attempt);
    // 0666 lets the umask decide the final permissions, as for any newly created file.
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    return IoError(path + ": cannot create temporary file '" + tmp + "': " + std::strerror(errno));
  }
  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  FdSink sink(fd, path);
  Status s = EmitFile(sink, metadata_, tensors_, alignment, *layout);
  if (s.ok()) s = sink.Flush();
  if (!s.ok()) return fail(s);
  if (::fsync(fd) != 0) return fail(IoError(path + ": fsync failed: " + std::strerror(errno)));
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return IoError(path + ": close failed: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return IoError(path + ": cannot rename '" + tmp + "' into place: " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace gemma_local::gguf
