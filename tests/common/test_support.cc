#include "common/test_support.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gemma_local::testing {

namespace fs = std::filesystem;

std::string SourceDir() { return GEMMA_LOCAL_SOURCE_DIR; }
std::string BinaryPath() { return GEMMA_LOCAL_BINARY_PATH; }

std::optional<std::string> SharedDir() {
  if (const char* env = std::getenv("GEMMA_LOCAL_SHARED_DIR")) {
    if (fs::is_directory(env)) return std::string(env);
  }
  const fs::path p = fs::path(SourceDir()).parent_path() / "shared";
  if (fs::is_directory(p)) return p.string();
  return std::nullopt;
}

bool ReferencesRequired() {
  const char* env = std::getenv("GEMMA_LOCAL_REQUIRE_REFERENCES");
  return env != nullptr && std::string(env) == "1";
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp ? tmp : "/tmp") + "/gemma_local_test_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult RunCommand(const std::string& command) {
  TempDir dir;
  const std::string out = dir.File("out"), err = dir.File("err");
  const int status = std::system((command + " >" + out + " 2>" + err).c_str());
  CommandResult r;
  if (WIFSIGNALED(status)) {
    r.signaled = true;
    r.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    // /bin/sh reports a child killed by signal N as exit code 128 + N.
    if (r.exit_code > 128 && r.exit_code < 160) {
      r.signaled = true;
      r.signal = r.exit_code - 128;
    }
  }
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace gemma_local::testing
