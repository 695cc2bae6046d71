// safetensors reader and writer, single file and sharded (model.safetensors.index.json). Knows
// nothing of Gemma.
//
// Reader contract:
// - Memory-mapped, zero copy: Tensor::data points into the shard's mapping, valid while the
//   SafetensorsFile / SafetensorsCheckpoint lives.
// - The JSON header is untrusted: its length is checked against the file (and capped at
//   kMaxHeaderBytes), every entry's dtype, shape and data_offsets are validated (byte size equals
//   prod(shape) * element size, offsets inside the data section, no overlaps, no holes, names
//   unique and valid UTF-8). Errors name the file and tensor with expected vs actual.
// Thread-safety: parsed objects are immutable; concurrent reads are safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "gemma_local/status.h"

namespace gemma_local::safetensors {

inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // same cap as the reference library

struct Tensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first (row-major), as in the file; may be empty (scalar)
  uint64_t offset = 0;         // from the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;
  std::string file;            // the shard it lives in (its path)
  uint64_t n_elements() const;
};

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> Open(const std::string& path);
  static Result<SafetensorsFile> Parse(std::shared_ptr<const MappedFile> mapping);
  // Caller-owned bytes that must outlive the result (fuzzers, tests).
  static Result<SafetensorsFile> ParseBytes(const uint8_t* data, uint64_t size,
                                            std::string display_name);

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }  // sorted by offset
  const Tensor* FindTensor(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // __metadata__

 private:
  std::shared_ptr<const MappedFile> mapping_;
  std::string path_;
  uint64_t file_size_ = 0;
  std::vector<Tensor> tensors_;
  std::vector<size_t> by_name_;  // indices into tensors_, sorted by name (FindTensor)
  std::map<std::string, std::string> metadata_;
  friend class SafetensorsParser;
};

// A checkpoint's tensors across one or more shards.
class SafetensorsCheckpoint {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, or a directory holding either
  // (the index wins when both exist). For an index: every shard it names must exist and contain
  // exactly the tensors the weight_map assigns to it; a tensor name in two shards is an error.
  static Result<SafetensorsCheckpoint> Open(const std::string& path);

  const std::vector<Tensor>& tensors() const { return tensors_; }  // in shard, then offset order
  const Tensor* FindTensor(std::string_view name) const;
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  uint64_t total_file_bytes() const { return total_file_bytes_; }

 private:
  std::vector<SafetensorsFile> shards_;
  std::vector<std::string> shard_paths_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  uint64_t total_file_bytes_ = 0;
};

class SafetensorsWriter {
 public:
  // `shape` is outermost first; `data` must hold prod(shape) * element size bytes.
  Status AddTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                   std::vector<uint8_t> data);
  void SetMetadata(std::string key, std::string value);
  // One file. Tensors are laid out in insertion order; the header is padded with spaces to a
  // multiple of 8 bytes.
  Status WriteFile(const std::string& path) const;
  Result<std::vector<uint8_t>> Serialize() const;
  // Shards of at most `max_shard_bytes` of tensor data each (a larger tensor gets its own shard),
  // named model-0000N-of-0000M.safetensors, plus model.safetensors.index.json, into `dir`.
  Status WriteSharded(const std::string& dir, uint64_t max_shard_bytes) const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<PendingTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace gemma_local::safetensors
