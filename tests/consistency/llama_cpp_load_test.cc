// llama.cpp (npm node-llama-cpp 3.21.1, the project's external reference) loads and runs the
// GGUF files our generator writes, for every preset shape and dtype. Skips when Node.js or the
// reference harness (tests/reference, installed by scripts/setup.sh) is missing.
#include <filesystem>
#include <ostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string HarnessDir() { return testing::SourceDir() + "/tests/reference"; }

bool HarnessInstalled() {
  return std::filesystem::exists(HarnessDir() + "/node_modules/node-llama-cpp") &&
         RunCommand("node --version").exit_code == 0;
}

struct Case {
  std::string preset;
  std::string dtype;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.preset << "/" << c.dtype; }

class LlamaCppLoads : public ::testing::TestWithParam<Case> {};

TEST_P(LlamaCppLoads, RunsGeneratedGguf) {
  GL_REQUIRE_REFERENCE(HarnessInstalled(), "llama.cpp reference harness not installed (run scripts/setup.sh)");
  const Case& c = GetParam();
  TempDir dir;
  testing::CommandResult made = RunCommand(testing::BinaryPath() + " dev make-model --layout gguf --out " +
                                           dir.path() + " --preset " + c.preset + " --dtype " + c.dtype);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  testing::CommandResult r = RunCommand("node " + HarnessDir() + "/llama_ref.mjs --model " + dir.File("model.gguf") +
                                        " --tokens 2,400,401,402,403,404,405 --top-k 2 --generate 3 --info");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_vocab"], 512);
  EXPECT_EQ(j["info"]["architecture"], c.preset.rfind("g4-", 0) == 0 ? "gemma4" : "gemma3");
  ASSERT_EQ(j["positions"].size(), 7u);
  EXPECT_EQ(j["generated"].size(), 3u);
  // The weights keep logits well separated: a clear top-1 at most positions.
  int clear = 0;
  for (const auto& p : j["positions"]) {
    const auto& top = p["top"];
    ASSERT_EQ(top.size(), 2u);
    if (top[0][1].get<double>() - top[1][1].get<double>() > 1e-3) ++clear;
  }
  EXPECT_GE(clear, 5);
}

INSTANTIATE_TEST_SUITE_P(Generator, LlamaCppLoads,
                         ::testing::Values(Case{"tiny", "f32"}, Case{"tiny", "f16"}, Case{"tiny", "bf16"},
                                           Case{"1b-like", "f32"}, Case{"4b-like", "f16"},
                                           Case{"27b-like", "f16"}, Case{"all-global", "f32"},
                                           Case{"g4-e2b-like", "f32"}, Case{"g4-31b-like", "f32"},
                                           Case{"g4-26b-like", "f16"}),
                         [](const auto& info) {
                           std::string n = info.param.preset + "_" + info.param.dtype;
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

// The real Gemma 3 vocabulary (262,144 pieces from ../shared) in both layouts; llama.cpp loads the
// GGUF and tokenizes with it.
TEST(LlamaCppLoadsRealTokenizer, Gemma3Vocabulary) {
  std::optional<std::string> shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent (real Gemma 3 tokenizer test data)");
  GL_REQUIRE_REFERENCE(HarnessInstalled(), "llama.cpp reference harness not installed (run scripts/setup.sh)");
  TempDir dir;
  testing::CommandResult made = RunCommand(testing::BinaryPath() + " dev make-model --out " + dir.path() +
                                           " --preset tiny --dtype f16 --tokenizer gemma3:" + *shared +
                                           "/testdata/gemma3-tokenizer");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  for (const std::string& path : {dir.File("model.gguf"), dir.File("hf")}) {
    testing::CommandResult info = RunCommand(testing::BinaryPath() + " inspect --json " + path);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    nlohmann::json j = nlohmann::json::parse(info.out);
    EXPECT_EQ(j["vocab_size"], 262144) << path;
    EXPECT_EQ(j["has_tokenizer"], true) << path;
    EXPECT_EQ(j["has_chat_template"], true) << path;
  }
  testing::CommandResult r = RunCommand("node " + HarnessDir() + "/llama_ref.mjs --model " + dir.File("model.gguf") +
                                        " --text 'Hello world' --top-k 1 --info");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_vocab"], 262144);
  EXPECT_EQ(j["info"]["bos"], 2);
  EXPECT_FALSE(j["tokens"].empty());
}

}  // namespace
}  // namespace gemma_local
