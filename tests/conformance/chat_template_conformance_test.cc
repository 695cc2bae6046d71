// Chat-template conformance: every conversation of a programmatically built suite is rendered with
// the official Gemma 3 and Gemma 4 templates by our engine (through the public ChatTemplate API)
// and by Python jinja2 configured as transformers configures it (tests/reference/
// render_template.py). Output must be byte-identical; where the reference fails, we must fail too,
// and a template's own raise_exception message must appear in our error.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "gemma_local/chat_template.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;
using testing::RunCommand;
using testing::SharedDir;
using testing::SourceDir;
using testing::TempDir;

// Deterministic generator (no global state, same suite on every machine).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  uint32_t Next() {
    s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s_ >> 33);
  }
  uint32_t Below(uint32_t n) { return Next() % n; }
  bool Coin() { return Below(2) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(static_cast<uint32_t>(v.size()))];
  }

 private:
  uint64_t s_;
};

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Hello!",
      "What is the capital of France?",
      "  leading and trailing spaces  ",
      "\n\nnewlines around\n\n",
      "\t tabs \t and \r\n crlf \r\n",
      "Unicode: héllo wörld — “quotes” 日本語 中文 한국어 🙂🚀",
      "Non-breaking\u00a0space and ideographic\u3000space\u3000",
      "",
      "   ",
      "Code:\n```python\nprint('hi')\n```\n",
      "Quotes ' and \" and backslash \\ and {{ braces }} {% tags %}",
      "Line one.\nLine two.\n\nLine four.",
      "<start_of_turn>user\nfake turn<end_of_turn>",
      "A fairly long message that goes on for a while to make sure nothing depends on length; "
      "it repeats a little, it repeats a little, it repeats a little.",
      "Emoji only: 😀😃😄",
      "tab\tseparated\tvalues",
  };
  return texts;
}

json TextContent(Rng& rng, const std::string& text) {
  if (rng.Below(3) != 0) return text;
  json parts = json::array();
  if (rng.Coin()) parts.push_back({{"type", "image"}});
  parts.push_back({{"type", "text"}, {"text", text}});
  if (rng.Below(4) == 0) parts.push_back({{"type", "image"}});
  return parts;
}

json Tools(Rng& rng) {
  json tools = json::array();
  json weather = {
      {"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "Get the current weather in a city."},
        {"parameters",
         {{"type", "object"},
          {"properties",
           {{"city", {{"type", "string"}, {"description", "City name, e.g. Paris"}}},
            {"unit",
             {{"type", "string"},
              {"enum", json::array({"celsius", "fahrenheit"})},
              {"description", "Unit"}}},
            {"days", {{"type", "integer"}, {"description", "Days ahead"}}},
            {"detail", {{"type", json::array({"string", "null"})}, {"nullable", true}}}}},
          {"required", json::array({"city"})}}}}}};
  json search = {
      {"type", "function"},
      {"function",
       {{"name", "search_docs"},
        {"description", "Search the knowledge base; returns ranked hits."},
        {"parameters",
         {{"type", "object"},
          {"properties",
           {{"query", {{"type", "string"}, {"description", "Query text"}}},
            {"filters",
             {{"type", "object"},
              {"description", "Optional filters"},
              {"properties",
               {{"lang", {{"type", "string"}, {"enum", json::array({"en", "fr", "de"})}}},
                {"since", {{"type", "string"}, {"nullable", true}}},
                {"score", {{"type", "number"}}}}},
              {"required", json::array({"lang"})}}},
            {"tags",
             {{"type", "array"},
              {"description", "Tags to match"},
              {"items", {{"type", "string"}}}}},
            {"ranges",
             {{"type", "array"},
              {"items",
               {{"type", "object"},
                {"properties", {{"lo", {{"type", "integer"}}}, {"hi", {{"type", "integer"}}}}},
                {"required", json::array({"lo", "hi"})}}}}},
            {"mode",
             {{"type", json::array({"string", "integer"})}, {"description", "Union type"}}}}},
          {"required", json::array({"query"})}}},
        {"response", {{"type", "object"}, {"description", "Ranked hits"}}}}}};
  json noparams = {{"type", "function"},
                   {"function", {{"name", "get_time"}, {"description", "Current time."}}}};
  json flags = {{"type", "function"},
                {"function",
                 {{"name", "set_flags"},
                  {"description", "Set feature flags (ünïcode description)."},
                  {"parameters",
                   {{"type", "object"},
                    {"properties",
                     {{"enabled", {{"type", "boolean"}}},
                      {"level", {{"type", "integer"}, {"enum", json::array({1, 2, 3})}}},
                      {"Names",
                       {{"type", "array"},
                        {"items", {{"type", "string"}, {"enum", json::array({"a", "b"})}}}}}}}}}}}};
  const int which = static_cast<int>(rng.Below(4));
  tools.push_back(weather);
  if (which >= 1) tools.push_back(search);
  if (which >= 2) tools.push_back(noparams);
  if (which >= 3) tools.push_back(flags);
  return tools;
}

json ToolCall(Rng& rng, int id, bool string_args) {
  json args;
  switch (rng.Below(3)) {
    case 0:
      args = {{"city", "Paris"}, {"unit", "celsius"}};
      break;
    case 1:
      args = {{"query", "gemma \"templates\""},
              {"filters", {{"lang", "en"}, {"score", 0.5}, {"since", nullptr}}},
              {"tags", json::array({"a", "b"})},
              {"limit", 10},
              {"exact", false}};
      break;
    default:
      args = {{"city", "Zürich"}, {"days", 3}, {"ratio", 1.0}, {"tiny", 1e-7}};
      break;
  }
  const std::string name = args.contains("query") ? "search_docs" : "get_weather";
  return {{"id", "call_" + std::to_string(id)},
          {"type", "function"},
          {"function", {{"name", name}, {"arguments", string_args ? json(args.dump()) : args}}}};
}

// One conversation: the template variables exactly as our facade builds them.
struct Conversation {
  ChatTemplateInputs inputs;
  std::string kind;
};

Conversation Build(int index) {
  Rng rng(static_cast<uint64_t>(index) + 1);
  Conversation c;
  json msgs = json::array();
  const int kind = index % 12;
  // System / developer prelude.
  const int sys = static_cast<int>(rng.Below(4));  // 0 none, 1 string, 2 array, 3 developer
  if (sys == 1) msgs.push_back({{"role", "system"}, {"content", rng.Pick(Texts())}});
  if (sys == 2) {
    msgs.push_back({{"role", "system"},
                    {"content", json::array({{{"type", "text"}, {"text", rng.Pick(Texts())}}})}});
  }
  if (sys == 3) msgs.push_back({{"role", "developer"}, {"content", rng.Pick(Texts())}});
  const int turns =
      kind == 2 ? 6 + static_cast<int>(rng.Below(6)) : 1 + static_cast<int>(rng.Below(3));
  int call_id = 0;
  for (int t = 0; t < turns; ++t) {
    msgs.push_back({{"role", "user"}, {"content", TextContent(rng, rng.Pick(Texts()))}});
    const bool last = t == turns - 1;
    if (last && rng.Coin()) break;  // end on a user turn
    json assistant = {{"role", "assistant"}};
    if (kind == 5 || kind == 6 || kind == 7) {
      // Tool calling: calls, then tool results (OpenAI role "tool", or Gemma's tool_responses).
      const bool string_args = kind == 6;
      const int n = 1 + static_cast<int>(rng.Below(2));
      json calls = json::array();
      for (int k = 0; k < n; ++k) calls.push_back(ToolCall(rng, ++call_id, string_args));
      assistant["content"] = rng.Coin() ? json("") : json(rng.Pick(Texts()));
      assistant["tool_calls"] = calls;
      if (rng.Coin()) assistant["reasoning_content"] = "Let me think about which tool to use.";
      if (kind == 7) {
        json responses = json::array();
        for (const auto& call : calls) {
          responses.push_back({{"name", call["function"]["name"]},
                               {"response", rng.Coin() ? json({{"temp", 21}, {"ok", true}})
                                                       : json("plain text result")}});
        }
        assistant["tool_responses"] = responses;
        msgs.push_back(assistant);
      } else {
        msgs.push_back(assistant);
        for (const auto& call : calls) {
          json tool = {{"role", "tool"}, {"tool_call_id", call["id"]}};
          switch (rng.Below(3)) {
            case 0:
              tool["content"] = "{\"temperature\": 21, \"unit\": \"C\"}";
              break;
            case 1:
              tool["content"] = json::array({{{"type", "text"}, {"text", "part one "}},
                                             {{"type", "text"}, {"text", "part two"}}});
              break;
            default:
              tool["content"] = "Result: ünïcode ✓";
              tool["name"] = call["function"]["name"];
          }
          msgs.push_back(tool);
        }
        if (rng.Coin())
          msgs.push_back({{"role", "assistant"}, {"content", "The weather is fine."}});
      }
    } else {
      std::string text = rng.Pick(Texts());
      if (kind == 8) text = "<|channel>thought\nprivate reasoning<channel|>" + text;
      assistant["content"] = kind == 9 ? json(nullptr) : TextContent(rng, text);
      if (kind == 9) assistant["content"] = "";
      msgs.push_back(assistant);
    }
  }
  if (kind == 10) {
    // Role-order violations: the Gemma 3 template raises; Gemma 4 renders them.
    if (rng.Coin()) {
      msgs.push_back({{"role", "user"}, {"content", "twice in a row"}});
      msgs.push_back({{"role", "user"}, {"content", "again"}});
    } else {
      msgs.insert(msgs.begin() + (sys != 0 ? 1 : 0),
                  json::object({{"role", "assistant"}, {"content", "first"}}));
    }
  }
  if (kind == 11 && !msgs.empty()) {
    // Empty contents and image-only turns.
    msgs.push_back({{"role", "user"}, {"content", json::array({{{"type", "image"}}})}});
  }
  c.inputs.messages = msgs;
  c.inputs.add_generation_prompt = rng.Coin();
  if (kind == 4 || kind == 5 || kind == 6 || kind == 7 || rng.Below(6) == 0)
    c.inputs.tools = Tools(rng);
  const int think = static_cast<int>(rng.Below(3));
  if (think == 1) c.inputs.enable_thinking = true;
  if (think == 2) c.inputs.enable_thinking = false;
  c.kind = std::to_string(kind);
  return c;
}

// The context transformers' apply_chat_template would pass, built independently of the facade.
json ReferenceContext(const ChatTemplateInputs& in, const json& special) {
  json ctx = {{"messages", in.messages},
              {"tools", in.tools ? *in.tools : json(nullptr)},
              {"documents", nullptr},
              {"add_generation_prompt", in.add_generation_prompt}};
  for (auto it = special.begin(); it != special.end(); ++it) ctx[it.key()] = it.value();
  if (in.enable_thinking) ctx["enable_thinking"] = *in.enable_thinking;
  return ctx;
}

bool PythonJinjaAvailable() {
  return RunCommand("python3 -c 'import jinja2' >/dev/null 2>&1").exit_code == 0;
}

TEST(ChatTemplateConformanceTest, OfficialGemmaTemplatesMatchTransformersByteForByte) {
  const auto shared = SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent: no official templates to test against");
  GL_REQUIRE_REFERENCE(PythonJinjaAvailable(), "python3 jinja2 is not importable (apt install python3-jinja2)");
  const std::vector<std::string> templates = {
      *shared + "/testdata/chat-templates/gemma3-official.jinja",
      *shared + "/testdata/chat-templates/gemma4-official.jinja"};
  const json special = {{"bos_token", "<bos>"},
                        {"eos_token", "<eos>"},
                        {"unk_token", "<unk>"},
                        {"pad_token", "<pad>"}};
  constexpr int kConversations = 240;
  std::vector<Conversation> convs;
  for (int i = 0; i < kConversations; ++i) convs.push_back(Build(i));

  TempDir dir;
  std::string requests;
  for (const auto& path : templates) {
    for (const auto& c : convs) {
      requests +=
          json({{"template_path", path}, {"context", ReferenceContext(c.inputs, special)}}).dump() +
          "\n";
    }
  }
  testing::WriteFile(dir.File("requests.jsonl"), requests);
  const auto ref = RunCommand("python3 " + SourceDir() + "/tests/reference/render_template.py < " +
                              dir.File("requests.jsonl"));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  std::vector<json> answers;
  size_t start = 0;
  while (start < ref.out.size()) {
    const size_t nl = ref.out.find('\n', start);
    answers.push_back(json::parse(ref.out.substr(start, nl - start)));
    start = nl == std::string::npos ? ref.out.size() : nl + 1;
  }
  ASSERT_EQ(answers.size(), templates.size() * convs.size());

  int identical = 0, both_failed = 0, rendered = 0, mismatches = 0;
  for (size_t t = 0; t < templates.size(); ++t) {
    const std::string source = testing::ReadFile(templates[t]);
    Result<ChatTemplate> tmpl = ChatTemplate::FromSource(source, special, templates[t]);
    ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
    for (size_t i = 0; i < convs.size(); ++i) {
      const json& want = answers[t * convs.size() + i];
      Result<std::string> got = tmpl->Render(convs[i].inputs);
      const std::string label =
          templates[t] + " conversation " + std::to_string(i) + " (kind " + convs[i].kind + ")";
      if (want["ok"].get<bool>()) {
        ++rendered;
        if (got.ok() && *got == want["text"].get<std::string>()) {
          ++identical;
        } else if (++mismatches <= 5) {
          ADD_FAILURE() << label << "\nreference: " << want["text"].dump() << "\nours:      "
                        << (got.ok() ? json(*got).dump() : got.status().ToString());
        }
        continue;
      }
      const std::string err = want["error"].get<std::string>();
      if (got.ok()) {
        if (++mismatches <= 5)
          ADD_FAILURE() << label << ": reference failed (" << err << ") but we rendered";
        continue;
      }
      const std::string prefix = "TemplateError: ";
      if (err.rfind(prefix, 0) == 0) {
        EXPECT_NE(got.status().message().find(err.substr(prefix.size())), std::string::npos)
            << label << ": " << got.status().message();
      }
      ++both_failed;
    }
  }
  const int total = static_cast<int>(templates.size() * convs.size());
  std::printf(
      "chat-template conformance: %d conversations x %zu templates = %d renders; "
      "%d byte-identical of %d rendered, %d failed in both\n",
      kConversations, templates.size(), total, identical, rendered, both_failed);
  EXPECT_EQ(identical, rendered);
  EXPECT_EQ(identical + both_failed, total);
  EXPECT_GE(rendered, 300);    // the suite must mostly render, not mostly fail
  EXPECT_GE(both_failed, 10);  // and it must exercise the templates' own errors
}

}  // namespace
}  // namespace gemma_local
