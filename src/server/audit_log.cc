#include "server/audit_log.h"

#include <chrono>
#include <ctime>
#include <utility>

#include "gemma_local/model_info.h"
#include "server/api_error.h"

namespace gemma_local::server {

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return IoError(path + ": cannot open the audit log for appending");
  return std::unique_ptr<AuditLog>(new AuditLog(f));
}

AuditLog::~AuditLog() { std::fclose(file_); }

void AuditLog::Write(const nlohmann::json& entry) {
  const std::string line = Dump(entry) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

ModelHash::ModelHash(std::string path) : path_(std::move(path)) {
  if (!path_.empty()) thread_ = std::thread([this] { Run(); });
}

ModelHash::~ModelHash() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string ModelHash::hex() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hex_;
}

void ModelHash::Run() {
  Result<std::string> hex = ModelSha256(path_, &stop_);
  if (!hex.ok()) return;  // hex() stays ""
  std::lock_guard<std::mutex> lock(mu_);
  hex_ = std::move(*hex);
}

std::string UtcTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return text;
}

}  // namespace gemma_local::server
