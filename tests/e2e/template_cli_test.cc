// `gemma-local template` end to end: the JSONL contract on every --model form, --template override,
// and bad input lines answered in-stream.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

std::vector<json> Lines(const std::string& out) {
  std::vector<json> lines;
  size_t start = 0;
  while (start < out.size()) {
    const size_t nl = out.find('\n', start);
    lines.push_back(json::parse(out.substr(start, nl - start)));
    start = nl == std::string::npos ? out.size() : nl + 1;
  }
  return lines;
}

CommandResult Template(const std::string& args, const std::string& stdin_path) {
  return RunCommand(BinaryPath() + " template " + args + " < " + stdin_path);
}

const char* kRequests =
    R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Hi  "}], "add_generation_prompt": true})"
    "\n"
    R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "add_generation_prompt": false, "tools": [], "enable_thinking": true})"
    "\n"
    "not json\n"
    R"({"messages": [{"content": "no role"}]})"
    "\n"
    R"({"add_generation_prompt": true})"
    "\n";

TEST(TemplateCli, JsonlOnCheckpointDirTokenizerConfigAndGguf) {
  TempDir dir;
  CommandResult made =
      RunCommand(BinaryPath() + " dev make-model --out " + dir.path() + " --preset tiny");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  WriteFile(dir.File("requests.jsonl"), kRequests);
  std::vector<std::vector<json>> results;
  for (const std::string& model :
       {dir.File("hf"), dir.File("hf/tokenizer_config.json"), dir.File("model.gguf")}) {
    CommandResult r = Template("--model " + model + " --jsonl", dir.File("requests.jsonl"));
    ASSERT_EQ(r.exit_code, 0) << model << ": " << r.err;
    std::vector<json> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 5u) << r.out;
    EXPECT_EQ(lines[0], json({{"ok", true},
                              {"text",
                               "<bos><start_of_turn>system\nBe brief.<end_of_turn>\n"
                               "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"}}))
        << model;
    EXPECT_EQ(lines[1]["text"],
              "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n");
    EXPECT_EQ(lines[2]["ok"], false);
    EXPECT_NE(lines[2]["error"].get<std::string>().find("not valid JSON"), std::string::npos);
    EXPECT_EQ(lines[3]["error"], "messages[0].role: missing");
    EXPECT_EQ(lines[4]["error"], "messages: missing");
    results.push_back(lines);
  }
  EXPECT_EQ(results[0], results[2]);
}

TEST(TemplateCli, TemplateOverrideAndTemplateErrors) {
  TempDir dir;
  WriteFile(dir.File("tokenizer_config.json"), R"({"bos_token": "<bos>", "eos_token": "<eos>"})");
  const auto shared = testing::SharedDir();
  const std::string tmpl =
      shared ? *shared + "/testdata/chat-templates/gemma3-official.jinja" : dir.File("t.jinja");
  if (!shared) {
    WriteFile(tmpl,
              "{{ bos_token }}{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % "
              "2 == 0) %}"
              "{{ raise_exception('Conversation roles must alternate "
              "user/assistant/user/assistant/...') }}"
              "{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n"
              "{% endfor %}");
  }
  WriteFile(dir.File("req.jsonl"),
            R"({"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}]})"
            "\n");
  CommandResult r =
      Template("--model " + dir.File("tokenizer_config.json") + " --template " + tmpl + " --jsonl",
               dir.File("req.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<json> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["ok"], false);
  EXPECT_NE(lines[0]["error"].get<std::string>().find(
                "Conversation roles must alternate user/assistant/user/assistant/..."),
            std::string::npos)
      << lines[0];

  // Without --jsonl: one request, raw text out.
  WriteFile(dir.File("one.json"), R"({"messages": [{"role": "user", "content": "x"}]})");
  r = Template("--model " + dir.File("tokenizer_config.json") + " --template " + tmpl,
               dir.File("one.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<bos><start_of_turn>user\nx<end_of_turn>\n");
}

TEST(TemplateCli, UsageAndMissingTemplateErrors) {
  TempDir dir;
  WriteFile(dir.File("empty.jsonl"), "");
  CommandResult r = Template("--jsonl", dir.File("empty.jsonl"));
  EXPECT_EQ(r.exit_code, 2);
  WriteFile(dir.File("tokenizer_config.json"), R"({"bos_token": "<bos>"})");
  r = Template("--model " + dir.path() + " --jsonl", dir.File("empty.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no chat template found"), std::string::npos) << r.err;
  r = Template("--model " + dir.File("missing") + " --jsonl", dir.File("empty.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace gemma_local
