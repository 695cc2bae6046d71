#include "server/audit_log.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <vector>

#include "server/api_error.h"
#include "server/auth.h"

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
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(path_, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path_, ec)) {
      if (e.is_regular_file(ec)) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path_);
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return;
  std::vector<char> buffer(size_t{1} << 20);
  for (const fs::path& file : files) {
    if (files.size() > 1) {
      const std::string name = file.filename().string() + '\0';
      EVP_DigestUpdate(ctx.get(), name.data(), name.size());
    }
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return;
    size_t n = 0;
    while (!stop_ && (n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) {
      EVP_DigestUpdate(ctx.get(), buffer.data(), n);
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed || stop_) return;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) return;
  std::lock_guard<std::mutex> lock(mu_);
  hex_ = Hex(digest, size);
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
