// `gemma-local tokenize` / `detokenize` driven as a user would: through a shell, stdin and stdout.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "formats/gguf.h"
#include "testgen/synthetic_tokenizer.h"

namespace gemma_local {
namespace {

using nlohmann::json;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::SharedDir;
using testing::TempDir;
using testing::WriteFile;

// A checkpoint-like directory with the synthetic tokenizer's tokenizer.json and
// tokenizer_config.json, plus the same vocabulary as a GGUF file.
class TokenizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto data = testgen::MakeSyntheticTokenizer(1024);
    ASSERT_TRUE(data.ok());
    WriteFile(dir_.File("tokenizer.json"), data->hf_tokenizer_json.dump());
    WriteFile(dir_.File("tokenizer_config.json"), data->hf_tokenizer_config.dump());
    gguf::GgufWriter w;
    w.Set("general.architecture", gguf::Value::String("gemma3"));
    testgen::WriteGgufTokenizer(*data, w);
    ASSERT_TRUE(w.WriteFile(dir_.File("model.gguf")).ok());
  }

  // Runs `gemma-local ARGS` with `input` on stdin.
  CommandResult Run(const std::string& args, const std::string& input) {
    WriteFile(dir_.File("stdin"), input);
    return RunCommand(BinaryPath() + " " + args + " < " + dir_.File("stdin"));
  }

  TempDir dir_;
};

TEST_F(TokenizeCli, WholeStdinIsOneTextWithBosByDefault) {
  const auto r = Run("tokenize --model " + dir_.path(), "hello world");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json ids = json::parse(r.out);
  ASSERT_TRUE(ids.is_array());
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 2);
  const auto nobos = Run("tokenize --no-bos --model " + dir_.path(), "hello world");
  ASSERT_EQ(nobos.exit_code, 0) << nobos.err;
  json expect = ids;
  expect.erase(expect.begin());
  EXPECT_EQ(json::parse(nobos.out), expect);
}

TEST_F(TokenizeCli, JsonlLinesRoundTripThroughDetokenize) {
  const std::vector<std::string> texts = {"hello world",
                                          "  two  spaces ",
                                          "line\nbreak\r\n",
                                          "caf\xC3\xA9 \xF0\x9F\x98\x80",
                                          "",
                                          "<start_of_turn>user\nhi<end_of_turn>"};
  std::string input;
  for (const auto& t : texts) input += json(t).dump() + "\n";
  const auto tok = Run("tokenize --jsonl --no-bos --model " + dir_.File("tokenizer.json"), input);
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  const auto back = Run("detokenize --jsonl --model " + dir_.path(), tok.out);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(back.out);
  while (std::getline(in, line)) lines.push_back(json::parse(line).get<std::string>());
  EXPECT_EQ(lines, texts);
}

TEST_F(TokenizeCli, SpecialTokenParsingAndSkipping) {
  const std::string input = json("<start_of_turn>").dump() + "\n";
  const auto on = Run("tokenize --jsonl --no-bos --model " + dir_.path(), input);
  ASSERT_EQ(on.exit_code, 0) << on.err;
  EXPECT_EQ(on.out, "[105]\n");
  const auto off = Run("tokenize --jsonl --no-bos --no-special --model " + dir_.path(), input);
  ASSERT_EQ(off.exit_code, 0) << off.err;
  const json ids = json::parse(off.out);
  EXPECT_GT(ids.size(), 1u);
  for (const auto& id : ids) EXPECT_NE(id, 105);
  const auto skip = Run("detokenize --skip-special --model " + dir_.path(), "[2,105,107]\n");
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(skip.out, "\"\\n\"\n");
  const auto keep = Run("detokenize --model " + dir_.path(), "[2,105,107]\n");
  EXPECT_EQ(keep.out, "\"<bos><start_of_turn>\\n\"\n");
}

TEST_F(TokenizeCli, GgufModelAndTokenizerOverrideAgree) {
  const std::string input = json("the model and the engine").dump() + "\n";
  const auto json_run = Run("tokenize --jsonl --model " + dir_.path(), input);
  const auto gguf_run = Run("tokenize --jsonl --model " + dir_.File("model.gguf"), input);
  const auto override_run =
      Run("tokenize --jsonl --model /nonexistent --tokenizer " + dir_.File("model.gguf"), input);
  ASSERT_EQ(json_run.exit_code, 0) << json_run.err;
  ASSERT_EQ(gguf_run.exit_code, 0) << gguf_run.err;
  ASSERT_EQ(override_run.exit_code, 0) << override_run.err;
  EXPECT_EQ(gguf_run.out, override_run.out);
  EXPECT_EQ(json::parse(gguf_run.out)[0], 2);
}

TEST_F(TokenizeCli, ErrorsExitNonZeroWithAMessage) {
  auto r = Run("tokenize --model " + dir_.File("missing"), "x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error:"), std::string::npos);
  r = Run("tokenize --jsonl --model " + dir_.path(), "\"ok\"\nnot json\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  r = Run("tokenize --model " + dir_.path(), "bad \xC3 utf8");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;
  r = Run("detokenize --model " + dir_.path(), "[1, 99999999]\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("outside the vocabulary"), std::string::npos) << r.err;
  r = Run("detokenize --model " + dir_.path(), "[\"a\"]\n");
  EXPECT_EQ(r.exit_code, 1);
  r = Run("tokenize", "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(r.signaled);
}

TEST(TokenizeCliGemma3, RealTokenizerKnownIds) {
  auto shared = SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent");
  TempDir dir;
  WriteFile(dir.File("in"),
            json("Hello, my dog is cute").dump() + "\n" + json("<start_of_turn>").dump() + "\n");
  const auto r = RunCommand(BinaryPath() + " tokenize --jsonl --model " + *shared +
                            "/testdata/gemma3-tokenizer < " + dir.File("in"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[2,9259,236764,1041,4799,563,12864]\n[2,105]\n");
}

}  // namespace
}  // namespace gemma_local
