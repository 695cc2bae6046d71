// The audit log: one JSON object per line per answered request, appended and flushed as each
// request ends: time, request id, key id (a digest prefix, never the key), route, status, the
// model's id and file hash, token counts, latency; the prompt and output text only when
// switched on. Meant for regulated deployments that must show who asked what, when.
#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "gemma_local/status.h"

namespace gemma_local::server {

class AuditLog {
 public:
  // Opens `path` for appending (created if missing); the error names the file.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  // Appends `entry` as one line and flushes it. Thread-safe.
  void Write(const nlohmann::json& entry);

 private:
  explicit AuditLog(std::FILE* file) : file_(file) {}
  std::mutex mu_;
  std::FILE* file_;  // guarded by mu_
};

// SHA-256 of a model file (or, for a checkpoint directory, of its regular files' names and
// contents in name order), computed on a background thread: a large model takes a while to read
// and the server must not wait for it. hex() is "" until it is done (or when it failed).
class ModelHash {
 public:
  explicit ModelHash(std::string path);
  ~ModelHash();
  std::string hex() const;

 private:
  void Run();
  std::string path_;
  mutable std::mutex mu_;
  std::string hex_;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// "2026-12-06T11:30:55.123Z" for now.
std::string UtcTimestamp();

}  // namespace gemma_local::server
