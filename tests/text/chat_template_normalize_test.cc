// NormalizeOpenAiMessages on hostile requests: a wrong type at every field, deep nesting and huge
// strings give an InvalidArgument Status whose message names the field (and stays short), never an
// exception or a crash. Rendering unnormalized deep input is bounded the same way.
#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <vector>

#include "gemma_local/chat_template.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;

// `depth` nested arrays around 1, as JSON text (parsed by the test, so the parser is covered too).
std::string DeepArrayText(size_t depth) {
  return std::string(depth, '[') + "1" + std::string(depth, ']');
}
// `depth` nested objects {"a": ...} as JSON text.
std::string DeepObjectText(size_t depth) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s += std::string(depth, '}');
  return s;
}

// One user message then an assistant message calling f (id "c1"); `extra` is appended.
json WithCall(json extra) {
  json m = json::parse(R"([{"role": "user", "content": "q"},
    {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}])");
  m.push_back(std::move(extra));
  return m;
}

struct Case {
  const char* name;
  json input;
  std::string error;  // the exact message
};

std::vector<Case> HostileCases() {
  const std::string huge(10u << 20, 'a');  // 10 MiB
  const std::string short_huge = std::string(80, 'a') + "...";
  auto parse = [](const std::string& s) { return json::parse(s); };
  // An array, not an initializer_list: elements are built in place (an initializer_list would
  // copy them, and copying a deep json recurses).
  Case table[] = {
      {"messages not a list", parse(R"({"role": "user"})"), "messages: expected a list"},
      {"message not an object", parse("[5]"), "messages[0]: expected an object"},
      {"role missing", parse(R"([{"content": "x"}])"), "messages[0].role: expected a string"},
      {"role number", parse(R"([{"role": 1}])"), "messages[0].role: expected a string, got number"},
      {"role null", parse(R"([{"role": null}])"), "messages[0].role: expected a string, got null"},
      {"name number", parse(R"([{"role": "user", "content": "x", "name": 5}])"),
       "messages[0].name: expected a string, got number"},
      {"content object", parse(R"([{"role": "user", "content": {}}])"),
       "messages[0].content: expected a string, a list of parts or null"},
      {"content bool", parse(R"([{"role": "system", "content": true}])"),
       "messages[0].content: expected a string, a list of parts or null"},
      {"part string", parse(R"([{"role": "user", "content": ["x", 5]}])"),
       "messages[0].content[0]: expected an object, got string"},
      {"part type missing", parse(R"([{"role": "user", "content": [{}]}])"),
       "messages[0].content[0].type: expected a string"},
      {"part type number", parse(R"([{"role": "user", "content": [{"type": 3}]}])"),
       "messages[0].content[0].type: expected a string, got number"},
      {"part text array", parse(R"([{"role": "user", "content": [{"type": "text", "text": []}]}])"),
       "messages[0].content[0].text: expected a string, got array"},
      {"tool_calls on a user", parse(R"([{"role": "user", "content": "", "tool_calls": []}])"),
       "messages[0].tool_calls: only assistant messages carry tool calls"},
      {"tool_calls object", parse(R"([{"role": "assistant", "tool_calls": {}}])"),
       "messages[0].tool_calls: expected a list"},
      {"tool call string", parse(R"([{"role": "assistant", "tool_calls": ["call f"]}])"),
       "messages[0].tool_calls[0]: expected an object, got string"},
      {"tool call null", parse(R"([{"role": "assistant", "tool_calls": [null]}])"),
       "messages[0].tool_calls[0]: expected an object, got null"},
      {"tool call id number",
       parse(R"([{"role": "assistant", "tool_calls": [{"id": 7, "function": {"name": "f"}}]}])"),
       "messages[0].tool_calls[0].id: expected a string, got number"},
      {"tool call type array",
       parse(R"([{"role": "assistant", "tool_calls": [{"type": [], "function": {"name": "f"}}]}])"),
       "messages[0].tool_calls[0].type: expected a string, got array"},
      {"function missing", parse(R"([{"role": "assistant", "tool_calls": [{"id": "a"}]}])"),
       "messages[0].tool_calls[0].function: expected an object"},
      {"function string", parse(R"([{"role": "assistant", "tool_calls": [{"function": "f"}]}])"),
       "messages[0].tool_calls[0].function: expected an object, got string"},
      {"function name number",
       parse(R"([{"role": "assistant", "tool_calls": [{"function": {"name": 1}}]}])"),
       "messages[0].tool_calls[0].function.name: expected a string, got number"},
      {"arguments number",
       parse(
           R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 1}}]}])"),
       "messages[0].tool_calls[0].function.arguments: expected an object or a JSON string"},
      {"arguments not JSON",
       parse(
           R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}])"),
       "messages[0].tool_calls[0].function.arguments: not a JSON object"},
      {"tool_call_id number",
       WithCall(parse(R"({"role": "tool", "tool_call_id": 1, "content": ""})")),
       "messages[2].tool_call_id: expected a string, got number"},
      {"tool_call_id object", WithCall(parse(R"({"role": "tool", "tool_call_id": {"id": "c1"}})")),
       "messages[2].tool_call_id: expected a string, got object"},
      {"tool_call_id unknown", WithCall(parse(R"({"role": "tool", "tool_call_id": "c2"})")),
       "messages[2].tool_call_id: matches no tool call of the preceding assistant message"},
      {"tool name number", WithCall(parse(R"({"role": "tool", "name": 5, "content": "r"})")),
       "messages[2].name: expected a string, got number"},
      {"tool content number",
       WithCall(parse(R"({"role": "tool", "tool_call_id": "c1", "content": 5})")),
       "messages[2].content: expected a string, a list of parts or null"},
      {"tool content part number",
       WithCall(parse(R"({"role": "tool", "tool_call_id": "c1", "content": [5]})")),
       "messages[2].content[0]: expected an object, got number"},
      {"tool without a call", parse(R"([{"role": "tool", "content": "r"}])"),
       "messages[0]: a tool message must follow an assistant message with tool_calls"},
      // Nesting 10000 deep, in every place a value can nest.
      {"deep content", parse(R"([{"role": "user", "content": )" + DeepArrayText(10000) + "}]"),
       "messages[0].content: nested deeper than 64 levels"},
      {"deep unknown field",
       parse(R"([{"role": "user", "content": "x", "extra": )" + DeepObjectText(10000) + "}]"),
       "messages[0].extra: nested deeper than 64 levels"},
      {"deep tool_call_id",
       WithCall(parse(R"({"role": "tool", "tool_call_id": )" + DeepArrayText(10000) + "}")),
       "messages[2].tool_call_id: nested deeper than 64 levels"},
      {"deep arguments object",
       parse(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": )" +
             DeepObjectText(10000) + "}}]}]"),
       "messages[0].tool_calls: nested deeper than 64 levels"},
      {"deep arguments string",
       parse(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": )" +
             json(DeepObjectText(10000)).dump() + "}}]}]"),
       "messages[0].tool_calls[0].function.arguments: nested deeper than 64 levels"},
      {"deep tool result",
       WithCall(json::object(
           {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", DeepObjectText(10000)}})),
       "messages[2].content: nested deeper than 64 levels"},
      // 10 MiB strings: errors quote at most 80 characters of them.
      {"huge role", json::array({json::object({{"role", huge}})}),
       "messages[0].role: unknown role \"" + short_huge + "\""},
      {"huge part type",
       json::array({json::object(
           {{"role", "user"}, {"content", json::array({json::object({{"type", huge}})})}})}),
       "messages[0].content[0].type: unsupported content part type \"" + short_huge + "\""},
      {"huge tool_call_id", WithCall(json::object({{"role", "tool"}, {"tool_call_id", huge}})),
       "messages[2].tool_call_id: matches no tool call of the preceding assistant message"},
      {"huge arguments",
       json::array({json::object(
           {{"role", "assistant"},
            {"tool_calls",
             json::array({json::object(
                 {{"function", json::object({{"name", "f"}, {"arguments", huge}})}})})}})}),
       "messages[0].tool_calls[0].function.arguments: not a JSON object"},
  };
  std::vector<Case> cases(std::make_move_iterator(std::begin(table)),
                          std::make_move_iterator(std::end(table)));
  // A deep value under a 10 MiB key: the path quotes the key escaped and cut.
  json deep_key = json::array({json::object({{"role", "user"}})});
  deep_key[0][huge] = json::parse(DeepArrayText(100));
  cases.push_back({"deep value under a huge key", deep_key,
                   "messages[0]." + short_huge + ": nested deeper than 64 levels"});
  return cases;
}

TEST(NormalizeOpenAiMessagesHostileTest, ErrorsNameTheFieldAndNeverThrow) {
  for (const Case& c : HostileCases()) {
    SCOPED_TRACE(c.name);
    Result<json> out = json::array();
    EXPECT_NO_THROW(out = NormalizeOpenAiMessages(c.input));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(out.status().message(), c.error);
    EXPECT_LT(out.status().message().size(), 300u);
  }
}

TEST(NormalizeOpenAiMessagesHostileTest, HugeValidStringsPassThrough) {
  const std::string huge(10u << 20, 'z');
  json in = WithCall(json::object({{"role", "tool"}, {"tool_call_id", "c1"}, {"content", huge}}));
  in[0]["content"] = huge;
  Result<json> out = NormalizeOpenAiMessages(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0]["content"], huge);
  EXPECT_EQ((*out)[1]["tool_responses"][0]["response"], huge);
  // Nesting at the limit is accepted.
  const json ok =
      json::parse(R"([{"role": "user", "content": "x", "meta": )" + DeepArrayText(63) + "}]");
  EXPECT_TRUE(NormalizeOpenAiMessages(ok).ok());
}

TEST(NormalizeOpenAiMessagesHostileTest, RenderBoundsNestingOfUnnormalizedInput) {
  Result<ChatTemplate> t = ChatTemplate::FromSource(
      "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}\n{% endfor %}", json::object());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ChatTemplateInputs in;
  in.messages = json::parse(R"([{"role": "user", "content": )" + DeepArrayText(100000) + "}]");
  Result<std::string> r = std::string();
  EXPECT_NO_THROW(r = t->Render(in));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "messages: nested deeper than 200 levels");
  in.messages = json::parse(R"([{"role": "user", "content": "hi"}])");
  in.tools = json::parse(DeepArrayText(100000));
  EXPECT_NO_THROW(r = t->Render(in));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "tools: nested deeper than 200 levels");
}

}  // namespace
}  // namespace gemma_local
