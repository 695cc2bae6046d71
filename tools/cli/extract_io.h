// `gemma-local extract`'s files: the documents to read, the model's hash, and the durable journal
// that makes a run resumable (a kill -9 loses at most the documents in flight, never a line).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::cli::extract {

struct Document {
  nlohmann::ordered_json id;  // a JSONL line's id as given; a file's path (relative to its dir)
  std::string key;            // id.dump(): what the journal matches on
  std::string text;
  std::string input_error;  // set when the document cannot be used (not UTF-8, unreadable)
};

// The documents of the --input arguments, in order: a directory gives its regular files
// (recursively, bytewise order of the relative path, which is the id), a *.jsonl file one document
// per line ({"id": string|number, "text": string}), any other file itself (id = the path as
// given). Errors (usage: exit 2) name the path and line: a missing input, a malformed JSONL line,
// a duplicate id.
Result<std::vector<Document>> ListDocuments(const std::vector<std::string>& inputs);

// SHA-256 (lower-case hex) of a model file, or of a checkpoint directory's regular files (names
// and bytes, in name order) as the server's audit log computes it.
Result<std::string> ModelSha256(const std::string& path);

// OUT.journal: one line per finished document, appended in completion order with one write and an
// fdatasync each. Open reads what an earlier run left (OUT itself, then the journal: the newest
// line per id wins) after cutting a torn last journal line; Finish writes OUT in input order
// through OUT.tmp, fsync and rename, then removes the journal.
class Journal {
 public:
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  static Result<std::unique_ptr<Journal>> Open(const std::string& out_path);

  // True when `key` finished with "ok": true (a rerun skips it; failed ones are redone).
  bool Succeeded(const std::string& key) const;
  // Records a finished document durably. Thread-safe.
  Status Append(const std::string& key, const std::string& line);
  // Writes OUT with the lines of `keys` in that order (each must have one) and removes the journal.
  Status Finish(const std::vector<std::string>& keys);

 private:
  Journal() = default;
  std::string out_path_;
  std::string journal_path_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::map<std::string, std::string> lines_;  // key -> line (no newline)
  std::map<std::string, bool> ok_;
};

}  // namespace gemma_local::cli::extract
