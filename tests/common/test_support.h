// Helpers shared by every test binary: locations, temp dirs, running the CLI binary.
#pragma once

#include <optional>
#include <string>

namespace gemma_local::testing {

// The repository root (compiled in).
std::string SourceDir();
// The path of the built gemma-local binary (compiled in).
std::string BinaryPath();
// ../shared next to the repository (or $GEMMA_LOCAL_SHARED_DIR), when present.
std::optional<std::string> SharedDir();

// True when tests must not skip for a missing external reference (../shared test data, the
// llama.cpp harness, node, Python jinja2): GEMMA_LOCAL_REQUIRE_REFERENCES=1, which .ci/run sets.
// On users' machines such tests skip with a message instead.
bool ReferencesRequired();

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;      // valid when !signaled
  bool signaled = false;   // killed by a signal (a crash)
  int signal = 0;
  std::string out;         // stdout
  std::string err;         // stderr
};
// Runs `command` through /bin/sh, capturing stdout and stderr.
CommandResult RunCommand(const std::string& command);

// Writes bytes to a file (test fixtures).
void WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

}  // namespace gemma_local::testing

// Skips the current test (or fails it where references are required, as in CI) unless
// `available`; `why` says what is missing and how to get it.
#define GL_REQUIRE_REFERENCE(available, why)                                                  \
  do {                                                                                        \
    if (!(available)) {                                                                       \
      if (::gemma_local::testing::ReferencesRequired()) {                                     \
        FAIL() << why << " (required here: GEMMA_LOCAL_REQUIRE_REFERENCES is set, as in CI)"; \
      }                                                                                       \
      GTEST_SKIP() << why;                                                                    \
    }                                                                                         \
  } while (0)
