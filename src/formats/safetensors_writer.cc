// safetensors writer: single file (in memory or atomically on disk) and transformers-style shards.
//
// The writer never produces what the reader rejects: AddTensor validates every tensor up front, the
// data section is laid out contiguously in insertion order (no holes, no overlaps), and the header
// is padded with spaces to a multiple of 8 like the reference library, so the data section is
// 8-byte aligned.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/checked_math.h"
#include "core/error_text.h"
#include "core/utf8.h"
#include "formats/safetensors.h"

namespace gemma_local::safetensors {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr uint64_t kHeaderAlignment = 8;
constexpr const char* kIndexFileName = "model.safetensors.index.json";

// A tensor to lay out; points into the writer's pending tensors.
struct TensorRef {
  const std::string* name;
  DType dtype;
  const std::vector<int64_t>* shape;
  const std::vector<uint8_t>* data;
};

// The serialized form of one file, minus the tensor bytes (which stay where they are).
struct FilePlan {
  std::string prefix;                               // 8-byte length + padded header JSON
  std::vector<const std::vector<uint8_t>*> chunks;  // tensor data, in layout order
  uint64_t total_bytes = 0;
};

// Builds the header for `tensors` laid out contiguously in the given order. Exceptions from
// nlohmann (invalid UTF-8) are caught by the callers' boundaries; inputs are pre-validated anyway.
Result<FilePlan> PlanFile(const std::vector<TensorRef>& tensors,
                          const std::map<std::string, std::string>& metadata) {
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key)) {
      return InvalidArgumentError("metadata key " + QuoteName(key) + " is not valid UTF-8");
    }
    if (!IsValidUtf8(value)) {
      return InvalidArgumentError("metadata value for key " + QuoteName(key) + " is not valid UTF-8");
    }
  }
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  FilePlan plan;
  uint64_t offset = 0;
  for (const TensorRef& t : tensors) {
    auto end = CheckedAdd(offset, t.data->size());
    if (!end) return ResourceExhaustedError("total tensor bytes overflow 64 bits");
    OrderedJson entry = OrderedJson::object();
    entry["dtype"] = Traits(t.dtype).safetensors_name;
    entry["shape"] = *t.shape;
    entry["data_offsets"] = OrderedJson::array({offset, *end});
    header[*t.name] = std::move(entry);
    plan.chunks.push_back(t.data);
    offset = *end;
  }
  std::string json =
      header.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::strict);
  auto padded = CheckedAlignUp(json.size(), kHeaderAlignment);
  if (!padded || *padded > kMaxHeaderBytes) {
    return ResourceExhaustedError("header would be " + std::to_string(json.size()) +
                                  " bytes, over the reader's limit of " +
                                  std::to_string(kMaxHeaderBytes));
  }
  json.resize(*padded, ' ');
  plan.prefix.resize(8);
  for (int i = 0; i < 8; ++i) plan.prefix[i] = static_cast<char>((*padded >> (8 * i)) & 0xFF);
  plan.prefix += json;
  auto total = CheckedAdd(plan.prefix.size(), offset);
  if (!total) return ResourceExhaustedError("file size overflows 64 bits");
  plan.total_bytes = *total;
  return plan;
}

Status WriteAll(int fd, const uint8_t* p, size_t n, const std::string& tmp_path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError(tmp_path + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Writes `pieces` to a fresh temporary file next to `path`, fsyncs it and renames it over `path`,
// so readers see either the old file or the complete new one. Errors name `path`; the temporary
// file is removed on failure.
Status WriteAtomically(const std::string& path, const std::vector<std::string_view>& pieces) {
  std::random_device rd;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), ".tmp-%08x", static_cast<unsigned>(rd()));
    tmp = path + suffix;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    return IoError(path + ": cannot create temporary file " + tmp + ": " + std::strerror(errno));
  }
  Status status;
  for (std::string_view piece : pieces) {
    status = WriteAll(fd, reinterpret_cast<const uint8_t*>(piece.data()), piece.size(), tmp);
    if (!status.ok()) break;
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = IoError(tmp + ": fsync failed: " + std::strerror(errno));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = IoError(tmp + ": close failed: " + std::strerror(errno));
  }
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = IoError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status.WithContext(path);
  }
  return Status::Ok();
}

Status WritePlan(const std::string& path, const FilePlan& plan) {
  std::vector<std::string_view> pieces;
  pieces.reserve(plan.chunks.size() + 1);
  pieces.emplace_back(plan.prefix);
  for (const auto* chunk : plan.chunks) {
    pieces.emplace_back(reinterpret_cast<const char*>(chunk->data()), chunk->size());
  }
  return WriteAtomically(path, pieces);
}

std::string ShardName(size_t index, size_t count) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", index, count);
  return buf;
}

// Runs `fn` (returning Status) with library exceptions turned into errors naming `what`.
template <typename Fn>
auto CatchAll(const std::string& what, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError(what + ": out of memory");
  } catch (const std::exception& e) {
    return InternalError(what + ": unexpected exception: " + EscapeForMessage(e.what(), 200));
  }
}

}  // namespace

Status SafetensorsWriter::AddTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                                    std::vector<uint8_t> data) {
  const std::string prefix = "tensor " + QuoteName(name) + ": ";
  if (name.empty()) return InvalidArgumentError("tensor name is empty");
  if (!IsValidUtf8(name)) return InvalidArgumentError(prefix + "name is not valid UTF-8");
  if (name == "__metadata__") {
    return InvalidArgumentError(prefix + "name is reserved for the header's metadata");
  }
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return InvalidArgumentError(prefix + "already added");
  }
  const char* st_name = Traits(dtype).safetensors_name;
  if (st_name == nullptr) {
    return InvalidArgumentError(prefix + "dtype " + DTypeName(dtype) +
                                " has no safetensors representation");
  }
  uint64_t n_elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return InvalidArgumentError(prefix + "shape[" + std::to_string(i) + "] is " +
                                  std::to_string(shape[i]) + ", expected >= 0");
    }
  }
  for (int64_t d : shape) {
    auto next = CheckedMul(n_elements, static_cast<uint64_t>(d));
    if (!next) return InvalidArgumentError(prefix + "element count overflows 64 bits");
    n_elements = *next;
  }
  Result<uint64_t> needed = DTypeByteSize(dtype, n_elements);
  if (!needed.ok()) return InvalidArgumentError(prefix + needed.status().message());
  if (data.size() != *needed) {
    return InvalidArgumentError(prefix + "data holds " + std::to_string(data.size()) +
                                " bytes, shape of " + std::to_string(n_elements) + " " + st_name +
                                " elements needs " + std::to_string(*needed));
  }
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(data)});
  return Status::Ok();
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

Result<std::vector<uint8_t>> SafetensorsWriter::Serialize() const {
  return CatchAll("safetensors serialize", [&]() -> Result<std::vector<uint8_t>> {
    std::vector<TensorRef> refs;
    for (const PendingTensor& t : tensors_) refs.push_back({&t.name, t.dtype, &t.shape, &t.data});
    GL_ASSIGN_OR_RETURN(FilePlan plan, PlanFile(refs, metadata_));
    std::vector<uint8_t> out;
    out.reserve(plan.total_bytes);
    out.insert(out.end(), plan.prefix.begin(), plan.prefix.end());
    for (const auto* chunk : plan.chunks) out.insert(out.end(), chunk->begin(), chunk->end());
    return out;
  });
}

Status SafetensorsWriter::WriteFile(const std::string& path) const {
  return CatchAll(path, [&]() -> Status {
    std::vector<TensorRef> refs;
    for (const PendingTensor& t : tensors_) refs.push_back({&t.name, t.dtype, &t.shape, &t.data});
    Result<FilePlan> plan = PlanFile(refs, metadata_);
    if (!plan.ok()) return plan.status().WithContext(path);
    return WritePlan(path, *plan);
  });
}

Status SafetensorsWriter::WriteSharded(const std::string& dir, uint64_t max_shard_bytes) const {
  return CatchAll(dir, [&]() -> Status {
    if (max_shard_bytes == 0) return InvalidArgumentError(dir + ": max_shard_bytes must be > 0");
    if (tensors_.empty()) return InvalidArgumentError(dir + ": no tensors to write");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return IoError(dir + ": cannot create directory: " + ec.message());

    // Greedy packing in insertion order: a shard closes when the next tensor would push it past
    // the limit; a tensor larger than the limit gets a shard of its own.
    std::vector<std::vector<TensorRef>> shards;
    uint64_t shard_bytes = 0;
    uint64_t total_size = 0;
    for (const PendingTensor& t : tensors_) {
      const uint64_t n = t.data.size();
      // No overflow: these sums are of bytes that exist in memory.
      if (shards.empty() || (shard_bytes > 0 && shard_bytes + n > max_shard_bytes)) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().push_back({&t.name, t.dtype, &t.shape, &t.data});
      shard_bytes += n;
      total_size += n;
    }

    std::map<std::string, std::string> weight_map;  // sorted by name, like transformers
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name = ShardName(i + 1, shards.size());
      const std::string path = dir + "/" + name;
      Result<FilePlan> plan = PlanFile(shards[i], metadata_);
      if (!plan.ok()) return plan.status().WithContext(path);
      GL_RETURN_IF_ERROR(WritePlan(path, *plan));
      for (const TensorRef& t : shards[i]) weight_map[*t.name] = name;
    }
    OrderedJson index = OrderedJson::object();
    index["metadata"] = OrderedJson::object({{"total_size", total_size}});
    index["weight_map"] = weight_map;
    const std::string text = index.dump(2) + "\n";
    return WriteAtomically(dir + "/" + kIndexFileName, {text});
  });
}

}  // namespace gemma_local::safetensors
