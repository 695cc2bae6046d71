// SafetensorsCheckpoint: one .safetensors file, or the shards named by a transformers-style
// model.safetensors.index.json ({"metadata": {...}?, "weight_map": {tensor: shard file}}).
//
// The index is as untrusted as the shards: shard names must be plain file names in the index's
// directory (no path traversal), every named shard must exist, and the shards must hold exactly
// the tensors the weight_map assigns to them, each in one shard only.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
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

constexpr const char* kIndexFileName = "model.safetensors.index.json";
constexpr const char* kSingleFileName = "model.safetensors";
// Real indexes are well under 1 MiB (a few hundred bytes per tensor); the cap bounds memory.
constexpr uint64_t kMaxIndexBytes = 100ull << 20;
// Nesting allowed inside "metadata" and unknown top-level fields, which are skipped.
constexpr int kMaxSkipDepth = 64;

// Walks the index JSON's events: weight_map must be an object of string to string (duplicate
// tensor names are an error, which a DOM would silently collapse), metadata must be an object
// (contents ignored), other top-level fields are skipped. Handlers return false after recording
// the first error.
class IndexHandler final : public nlohmann::json_sax<Json> {
 public:
  std::map<std::string, std::string>& weight_map() { return weight_map_; }
  bool has_weight_map() const { return has_weight_map_; }
  const std::string& error() const { return error_; }

  bool null() override {
    return OnScalar(nullptr, [] { return std::string("null"); });
  }
  bool boolean(bool v) override {
    return OnScalar(nullptr, [v] { return std::string(v ? "boolean true" : "boolean false"); });
  }
  bool number_integer(number_integer_t v) override {
    return OnScalar(nullptr, [v] { return "number " + std::to_string(v); });
  }
  bool number_unsigned(number_unsigned_t v) override {
    return OnScalar(nullptr, [v] { return "number " + std::to_string(v); });
  }
  bool number_float(number_float_t, const string_t& s) override {
    return OnScalar(nullptr, [&s] { return "number " + EscapeForMessage(s, 40); });
  }
  bool string(string_t& v) override {
    return OnScalar(&v, [&v] { return "string " + QuoteName(v); });
  }
  bool binary(binary_t&) override {
    return OnScalar(nullptr, [] { return std::string("binary value"); });
  }

  bool start_object(std::size_t) override { return OnStart(/*is_object=*/true); }
  bool start_array(std::size_t) override { return OnStart(/*is_object=*/false); }
  bool end_object() override { return OnEnd(); }
  bool end_array() override { return OnEnd(); }

  bool key(string_t& k) override {
    if (state_ == State::kSkip) return true;
    if (state_ == State::kRootKey) {
      if (k == "weight_map" && has_weight_map_) return Fail("duplicate field 'weight_map'");
      if (k == "metadata" && has_metadata_) return Fail("duplicate field 'metadata'");
      pending_ = k;
      state_ = State::kRootValue;
      return true;
    }
    if (state_ == State::kMapKey) {
      if (k.empty()) return Fail("weight_map has an empty tensor name");
      if (weight_map_.count(k) != 0) return Fail("weight_map lists tensor " + QuoteName(k) + " twice");
      pending_ = k;
      state_ = State::kMapValue;
      return true;
    }
    return Fail("internal: unexpected key event");
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    return Fail(std::string("index is not valid JSON: ") + EscapeForMessage(ex.what(), 300));
  }

 private:
  enum class State { kStart, kRootKey, kRootValue, kMapKey, kMapValue, kSkip, kDone };

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  // `describe()` renders the value for an error message; it runs only on error paths.
  template <typename Describe>
  bool OnScalar(const std::string* str, Describe describe) {
    switch (state_) {
      case State::kStart:
        return Fail("index must be a JSON object, got " + describe());
      case State::kRootValue:
        if (pending_ == "weight_map") {
          return Fail("'weight_map' must be an object of tensor name to shard file name, got " +
                      describe());
        }
        if (pending_ == "metadata") return Fail("'metadata' must be an object, got " + describe());
        state_ = State::kRootKey;  // an unknown top-level scalar field: ignored
        return true;
      case State::kMapValue:
        if (str == nullptr) {
          return Fail("weight_map: tensor " + QuoteName(pending_) +
                      ": shard must be a file name string, got " + describe());
        }
        weight_map_.emplace(std::move(pending_), *str);
        state_ = State::kMapKey;
        return true;
      case State::kSkip:
        return true;
      default:
        return Fail("internal: unexpected JSON value");
    }
  }

  bool OnStart(bool is_object) {
    const char* kind = is_object ? "object" : "array";
    switch (state_) {
      case State::kStart:
        if (!is_object) return Fail("index must be a JSON object, got array");
        state_ = State::kRootKey;
        return true;
      case State::kRootValue:
        if (pending_ == "weight_map") {
          if (!is_object) {
            return Fail(
                "'weight_map' must be an object of tensor name to shard file name, got array");
          }
          has_weight_map_ = true;
          state_ = State::kMapKey;
          return true;
        }
        if (pending_ == "metadata") {
          if (!is_object) return Fail("'metadata' must be an object, got array");
          has_metadata_ = true;
        }
        state_ = State::kSkip;
        skip_depth_ = 1;
        return true;
      case State::kMapValue:
        return Fail("weight_map: tensor " + QuoteName(pending_) +
                    ": shard must be a file name string, got " + kind);
      case State::kSkip:
        if (++skip_depth_ > kMaxSkipDepth) {
          return Fail("index nests deeper than " + std::to_string(kMaxSkipDepth) + " levels");
        }
        return true;
      default:
        return Fail("internal: unexpected start of a container");
    }
  }

  bool OnEnd() {
    switch (state_) {
      case State::kRootKey:
        state_ = State::kDone;
        return true;
      case State::kMapKey:
        state_ = State::kRootKey;
        return true;
      case State::kSkip:
        if (--skip_depth_ == 0) state_ = State::kRootKey;
        return true;
      default:
        return Fail("internal: unexpected end of a container");
    }
  }

  State state_ = State::kStart;
  std::string pending_;
  int skip_depth_ = 0;
  bool has_weight_map_ = false;
  bool has_metadata_ = false;
  std::map<std::string, std::string> weight_map_;
  std::string error_;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// True when `name` names a file directly inside the index's directory: no separators, no "..",
// no NUL (which would truncate the path the OS sees).
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos && name.find('\0') == std::string_view::npos &&
         name.find("..") == std::string_view::npos && name != ".";
}

// The weight_map of an index, validated for structure and shard names. Errors lack the path;
// ReadIndex adds it.
Result<std::map<std::string, std::string>> ParseIndex(const MappedFile& mapping) {
  if (mapping.size() > kMaxIndexBytes) {
    return ResourceExhaustedError("index is " + std::to_string(mapping.size()) +
                                  " bytes, over the limit of " + std::to_string(kMaxIndexBytes));
  }
  const std::string_view text = mapping.bytes();
  const size_t bad = FirstInvalidUtf8Offset(text);
  if (bad != text.size()) {
    return CorruptDataError("index is not valid UTF-8 at byte " + std::to_string(bad));
  }
  // nlohmann's lexer stops at a NUL byte; a raw NUL is never valid JSON.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos) {
    return CorruptDataError("index is not valid JSON: NUL byte at byte " + std::to_string(nul));
  }
  IndexHandler handler;
  const bool parsed = Json::sax_parse(text.data(), text.data() + text.size(), &handler,
                                      Json::input_format_t::json, /*strict=*/true,
                                      /*ignore_comments=*/false);
  if (!parsed || !handler.error().empty()) {
    return CorruptDataError(handler.error().empty() ? std::string("index is not valid JSON")
                                                    : handler.error());
  }
  if (!handler.has_weight_map()) return CorruptDataError("index has no 'weight_map' field");
  std::map<std::string, std::string>& weight_map = handler.weight_map();
  if (weight_map.empty()) return CorruptDataError("index 'weight_map' lists no tensors");
  for (const auto& [tensor, shard] : weight_map) {
    if (!IsPlainFileName(shard)) {
      return CorruptDataError("weight_map: tensor " + QuoteName(tensor) + ": shard " + QuoteName(shard) +
                              " is not a plain file name in the index's directory (path "
                              "separators and '..' are not allowed)");
    }
  }
  return std::move(weight_map);
}

// The weight_map of the index at `path`, validated for structure and shard names. Errors name
// the path.
Result<std::map<std::string, std::string>> ReadIndex(const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  Result<std::map<std::string, std::string>> result = ParseIndex(*mapping);
  if (!result.ok()) return result.status().WithContext(path);
  return result;
}

// NotFound (naming `what`) when `path` does not exist; other stat failures surface later, from
// the open that follows.
Status CheckExists(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    return NotFoundError(what + " not found: " + path);
  }
  return Status::Ok();
}

}  // namespace

Result<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& path) {
  try {
    std::string index_path;
    std::string single_path;
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st)) {
      return NotFoundError(path + ": no such file or directory" +
                           (ec && ec != std::errc::no_such_file_or_directory
                                ? " (" + ec.message() + ")"
                                : std::string()));
    }
    if (std::filesystem::is_directory(st)) {
      const std::string dir = path.empty() || path.back() == '/' ? path : path + "/";
      if (std::filesystem::is_regular_file(dir + kIndexFileName, ec)) {
        index_path = dir + kIndexFileName;
      } else if (std::filesystem::exists(dir + kSingleFileName, ec)) {
        single_path = dir + kSingleFileName;
      } else {
        return NotFoundError(path + ": directory holds neither " + kIndexFileName + " nor " +
                             kSingleFileName);
      }
    } else if (EndsWith(path, ".json")) {
      index_path = path;
    } else {
      single_path = path;
    }

    SafetensorsCheckpoint cp;
    if (!single_path.empty()) {
      GL_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(single_path));
      cp.shard_paths_.push_back(single_path);
      cp.total_file_bytes_ = file.file_size();
      cp.shards_.push_back(std::move(file));
    } else {
      using WeightMap = std::map<std::string, std::string>;
      GL_ASSIGN_OR_RETURN(const WeightMap weight_map, ReadIndex(index_path));
      std::map<std::string, std::vector<std::string>> by_shard;  // shard -> its tensors
      for (const auto& [tensor, shard] : weight_map) by_shard[shard].push_back(tensor);

      const std::string dir = std::filesystem::path(index_path).parent_path().string();
      std::vector<std::string> shard_names;
      for (const auto& [shard, tensors] : by_shard) {
        const std::string shard_path = dir.empty() ? shard : dir + "/" + shard;
        Status exists = CheckExists(
            shard_path, "shard " + QuoteName(shard) + " (assigned " + std::to_string(tensors.size()) +
                            " tensors, e.g. " + QuoteName(tensors.front()) + ")");
        if (!exists.ok()) return exists.WithContext(index_path);
        GL_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(shard_path));
        auto total = CheckedAdd(cp.total_file_bytes_, file.file_size());
        if (!total) return CorruptDataError(index_path + ": total shard size overflows 64 bits");
        cp.total_file_bytes_ = *total;
        cp.shard_paths_.push_back(shard_path);
        cp.shards_.push_back(std::move(file));
        shard_names.push_back(shard);
      }

      // A tensor in two shards is reported as such before the (then inevitable) disagreement
      // with the weight_map.
      std::map<std::string_view, size_t> home;  // tensor -> shard index
      for (size_t s = 0; s < cp.shards_.size(); ++s) {
        for (const Tensor& t : cp.shards_[s].tensors()) {
          auto [it, inserted] = home.emplace(t.name, s);
          if (!inserted) {
            return CorruptDataError(index_path + ": tensor " + QuoteName(t.name) +
                                    " appears in both shard " + QuoteName(shard_names[it->second]) +
                                    " and shard " + QuoteName(shard_names[s]));
          }
        }
      }
      for (size_t s = 0; s < cp.shards_.size(); ++s) {
        for (const Tensor& t : cp.shards_[s].tensors()) {
          auto it = weight_map.find(t.name);
          if (it == weight_map.end()) {
            return CorruptDataError(index_path + ": tensor " + QuoteName(t.name) + " is in shard " +
                                    QuoteName(shard_names[s]) +
                                    " but the index weight_map does not list it");
          }
          if (it->second != shard_names[s]) {
            return CorruptDataError(index_path + ": tensor " + QuoteName(t.name) + " is in shard " +
                                    QuoteName(shard_names[s]) + " but the index assigns it to shard " +
                                    QuoteName(it->second));
          }
        }
      }
      for (const auto& [tensor, shard] : weight_map) {
        if (home.count(tensor) == 0) {
          return CorruptDataError(index_path + ": the index assigns tensor " + QuoteName(tensor) +
                                  " to shard " + QuoteName(shard) + ", which does not contain it");
        }
      }
    }

    for (const SafetensorsFile& shard : cp.shards_) {
      for (const Tensor& t : shard.tensors()) {
        cp.index_.emplace(t.name, cp.tensors_.size());
        cp.tensors_.push_back(t);
      }
    }
    return cp;
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError(path + ": out of memory while opening the checkpoint");
  } catch (const std::exception& e) {
    return InternalError(path + ": unexpected exception while opening the checkpoint: " +
                         EscapeForMessage(e.what(), 200));
  }
}

const Tensor* SafetensorsCheckpoint::FindTensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace gemma_local::safetensors
