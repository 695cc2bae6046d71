// `gemma-local extract`'s inputs, model hash and journal (extract_io.h).
#include "cli/extract_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace gemma_local::cli::extract {
namespace {

namespace fs = std::filesystem;

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError(path + ": read failed");
  return text.str();
}

Document FileDocument(const std::string& path, std::string id) {
  Document d;
  d.id = std::move(id);
  d.key = d.id.dump();
  Result<std::string> text = ReadWhole(path);
  if (!text.ok()) {
    d.input_error = text.status().message();
  } else if (!IsUtf8(*text)) {
    d.input_error = path + ": not UTF-8 text";
  } else {
    d.text = std::move(*text);
  }
  return d;
}

Status ReadJsonl(const std::string& path, std::vector<Document>* out) {
  GL_ASSIGN_OR_RETURN(std::string text, ReadWhole(path));
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    Document d;
    if (!IsUtf8(line)) {
      // The id cannot be trusted either: name the line.
      return InvalidArgumentError(where + ": not UTF-8");
    }
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgumentError(where + ": expected a JSON object {\"id\": ..., \"text\": ...}");
    }
    const auto id = j.find("id");
    if (id == j.end() || !(id->is_string() || id->is_number_integer())) {
      return InvalidArgumentError(where + ": \"id\" must be a string or an integer");
    }
    const auto body = j.find("text");
    if (body == j.end() || !body->is_string()) {
      return InvalidArgumentError(where + ": \"text\" must be a string");
    }
    d.id = *id;
    d.key = d.id.dump();
    d.text = body->get<std::string>();
    out->push_back(std::move(d));
  }
  return Status();
}

// fsync of the directory holding `path`, so a rename or unlink in it is durable.
Status SyncDirectoryOf(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return IoError(dir.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError(dir.string() + ": fsync: " + std::strerror(errno));
  return Status();
}

Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(path + ": write: " + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status();
}

// The key and ok flag of an output line, or false when it is not one.
bool ParseLine(const std::string& line, std::string* key, bool* ok) {
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id")) return false;
  *key = j["id"].dump();
  const auto flag = j.find("ok");
  *ok = flag != j.end() && flag->is_boolean() && flag->get<bool>();
  return true;
}

}  // namespace

Result<std::vector<Document>> ListDocuments(const std::vector<std::string>& inputs) {
  std::vector<Document> docs;
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      std::vector<std::string> relative;
      for (auto it = fs::recursive_directory_iterator(input, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) {
          relative.push_back(fs::relative(it->path(), input, ec).generic_string());
        }
      }
      if (ec) return IoError(input + ": " + ec.message());
      std::sort(relative.begin(), relative.end());
      for (const std::string& rel : relative) {
        docs.push_back(FileDocument((fs::path(input) / rel).string(), rel));
      }
    } else if (fs::is_regular_file(input, ec)) {
      if (fs::path(input).extension() == ".jsonl") {
        GL_RETURN_IF_ERROR(ReadJsonl(input, &docs));
      } else {
        docs.push_back(FileDocument(input, input));
      }
    } else {
      return NotFoundError("--input " + input + ": no such file or directory");
    }
  }
  std::set<std::string> seen;
  for (const Document& d : docs) {
    if (!seen.insert(d.key).second) {
      return InvalidArgumentError("--input: document id " + d.key + " appears more than once");
    }
  }
  return docs;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& out_path) {
  std::unique_ptr<Journal> j(new Journal());
  j->out_path_ = out_path;
  j->journal_path_ = out_path + ".journal";
  std::error_code ec;
  // A finished earlier run's output: its lines count as done (or failed, to redo).
  if (fs::exists(out_path, ec)) {
    GL_ASSIGN_OR_RETURN(std::string text, ReadWhole(out_path));
    std::istringstream lines(text);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      if (line.empty()) continue;
      std::string key;
      bool ok = false;
      if (!ParseLine(line, &key, &ok)) {
        return InvalidArgumentError("--output " + out_path + ":" + std::to_string(number) +
                                    ": not a line `extract` wrote (remove the file to start over)");
      }
      j->lines_[key] = line;
      j->ok_[key] = ok;
    }
  }
  if (fs::exists(j->journal_path_, ec)) {
    GL_ASSIGN_OR_RETURN(std::string text, ReadWhole(j->journal_path_));
    // Whole lines only: a kill mid-write leaves a torn last line, which is cut.
    size_t good = 0;
    size_t start = 0;
    while (start < text.size()) {
      const size_t end = text.find('\n', start);
      if (end == std::string::npos) break;
      const std::string line = text.substr(start, end - start);
      std::string key;
      bool ok = false;
      if (!ParseLine(line, &key, &ok)) break;
      j->lines_[key] = line;
      j->ok_[key] = ok;
      good = end + 1;
      start = end + 1;
    }
    if (good < text.size()) {
      if (text.find('\n', good) != std::string::npos && text.find('\n', good) + 1 < text.size()) {
        return CorruptDataError(j->journal_path_ +
                                ": a line before the last is damaged (remove the journal and "
                                "the output to start over)");
      }
      if (::truncate(j->journal_path_.c_str(), static_cast<off_t>(good)) != 0) {
        return IoError(j->journal_path_ + ": truncate: " + std::strerror(errno));
      }
    }
  }
  j->fd_ = ::open(j->journal_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (j->fd_ < 0) return IoError(j->journal_path_ + ": " + std::strerror(errno));
  GL_RETURN_IF_ERROR(SyncDirectoryOf(j->journal_path_));
  return j;
}

bool Journal::Succeeded(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ok_.find(key);
  return it != ok_.end() && it->second;
}

Status Journal::Append(const std::string& key, const std::string& line) {
  std::string key_in_line;
  bool ok = false;
  if (!ParseLine(line, &key_in_line, &ok) || key_in_line != key) {
    return InternalError("journal line for " + key + " does not carry its id");
  }
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(WriteAll(fd_, line + "\n", journal_path_));
  if (::fdatasync(fd_) != 0) return IoError(journal_path_ + ": fdatasync: " + std::strerror(errno));
  lines_[key] = line;
  ok_[key] = ok;
  return Status();
}

Status Journal::Finish(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string text;
  for (const std::string& key : keys) {
    auto it = lines_.find(key);
    if (it == lines_.end()) return InternalError("no output line for document " + key);
    text += it->second;
    text += '\n';
  }
  const std::string tmp = out_path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(tmp + ": " + std::strerror(errno));
  Status written = WriteAll(fd, text, tmp);
  if (written.ok() && ::fsync(fd) != 0) written = IoError(tmp + ": fsync: " + std::strerror(errno));
  ::close(fd);
  GL_RETURN_IF_ERROR(written);
  if (::rename(tmp.c_str(), out_path_.c_str()) != 0) {
    return IoError(out_path_ + ": rename: " + std::strerror(errno));
  }
  GL_RETURN_IF_ERROR(SyncDirectoryOf(out_path_));
  ::close(fd_);
  fd_ = -1;
  if (::unlink(journal_path_.c_str()) != 0 && errno != ENOENT) {
    return IoError(journal_path_ + ": unlink: " + std::strerror(errno));
  }
  return SyncDirectoryOf(journal_path_);
}

}  // namespace gemma_local::cli::extract
