// `inspect` on GGUF files the project did not write: tests/reference/independent_gguf.py is a
// separate, standard-library-only Python writer that also prints the numbers inspect must report.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

// Every key of `expected` (recursively) must equal the same key in `actual`.
void ExpectSubset(const nlohmann::json& expected, const nlohmann::json& actual, const std::string& path) {
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    ASSERT_TRUE(actual.contains(it.key())) << path << it.key();
    if (it.value().is_object()) {
      ExpectSubset(it.value(), actual[it.key()], path + it.key() + ".");
    } else {
      EXPECT_EQ(actual[it.key()], it.value()) << path << it.key();
    }
  }
}

class IndependentGguf : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(IndependentGguf, InspectReportsWhatTheWriterWrote) {
  GL_REQUIRE_REFERENCE(RunCommand("python3 --version").exit_code == 0, "python3 not available");
  const auto& [arch, dtype] = GetParam();
  TempDir dir;
  const std::string file = dir.File("independent.gguf");
  testing::CommandResult made = RunCommand("python3 " + testing::SourceDir() + "/tests/reference/independent_gguf.py --arch " +
                                           arch + " --dtype " + dtype + " --out " + file);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  testing::CommandResult r = RunCommand(testing::BinaryPath() + " inspect --json " + file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSubset(nlohmann::json::parse(made.out), nlohmann::json::parse(r.out), "");
}

INSTANTIATE_TEST_SUITE_P(Writers, IndependentGguf,
                         ::testing::Values(std::pair<std::string, std::string>{"gemma3", "f32"},
                                           std::pair<std::string, std::string>{"gemma3", "f16"},
                                           std::pair<std::string, std::string>{"gemma4", "f32"},
                                           std::pair<std::string, std::string>{"gemma4", "f16"}),
                         [](const auto& info) { return info.param.first + "_" + info.param.second; });

}  // namespace
}  // namespace gemma_local
