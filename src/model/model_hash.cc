// ModelSha256 (model_info.h): the model's identity in audit logs and `extract` output lines.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "gemma_local/model_info.h"

namespace gemma_local {

Result<std::string> ModelSha256(const std::string& path, const std::atomic<bool>* stop) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file(ec)) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("SHA-256 is not available");
  }
  std::vector<char> buffer(size_t{1} << 20);
  for (const fs::path& file : files) {
    if (files.size() > 1) {
      const std::string name = file.filename().string() + '\0';
      EVP_DigestUpdate(ctx.get(), name.data(), name.size());
    }
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return IoError(file.string() + ": cannot be read");
    size_t n = 0;
    const auto stopped = [stop] { return stop != nullptr && stop->load(); };
    while (!stopped() && (n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) {
      EVP_DigestUpdate(ctx.get(), buffer.data(), n);
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return IoError(file.string() + ": read failed");
    if (stopped()) return CancelledError("model hash stopped");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) return InternalError("SHA-256 failed");
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[digest[i] >> 4];
    hex += kDigits[digest[i] & 15];
  }
  return hex;
}

}  // namespace gemma_local
