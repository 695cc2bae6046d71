// ChatTemplate facade: where the template and special tokens come from, the variables a template
// sees (as transformers passes them), and message validation errors.
#include "gemma_local/chat_template.h"

#include <gtest/gtest.h>

#include "common/test_support.h"
#include "formats/gguf.h"
#include "text/chat_template.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;
using testing::TempDir;
using testing::WriteFile;

// Prints every variable transformers passes, so tests can see the context.
constexpr const char* kProbe =
    "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|"
    "{{ enable_thinking is defined }}|{{ messages | length }}";

ChatTemplateInputs OneUser() {
  ChatTemplateInputs in;
  in.messages = json::array({json::object({{"role", "user"}, {"content", "hi"}})});
  return in;
}

TEST(ChatTemplateTest, DirectoryPrefersChatTemplateJinjaAndReadsSpecialTokens) {
  TempDir dir;
  WriteFile(dir.File("chat_template.jinja"), std::string("JINJA ") + kProbe);
  WriteFile(
      dir.File("tokenizer_config.json"),
      R"({"chat_template": "CONFIG", "bos_token": {"__type": "AddedToken", "content": "<bos>"},
                "eos_token": "<eos>", "pad_token": null})");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.path());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->origin(), dir.File("chat_template.jinja"));
  EXPECT_EQ(t->special_tokens(), json({{"bos_token", "<bos>"}, {"eos_token", "<eos>"}}));
  Result<std::string> r = t->Render(OneUser());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "JINJA <bos>|<eos>|None|None|False|False|1");
}

TEST(ChatTemplateTest, TokenizerConfigStringAndNamedList) {
  TempDir dir;
  WriteFile(dir.File("tokenizer_config.json"),
            R"({"chat_template": "S{{ bos_token }}", "bos_token": "<b>"})");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.File("tokenizer_config.json"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t->Render(OneUser()), "S<b>");

  WriteFile(
      dir.File("tokenizer_config.json"),
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  t = ChatTemplate::Load(dir.path());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t->Render(OneUser()), "D");

  WriteFile(dir.File("tokenizer_config.json"),
            R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  t = ChatTemplate::Load(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no template named \"default\""), std::string::npos);

  WriteFile(dir.File("tokenizer_config.json"), R"({"chat_template": 5})");
  EXPECT_FALSE(ChatTemplate::Load(dir.path()).ok());
}

TEST(ChatTemplateTest, OverrideFileWinsButSpecialTokensStay) {
  TempDir dir;
  WriteFile(dir.File("tokenizer_config.json"),
            R"({"chat_template": "CONFIG", "bos_token": "<bos>"})");
  WriteFile(dir.File("mine.jinja"), "MINE {{ bos_token }}");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.path(), dir.File("mine.jinja"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t->Render(OneUser()), "MINE <bos>");
  EXPECT_EQ(t->origin(), dir.File("mine.jinja"));
}

TEST(ChatTemplateTest, MissingTemplateSaysWhereItLooked) {
  TempDir dir;
  WriteFile(dir.File("tokenizer_config.json"), R"({"bos_token": "<bos>"})");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.path());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("chat_template.jinja"), std::string::npos);
  EXPECT_NE(t.status().message().find("--template"), std::string::npos);
  EXPECT_FALSE(ChatTemplate::Load(dir.File("nope")).ok());
}

TEST(ChatTemplateTest, GgufTemplateAndSpecialTokens) {
  TempDir dir;
  gguf::GgufWriter w;
  w.Set("general.architecture", gguf::Value::String("gemma3"));
  w.Set("tokenizer.ggml.tokens", gguf::Value::StringArray({"<pad>", "<eos>", "<bos>", "hi"}));
  w.Set("tokenizer.ggml.bos_token_id", gguf::Value::U32(2));
  w.Set("tokenizer.ggml.eos_token_id", gguf::Value::U32(1));
  w.Set("tokenizer.ggml.padding_token_id", gguf::Value::U32(0));
  w.Set("tokenizer.ggml.unknown_token_id", gguf::Value::U32(99));  // out of range: skipped
  w.Set("tokenizer.chat_template", gguf::Value::String(kProbe));
  ASSERT_TRUE(w.WriteFile(dir.File("model.gguf")).ok());
  for (const std::string& path : {dir.File("model.gguf"), dir.path()}) {
    Result<ChatTemplate> t = ChatTemplate::Load(path);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->special_tokens(),
              json({{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"pad_token", "<pad>"}}));
    EXPECT_EQ(*t->Render(OneUser()), "<bos>|<eos>|None|None|False|False|1");
  }
}

TEST(ChatTemplateTest, InputsBecomeTemplateVariables) {
  Result<ChatTemplate> t = ChatTemplate::FromSource(
      "{{ tools | tojson }}|{{ add_generation_prompt }}|{{ enable_thinking }}|{{ custom }}",
      json({{"bos_token", "<bos>"}}));
  ASSERT_TRUE(t.ok());
  ChatTemplateInputs in = OneUser();
  in.tools = json::array({json::object({{"type", "function"}})});
  in.add_generation_prompt = true;
  in.enable_thinking = false;
  in.extra_kwargs = json({{"custom", "x"}});
  Result<std::string> r = t->Render(in);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, R"([{"type": "function"}]|True|False|x)");
}

TEST(ChatTemplateTest, MalformedMessagesNameIndexAndField) {
  Result<ChatTemplate> t = ChatTemplate::FromSource("x", json::object());
  ASSERT_TRUE(t.ok());
  ChatTemplateInputs in;
  in.messages = json::object();
  EXPECT_EQ(t->Render(in).status().message(), "messages: expected a list");
  in.messages = json::array({json::object({{"role", "user"}}), 5});
  EXPECT_EQ(t->Render(in).status().message(), "messages[1]: expected an object");
  in.messages = json::array({json::object({{"role", "user"}}), json::object({{"content", "x"}})});
  EXPECT_EQ(t->Render(in).status().message(), "messages[1].role: missing");
  in.messages = json::array({json::object({{"role", 3}})});
  EXPECT_EQ(t->Render(in).status().message(), "messages[0].role: expected a string");
}

TEST(ChatTemplateTest, TemplateErrorsCarryOriginAndLocation) {
  Result<ChatTemplate> bad = ChatTemplate::FromSource("{% if %}", json::object(), "t.jinja");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("t.jinja: template syntax error at line 1"),
            std::string::npos);
  Result<ChatTemplate> t = ChatTemplate::FromSource(
      "{% if messages[0].role != 'system' %}\n{{ raise_exception('need a system message') }}{% "
      "endif %}",
      json::object());
  ASSERT_TRUE(t.ok());
  Result<std::string> r = t->Render(OneUser());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "template error at line 2, column 4: need a system message");
}

}  // namespace
}  // namespace gemma_local

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;

TEST(NormalizeOpenAiMessagesTest, ContentPartsToolCallsAndToolResults) {
  const json in = json::parse(R"([
    {"role": "system", "content": null},
    {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                 {"type": "image_url", "image_url": {"url": "data:..."}},
                                 {"type": "input_audio", "input_audio": {"data": "..."}}]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
      {"id": "b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
    {"role": "tool", "tool_call_id": "b", "content": "noon"},
    {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "{\"temp\": 21}"}]},
    {"role": "assistant", "content": "Sunny."}
  ])");
  Result<json> out = NormalizeOpenAiMessages(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const json want = json::parse(R"([
    {"role": "system", "content": ""},
    {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image"}, {"type": "audio"}]},
    {"role": "assistant", "content": "", "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
      {"id": "b", "type": "function", "function": {"name": "get_time", "arguments": {}}}],
     "tool_responses": [{"name": "get_time", "response": "noon"},
                        {"name": "get_weather", "response": {"temp": 21}}]},
    {"role": "assistant", "content": "Sunny."}
  ])");
  EXPECT_EQ(*out, want) << out->dump(1);
}

TEST(NormalizeOpenAiMessagesTest, ErrorsNameIndexAndField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"role": "user"})", "messages: expected a list"},
      {R"([{"role": "robot", "content": "x"}])", "messages[0].role: unknown role \"robot\""},
      {R"([{"role": "user", "content": 5}])",
       "messages[0].content: expected a string, a list of parts or null"},
      {R"([{"role": "user", "content": [{"type": "file"}]}])",
       "messages[0].content[0].type: unsupported content part type \"file\""},
      {R"([{"role": "user", "content": [{"type": "text"}]}])",
       "messages[0].content[0].text: expected a string"},
      {R"([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}])",
       "messages[1].tool_calls[0].function.arguments: not a JSON object"},
      {R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])",
       "messages[0].tool_calls[0].function.name: expected a string"},
      {R"([{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}])",
       "messages[1]: a tool message must follow an assistant message with tool_calls"},
      {R"([{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]}, {"role": "tool", "tool_call_id": "zz", "content": "r"}])",
       "messages[1].tool_call_id: matches no tool call of the preceding assistant message"},
  };
  for (const auto& [input, error] : cases) {
    Result<json> out = NormalizeOpenAiMessages(json::parse(input));
    ASSERT_FALSE(out.ok()) << input;
    EXPECT_EQ(out.status().message(), error) << input;
  }
}

TEST(NormalizeOpenAiMessagesTest, NormalizedToolTurnRendersInGemma4NativeForm) {
  const auto shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent: no official Gemma 4 template");
  Result<ChatTemplate> t = ChatTemplate::FromSource(
      testing::ReadFile(*shared + "/testdata/chat-templates/gemma4-official.jinja"),
      json({{"bos_token", "<bos>"}}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Result<json> msgs = NormalizeOpenAiMessages(json::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "a", "content": "{\"temp\": 21}"}
  ])"));
  ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
  ChatTemplateInputs in;
  in.messages = *msgs;
  in.add_generation_prompt = true;
  Result<std::string> r = t->Render(in);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r,
            "<bos><|turn>user\nWeather in Paris?<turn|>\n<|turn>model\n"
            "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
            "<|tool_response>response:get_weather{temp:21}<tool_response|>");
}

}  // namespace
}  // namespace gemma_local
