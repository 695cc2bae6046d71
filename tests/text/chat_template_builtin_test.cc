// The built-in fallback chat formats: byte-identical to the official Gemma 3 / Gemma 4 templates
// on plain text conversations, chosen by model family when a checkpoint has no template.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "formats/gguf.h"
#include "gemma_local/chat_template.h"
#include "text/chat_template.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;
using testing::TempDir;
using testing::WriteFile;

const json kSpecial = {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}};

// Plain text conversations of the kinds chat clients send.
std::vector<ChatTemplateInputs> Conversations(bool gemma4, uint32_t seed) {
  const std::vector<std::string> texts = {"Hello!",
                                          "  padded \n\n",
                                          "",
                                          "h\xC3\xA9llo \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87",
                                          "line1\nline2\n\n  indented",
                                          "<b>markup</b> & {{ braces }} {% not jinja %}",
                                          "\t tabs \t"};
  std::mt19937 rng(seed);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto content = [&](const std::string& t) -> json {
    if (pick(4) == 0) return json::array({{{"type", "text"}, {"text", t}}});
    return t;
  };
  std::vector<ChatTemplateInputs> out;
  for (int i = 0; i < 120; ++i) {
    ChatTemplateInputs in;
    const size_t sys = pick(3);
    if (sys == 1)
      in.messages.push_back({{"role", "system"}, {"content", content(texts[pick(texts.size())])}});
    if (sys == 2 && gemma4)
      in.messages.push_back({{"role", "developer"}, {"content", "Be brief. "}});
    const size_t turns = 1 + pick(5);
    for (size_t t = 0; t < turns; ++t) {
      const bool user = t % 2 == 0;
      std::string text = texts[pick(texts.size())];
      if (!user && gemma4 && pick(2) == 0) {
        text = "<|channel>thought\nsecret<channel|>" + text + "<|channel>x<channel|> tail";
      }
      in.messages.push_back({{"role", user ? "user" : "assistant"}, {"content", content(text)}});
    }
    if (gemma4 && pick(5) == 0)
      in.messages.push_back({{"role", "assistant"}, {"content", "again"}});
    in.add_generation_prompt = pick(2) == 0;
    if (gemma4 && pick(3) != 0) in.enable_thinking = pick(2) == 0;
    out.push_back(std::move(in));
  }
  return out;
}

void ExpectSameAsOfficial(const std::string& family, const std::string& official_file) {
  const auto shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent: no official templates");
  Result<ChatTemplate> official = ChatTemplate::FromSource(
      testing::ReadFile(*shared + "/testdata/chat-templates/" + official_file), kSpecial);
  ASSERT_TRUE(official.ok()) << official.status().ToString();
  Result<ChatTemplate> builtin = ChatTemplate::FromSource(*BuiltinChatTemplate(family), kSpecial);
  ASSERT_TRUE(builtin.ok()) << builtin.status().ToString();
  int rendered = 0;
  for (const ChatTemplateInputs& in : Conversations(family == "gemma4", 7)) {
    Result<std::string> want = official->Render(in);
    Result<std::string> got = builtin->Render(in);
    ASSERT_TRUE(want.ok()) << want.status().ToString() << "\n" << in.messages.dump();
    ASSERT_TRUE(got.ok()) << got.status().ToString() << "\n" << in.messages.dump();
    EXPECT_EQ(*got, *want) << in.messages.dump();
    ++rendered;
  }
  EXPECT_EQ(rendered, 120);
}

TEST(BuiltinChatTemplate, Gemma3MatchesOfficialOnPlainText) {
  ExpectSameAsOfficial("gemma3", "gemma3-official.jinja");
}

TEST(BuiltinChatTemplate, Gemma4MatchesOfficialOnPlainText) {
  ExpectSameAsOfficial("gemma4", "gemma4-official.jinja");
}

TEST(BuiltinChatTemplate, KnownExamples) {
  ChatTemplateInputs in;
  in.messages = json::array(
      {{{"role", "system"}, {"content", "SYS"}}, {{"role", "user"}, {"content", " Hello "}}});
  in.add_generation_prompt = true;
  Result<ChatTemplate> g3 = ChatTemplate::FromSource(*BuiltinChatTemplate("gemma3"), kSpecial);
  ASSERT_TRUE(g3.ok()) << g3.status().ToString();
  EXPECT_EQ(*g3->Render(in),
            "<bos><start_of_turn>user\nSYS\n\nHello<end_of_turn>\n<start_of_turn>model\n");
  Result<ChatTemplate> g4 = ChatTemplate::FromSource(*BuiltinChatTemplate("gemma4"), kSpecial);
  ASSERT_TRUE(g4.ok()) << g4.status().ToString();
  EXPECT_EQ(*g4->Render(in),
            "<bos><|turn>system\nSYS<turn|>\n<|turn>user\nHello<turn|>\n<|turn>model\n"
            "<|channel>thought\n<channel|>");
  in.enable_thinking = true;
  EXPECT_EQ(*g4->Render(in),
            "<bos><|turn>system\n<|think|>\nSYS<turn|>\n<|turn>user\nHello<turn|>\n<|turn>model\n");
  EXPECT_FALSE(BuiltinChatTemplate("gemma2").has_value());
}

TEST(BuiltinChatTemplate, RejectsWhatItDoesNotCover) {
  Result<ChatTemplate> g4 = ChatTemplate::FromSource(*BuiltinChatTemplate("gemma4"), kSpecial);
  ASSERT_TRUE(g4.ok());
  ChatTemplateInputs in;
  in.messages = json::array({{{"role", "user"}, {"content", "hi"}}});
  in.tools = json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
  Result<std::string> r = g4->Render(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--template"), std::string::npos) << r.status().ToString();
  in.tools.reset();
  in.messages = json::array({{{"role", "user"}, {"content", json::array({{{"type", "image"}}})}}});
  EXPECT_FALSE(g4->Render(in).ok());
  Result<ChatTemplate> g3 = ChatTemplate::FromSource(*BuiltinChatTemplate("gemma3"), kSpecial);
  in.messages =
      json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}});
  r = g3->Render(in);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Conversation roles must alternate"), std::string::npos);
}

TEST(BuiltinChatTemplate, LoaderFallsBackByFamily) {
  TempDir dir;
  WriteFile(dir.File("tokenizer_config.json"), R"({"bos_token": "<bos>"})");
  WriteFile(dir.File("config.json"),
            R"({"architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
                "text_config": {"model_type": "gemma4_text"}})");
  EXPECT_EQ(ModelFamilyForTemplate(dir.path()), "gemma4");
  EXPECT_EQ(ModelFamilyForTemplate(dir.File("tokenizer_config.json")), "gemma4");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.path());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_NE(t->origin().find("built-in gemma4"), std::string::npos) << t->origin();
  ChatTemplateInputs in;
  in.messages = json::array({{{"role", "user"}, {"content", "Hi"}}});
  in.add_generation_prompt = true;
  EXPECT_EQ(*t->Render(in),
            "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");

  // A template in the checkpoint still wins.
  WriteFile(dir.File("chat_template.jinja"), "OWN");
  t = ChatTemplate::Load(dir.path());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->source(), "OWN");

  // Gemma 3 from config.json (model_type at the top level), no special tokens at all: <bos>.
  TempDir g3;
  WriteFile(g3.File("config.json"), R"({"model_type": "gemma3_text"})");
  t = ChatTemplate::Load(g3.path());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t->Render(in), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");

  // An unknown family keeps the error.
  TempDir other;
  WriteFile(other.File("config.json"), R"({"model_type": "llama"})");
  WriteFile(other.File("tokenizer_config.json"), R"({"bos_token": "<s>"})");
  t = ChatTemplate::Load(other.path());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
}

TEST(BuiltinChatTemplate, GgufWithoutTemplateFallsBack) {
  TempDir dir;
  gguf::GgufWriter w;
  w.Set("general.architecture", gguf::Value::String("gemma4"));
  w.Set("tokenizer.ggml.tokens", gguf::Value::StringArray({"<pad>", "<eos>", "<bos>", "hi"}));
  w.Set("tokenizer.ggml.bos_token_id", gguf::Value::U32(2));
  ASSERT_TRUE(w.WriteFile(dir.File("m.gguf")).ok());
  EXPECT_EQ(ModelFamilyForTemplate(dir.File("m.gguf")), "gemma4");
  EXPECT_EQ(ModelFamilyForTemplate(dir.path()), "gemma4");
  Result<ChatTemplate> t = ChatTemplate::Load(dir.File("m.gguf"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->special_tokens()["bos_token"], "<bos>");
  EXPECT_NE(t->origin().find("built-in"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local
