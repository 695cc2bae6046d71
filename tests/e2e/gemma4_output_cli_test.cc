// Gemma 4 reply parsing surfaced by the CLI (`run --chat --json`, `chat`), and the built-in
// fallback chat format for a checkpoint without a template. Random weights produce garbage text,
// so these check the shape of the output and that the commands succeed, not the words.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

class Gemma4OutputCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    for (const char* preset : {"g4-e2b-like", "tiny"}) {
      testing::CommandResult made =
          RunCommand(Bin() + " dev make-model --out " + dir_->File(preset) + " --preset " + preset);
      ASSERT_EQ(made.exit_code, 0) << made.err;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Model(const char* preset, const char* layout) {
    return dir_->File(preset) + "/" + layout;
  }
  static TempDir* dir_;
};
TempDir* Gemma4OutputCli::dir_ = nullptr;

TEST_F(Gemma4OutputCli, RunJsonHasReasoningAndToolCallsForGemma4) {
  for (const char* layout : {"hf", "model.gguf"}) {
    for (const char* think : {"", " --think"}) {
      testing::CommandResult r = RunCommand(
          Bin() + " run --json --chat --max-tokens 6 --model " + Model("g4-e2b-like", layout) +
          " --prompt 'What is the weather?' --system 'Use tools.'" + think);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      nlohmann::json j = nlohmann::json::parse(r.out);
      EXPECT_TRUE(j["text"].is_string()) << j;
      ASSERT_TRUE(j.contains("reasoning")) << j;
      EXPECT_TRUE(j["reasoning"].is_null() || j["reasoning"].is_string()) << j;
      ASSERT_TRUE(j.contains("tool_calls")) << j;
      EXPECT_TRUE(j["tool_calls"].is_array()) << j;
      EXPECT_EQ(j["tokens"].size(), 6u);
    }
  }
}

TEST_F(Gemma4OutputCli, Gemma3OutputIsNotParsed) {
  testing::CommandResult r = RunCommand(Bin() + " run --json --chat --max-tokens 4 --model " +
                                        Model("tiny", "hf") + " --prompt 'hello'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["text"].is_string());
  EXPECT_FALSE(j.contains("reasoning")) << j;
  EXPECT_FALSE(j.contains("tool_calls")) << j;
}

TEST_F(Gemma4OutputCli, RunTextAndChatSucceedOnGemma4) {
  testing::CommandResult r = RunCommand(Bin() + " run --chat --think --max-tokens 4 --model " +
                                        Model("g4-e2b-like", "hf") + " --prompt 'hello'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand("printf 'hello\\nagain\\n/exit\\n' | " + Bin() +
                 " chat --think --max-tokens 4 --model " + Model("g4-e2b-like", "model.gguf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

TEST_F(Gemma4OutputCli, CheckpointWithoutTemplateUsesTheBuiltInFormat) {
  // A copy of the HF checkpoint whose tokenizer_config.json has no chat_template.
  TempDir copy;
  const std::string src = Model("g4-e2b-like", "hf");
  ASSERT_EQ(RunCommand("cp -r " + src + "/. " + copy.path()).exit_code, 0);
  nlohmann::json cfg = nlohmann::json::parse(testing::ReadFile(copy.File("tokenizer_config.json")));
  cfg.erase("chat_template");
  testing::WriteFile(copy.File("tokenizer_config.json"), cfg.dump());
  RunCommand("rm -f " + copy.File("chat_template.jinja"));

  testing::CommandResult r = RunCommand(Bin() + " run --json --chat --max-tokens 3 --model " +
                                        copy.path() + " --prompt 'hello'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("built-in Gemma 4"), std::string::npos) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);  // the warning stays off stdout
  EXPECT_TRUE(j.contains("tool_calls"));

  testing::WriteFile(copy.File("req.json"), R"({"messages": [{"role": "user", "content": "Hi"}],
                                               "add_generation_prompt": true})");
  r = RunCommand(Bin() + " template --model " + copy.path() + " < " + copy.File("req.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
}

}  // namespace
}  // namespace gemma_local
