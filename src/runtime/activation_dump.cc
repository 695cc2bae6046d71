#include "runtime/activation_dump.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace gemma_local {

ActivationDump::ActivationDump(std::string dir, int64_t call) : dir_(std::move(dir)), call_(call) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) status_ = IoError(dir_ + ": cannot create the activation dump directory: " + ec.message());
}

void ActivationDump::Record(std::string_view name, const float* data, int64_t rows, int64_t cols) {
  if (!status_.ok()) return;
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%06lld-", static_cast<long long>(call_));
  const std::string file = prefix + std::string(name) + ".f32";
  std::ofstream out(dir_ + "/" + file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(rows * cols * sizeof(float)));
  std::ofstream index(dir_ + "/index.jsonl", std::ios::app);
  index << nlohmann::json{{"call", call_}, {"name", name}, {"rows", rows}, {"cols", cols}, {"file", file}}.dump()
        << "\n";
  if (!out || !index) status_ = IoError(dir_ + "/" + file + ": cannot write the activation dump");
}

}  // namespace gemma_local
