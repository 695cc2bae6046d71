// A read-only memory mapping of a whole file. Tensor views point into it (zero copy), so it must
// outlive them; it is move-only and unmaps on destruction. Thread-safe to read concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gemma_local/status.h"

namespace gemma_local {

class MappedFile {
 public:
  // Maps `path` read-only. Errors name the path and the OS reason. An empty file maps to size 0.
  static Result<std::shared_ptr<const MappedFile>> Open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(data_), static_cast<size_t>(size_)};
  }

 private:
  MappedFile(std::string path, const uint8_t* data, uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// The whole of a small file (config.json, tokenizer_config.json, a chat template) as a string,
// read through a mapping. kResourceExhausted naming the path when it exceeds `max_bytes` (the cap
// keeps a wrong path, such as a weights file, from being copied into memory); open errors as
// MappedFile::Open. The one whole-file reader of the library: layers above use it rather than
// their own ifstream loops, so every such read has the same cap and error text.
Result<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes);

}  // namespace gemma_local
