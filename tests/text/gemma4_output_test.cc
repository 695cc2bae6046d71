// Gemma 4 reply parsing: whole-text cases, streaming equal to the whole parse for every split,
// and tool calls as the official template writes them parsed back to the same arguments.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "gemma_local/chat_output.h"
#include "gemma_local/chat_template.h"

namespace gemma_local {
namespace {

using json = nlohmann::ordered_json;

const std::string Q = "<|\"|>";  // the Gemma 4 string delimiter

// Object equality regardless of key order (ordered_json compares in order).
bool SameJson(const std::string& text, const json& expected) {
  return nlohmann::json::parse(text) == nlohmann::json::parse(expected.dump());
}

std::string Call(const std::string& name, const std::string& args) {
  return "<|tool_call>call:" + name + args + "<tool_call|>";
}

// Streams `parts` through a parser and rebuilds a ParsedReply from the events alone (plus the
// flags, which only the parser knows), checking the events against the parser's own record.
ParsedReply Stream(const std::vector<std::string>& parts) {
  Gemma4OutputParser parser;
  ParsedReply from_events;
  auto take = [&](const std::vector<ReplyEvent>& events) {
    for (const ReplyEvent& e : events) {
      switch (e.kind) {
        case ReplyEvent::Kind::kContent:
          EXPECT_FALSE(e.text.empty());
          from_events.content += e.text;
          break;
        case ReplyEvent::Kind::kReasoning:
          EXPECT_FALSE(e.text.empty());
          from_events.reasoning += e.text;
          break;
        case ReplyEvent::Kind::kToolCall:
          from_events.tool_calls.push_back(e.tool_call);
          break;
      }
    }
  };
  for (const std::string& p : parts) take(parser.Feed(p));
  take(parser.Finish());
  EXPECT_TRUE(parser.Feed("more").empty());
  EXPECT_TRUE(parser.Finish().empty());
  from_events.stop_marker = parser.reply().stop_marker;
  from_events.malformed = parser.reply().malformed;
  from_events.malformed_reason = parser.reply().malformed_reason;
  EXPECT_EQ(from_events, parser.reply());
  return from_events;
}

// Every 2-way split and byte-by-byte feeding give the whole-text result.
void ExpectSplitInvariant(const std::string& text) {
  const ParsedReply whole = ParseGemma4Output(text);
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(Stream({text.substr(0, i), text.substr(i)}), whole)
        << "split at " << i << " of: " << text;
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  ASSERT_EQ(Stream(bytes), whole) << "byte by byte: " << text;
}

TEST(Gemma4Output, EmptyAndPlain) {
  ParsedReply r = ParseGemma4Output("");
  EXPECT_EQ(r, ParsedReply{});
  r = ParseGemma4Output("Hello, world! a < b > c {x:1} <|\"|>");
  EXPECT_EQ(r.content, "Hello, world! a < b > c {x:1} <|\"|>");
  EXPECT_EQ(r.reasoning, "");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_FALSE(r.malformed);
}

TEST(Gemma4Output, ThinkingOnly) {
  ParsedReply r = ParseGemma4Output("<|channel>thought\nLet me think.\nStep 2.<channel|>");
  EXPECT_EQ(r.reasoning, "Let me think.\nStep 2.");
  EXPECT_EQ(r.content, "");
  EXPECT_FALSE(r.malformed);
}

TEST(Gemma4Output, ThinkingThenAnswer) {
  ParsedReply r = ParseGemma4Output("<|channel>thought\n  \n hmm<channel|>The answer is 4.");
  EXPECT_EQ(r.reasoning, "hmm");  // whitespace after the label is not reasoning
  EXPECT_EQ(r.content, "The answer is 4.");
  EXPECT_FALSE(r.malformed);
}

TEST(Gemma4Output, EmptyThoughtChannelAndStrayClose) {
  // The non-thinking generation prompt pre-closes an empty channel; a model may repeat it, or
  // emit a lone <channel|> after its answer.
  ParsedReply r = ParseGemma4Output("<|channel>thought\n<channel|>Hi there<channel|>");
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Hi there");
  EXPECT_FALSE(r.malformed);
  EXPECT_TRUE(r.ToJson()["reasoning"].is_null());
}

TEST(Gemma4Output, OtherChannelLabelIsReasoning) {
  ParsedReply r = ParseGemma4Output("<|channel>analysis x<channel|>ok");
  EXPECT_EQ(r.reasoning, "analysis x");
  EXPECT_EQ(r.content, "ok");
  r = ParseGemma4Output("<|channel>thoughtful<channel|>");
  EXPECT_EQ(r.reasoning, "ful");  // the label is "thought"; the rest is the body
}

TEST(Gemma4Output, ReasoningKeepsMarkupText) {
  ParsedReply r = ParseGemma4Output("<|channel>thought\nuse <b> and <|tool_call> here<channel|>x");
  EXPECT_EQ(r.reasoning, "use <b> and <|tool_call> here");
  EXPECT_EQ(r.content, "x");
  EXPECT_TRUE(r.tool_calls.empty());
}

TEST(Gemma4Output, OneToolCall) {
  ParsedReply r = ParseGemma4Output(Call("get_weather", "{city:" + Q + "Paris" + Q + ",days:3}"));
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].id, "call_0");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city":"Paris","days":3})");
  EXPECT_EQ(r.content, "");
  EXPECT_FALSE(r.malformed);
  const json j = r.ToJson();
  EXPECT_EQ(j["tool_calls"][0]["type"], "function");
  EXPECT_EQ(j["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(j["tool_calls"][0]["function"]["arguments"].get<std::string>()),
            json::parse(R"({"city":"Paris","days":3})"));
  EXPECT_FALSE(j.contains("malformed"));
}

TEST(Gemma4Output, ManyToolCallsWithTextAndThinking) {
  const std::string text = "<|channel>thought\nNeed two lookups.<channel|>Checking.\n" +
                           Call("a", "{}") + Call("b.c-d", "{x:-1.5e3, y : true , z:null}") + "\n" +
                           Call("e", "{v:None}") + "<|tool_response>";
  ParsedReply r = ParseGemma4Output(text);
  EXPECT_EQ(r.reasoning, "Need two lookups.");
  EXPECT_EQ(r.content, "Checking.\n\n");
  ASSERT_EQ(r.tool_calls.size(), 3u);
  EXPECT_EQ(r.tool_calls[0].arguments, "{}");
  EXPECT_EQ(r.tool_calls[1].name, "b.c-d");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"x":-1500.0,"y":true,"z":null})");
  EXPECT_EQ(r.tool_calls[2].id, "call_2");
  EXPECT_EQ(r.tool_calls[2].arguments, R"({"v":null})");
  EXPECT_EQ(r.stop_marker, "<|tool_response>");
  EXPECT_FALSE(r.malformed);
}

TEST(Gemma4Output, NestedArguments) {
  const std::string args = "{loc:{lat:48.85,lon:2,tags:[" + Q + "a" + Q +
                           ",[1,[2,[]]],{}]},opts:{" + Q + "quoted key" + Q +
                           ":false},list:[],n:0,big:12345678901234567890,}";
  ParsedReply r = ParseGemma4Output(Call("f", args));
  ASSERT_EQ(r.tool_calls.size(), 1u) << r.malformed_reason;
  EXPECT_TRUE(SameJson(r.tool_calls[0].arguments,
                       json::parse(R"({"loc":{"lat":48.85,"lon":2,"tags":["a",[1,[2,[]]],{}]},)"
                                   R"("opts":{"quoted key":false},"list":[],"n":0,)"
                                   R"("big":12345678901234567890})")))
      << r.tool_calls[0].arguments;
}

TEST(Gemma4Output, StringsHoldStructureMarkersAndUnicode) {
  const std::string s =
      "a{b}c,d:e [x] \"q\" \\n <tool_call|> <turn|> <|channel> h\xC3\xA9 \xF0\x9F\x98\x80 \n";
  ParsedReply r = ParseGemma4Output("pre " + Call("say", "{text:" + Q + s + Q + "}") + " post");
  ASSERT_EQ(r.tool_calls.size(), 1u) << r.malformed_reason;
  EXPECT_EQ(json::parse(r.tool_calls[0].arguments)["text"], s);
  EXPECT_EQ(r.content, "pre  post");
  EXPECT_EQ(r.stop_marker, "");
}

TEST(Gemma4Output, MalformedToolCallsBecomeContent) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Call("f", "{a:}"), "value expected"},
      {Call("f", "{a:1 b:2}"), "',' or '}' expected"},
      {Call("f", "{a:Paris}"), "unexpected character"},
      {Call("f", "{a:" + Q + "x}"), "not closed"},  // <tool_call|> is inside the string
      {Call("f", "{a:1.2.3}"), "invalid number"},
      {Call("f", "{:1}"), "empty key"},
      {Call("f", "{a{:1}"), "invalid key"},
      {Call("f", "{a:[1,2}"), "expected"},
      {Call("f", "{a:1} extra"), "text after"},
      {Call("", "{a:1}"), "invalid function name"},
      {Call("my func", "{}"), "invalid function name"},
      {"<|tool_call>get{a:1}<tool_call|>", "call:"},
      {"<|tool_call>call:f<tool_call|>", "no '{'"},
      {Call("f", "{a:1}{b:2}"), "text after"},
  };
  for (const auto& [text, reason] : cases) {
    ParsedReply r = ParseGemma4Output("A " + text + " B");
    EXPECT_TRUE(r.tool_calls.empty()) << text;
    EXPECT_EQ(r.content, "A " + text + " B") << text;
    EXPECT_TRUE(r.malformed) << text;
    EXPECT_NE(r.malformed_reason.find(reason), std::string::npos)
        << text << ": " << r.malformed_reason;
    EXPECT_EQ(r.ToJson()["malformed"], true);
  }
}

TEST(Gemma4Output, NestingIsBounded) {
  std::string ok = "{a:", bad = "{a:";
  for (int i = 0; i < 63; ++i) ok += "[";
  ok += "1";
  for (int i = 0; i < 63; ++i) ok += "]";
  ok += "}";
  EXPECT_EQ(ParseGemma4Output(Call("f", ok)).tool_calls.size(), 1u);
  for (int i = 0; i < 100000; ++i) bad += "[";
  ParsedReply r = ParseGemma4Output(Call("f", bad));
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_NE(r.malformed_reason.find("nested deeper"), std::string::npos) << r.malformed_reason;
}

TEST(Gemma4Output, UnterminatedMarkers) {
  ParsedReply r = ParseGemma4Output("Sure. <|tool_call>call:f{a:" + Q + "x" + Q);
  EXPECT_EQ(r.content, "Sure. <|tool_call>call:f{a:" + Q + "x" + Q);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_TRUE(r.malformed);
  EXPECT_NE(r.malformed_reason.find("tool call not closed"), std::string::npos);

  // An unclosed thinking channel (e.g. --max-tokens hit while thinking) stays reasoning.
  r = ParseGemma4Output("<|channel>thought\nstill thinking");
  EXPECT_EQ(r.reasoning, "still thinking");
  EXPECT_EQ(r.content, "");
  EXPECT_TRUE(r.malformed);
  EXPECT_NE(r.malformed_reason.find("thinking channel not closed"), std::string::npos);
  for (const std::string t :
       {"<|channel>", "<|channel>tho", "<|channel>thought", "<|channel>thought\n"}) {
    r = ParseGemma4Output(t);
    EXPECT_TRUE(r.malformed) << t;
    EXPECT_EQ(r.content, "") << t;
  }
  EXPECT_EQ(ParseGemma4Output("<|channel>tho").reasoning, "tho");

  // A stop marker inside a string does not end the call; the call then never closes.
  r = ParseGemma4Output("<|tool_call>call:f{a:" + Q + "<turn|>");
  EXPECT_TRUE(r.malformed);
  EXPECT_EQ(r.content, "<|tool_call>call:f{a:" + Q + "<turn|>");
  EXPECT_EQ(r.stop_marker, "");
}

TEST(Gemma4Output, MarkerPrefixesAtTheEndAreText) {
  for (const std::string t : {"<", "<|", "<|chan", "<|channel", "<chan", "<|tool_c", "<tool_call|",
                              "<turn", "<eo", "<|tool_resp", "x <|channel"}) {
    ParsedReply r = ParseGemma4Output("Hello " + t);
    EXPECT_EQ(r.content, "Hello " + t);
    EXPECT_FALSE(r.malformed) << t;
  }
  // ...and not a marker once the next text arrives.
  Gemma4OutputParser p;
  std::vector<ReplyEvent> e = p.Feed("Hi <|chan");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "Hi ");
  e = p.Feed("nel? no");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].text, "<|channel? no");
  EXPECT_TRUE(p.Finish().empty());
}

TEST(Gemma4Output, StopMarkersEndTheReply) {
  ParsedReply r = ParseGemma4Output("Done.<turn|>\n<|turn>user\nmore");
  EXPECT_EQ(r.content, "Done.");
  EXPECT_EQ(r.stop_marker, "<turn|>");
  r = ParseGemma4Output("Done.<eos>");
  EXPECT_EQ(r.content, "Done.");
  EXPECT_EQ(r.stop_marker, "<eos>");
  EXPECT_FALSE(r.malformed);
  r = ParseGemma4Output("<|channel>thought\nabc<turn|>");
  EXPECT_EQ(r.reasoning, "abc");
  EXPECT_TRUE(r.malformed);
  r = ParseGemma4Output("<|tool_call>call:f{a:1}<eos>");
  EXPECT_EQ(r.content, "<|tool_call>call:f{a:1}");
  EXPECT_TRUE(r.malformed);
  EXPECT_EQ(r.stop_marker, "<eos>");
}

TEST(Gemma4Output, StreamingEmitsEarlyAndInOrder) {
  Gemma4OutputParser p;
  std::vector<ReplyEvent> e = p.Feed("<|channel>thought\nfirst ");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, ReplyEvent::Kind::kReasoning);
  EXPECT_EQ(e[0].text, "first ");
  e = p.Feed("second<channel|>Answer " + Call("f", "{a:1}") + " tail<|tool_call>call:g{");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].kind, ReplyEvent::Kind::kReasoning);
  EXPECT_EQ(e[1].kind, ReplyEvent::Kind::kContent);
  EXPECT_EQ(e[1].text, "Answer ");
  EXPECT_EQ(e[2].kind, ReplyEvent::Kind::kToolCall);
  EXPECT_EQ(e[2].tool_call.name, "f");
  EXPECT_EQ(e[3].text, " tail");
  EXPECT_TRUE(p.Feed("b:2").empty());  // a tool call is held until it closes
  e = p.Feed("}<tool_call|>");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].tool_call.id, "call_1");
  EXPECT_EQ(e[0].tool_call.arguments, R"({"b":2})");
}

std::vector<std::string> Corpus() {
  return {
      "",
      "plain text",
      "<|channel>thought\nThinking <b>bold</b><channel|>Answer",
      "<|channel>thought\n<channel|>Answer<channel|>",
      "<|channel>other<channel|><|channel>thought  x<channel|>y",
      "a<|tool_call>call:f{a:" + Q + "x,y}<tool_call|>" + Q + ",b:[1,{c:None}]}<tool_call|>b",
      Call("f", "{a:1}") + Call("g", "{b:" + Q + Q + "}") + "<|tool_response>ignored",
      "<|tool_call>call:f{a:}<tool_call|> after",
      "text <|tool_call>call:f{a:1}",
      "<|channel>thought\nunclosed <turn|> rest",
      "x <|chan",
      "<<|<|c<|channel>thought<channel|<channel|>",
      "<eo<eos>",
      "<tool_call|><|\"|><tool_call|",
      "h\xC3\xA9llo \xF0\x9F\x98\x80 <|channel>thought\n\xE2\x9C\x93<channel|>\xE2\x9C\x93",
      "bad \xFF\xFE bytes <|tool_call>call:f{s:" + Q + "\xC3" + Q + "}<tool_call|>",
  };
}

TEST(Gemma4Output, StreamingEqualsWholeForEverySplit) {
  for (const std::string& text : Corpus()) ExpectSplitInvariant(text);
}

TEST(Gemma4Output, StreamingEqualsWholeOnRandomText) {
  // Random sequences of markers, marker fragments and text, each split everywhere.
  const std::vector<std::string> atoms = {"<|channel>",
                                          "<channel|>",
                                          "<|tool_call>",
                                          "<tool_call|>",
                                          Q,
                                          "<turn|>",
                                          "<eos>",
                                          "<|tool_response>",
                                          "thought",
                                          "\n",
                                          " ",
                                          "call:",
                                          "f",
                                          "{",
                                          "}",
                                          "[",
                                          "]",
                                          ",",
                                          ":",
                                          "1",
                                          "-2.5",
                                          "true",
                                          "None",
                                          "x",
                                          "<",
                                          "|",
                                          ">",
                                          "<|",
                                          "<|chan",
                                          "nel>",
                                          "\xC3\xA9"};
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(0, 14)(rng);
    for (int k = 0; k < n; ++k)
      text += atoms[std::uniform_int_distribution<size_t>(0, atoms.size() - 1)(rng)];
    ExpectSplitInvariant(text);
    // Three-way splits at random positions too.
    const ParsedReply whole = ParseGemma4Output(text);
    for (int s = 0; s < 5; ++s) {
      size_t a = std::uniform_int_distribution<size_t>(0, text.size())(rng);
      size_t b = std::uniform_int_distribution<size_t>(0, text.size())(rng);
      if (a > b) std::swap(a, b);
      ASSERT_EQ(Stream({text.substr(0, a), text.substr(a, b - a), text.substr(b)}), whole) << text;
    }
  }
}

TEST(Gemma4Output, InvalidUtf8DoesNotBreakJson) {
  ParsedReply r = ParseGemma4Output("a\xFF<|channel>thought\n\xC3<channel|>" + Call("f\xFE", "{}"));
  const std::string dumped = r.ToJson().dump();  // would throw on invalid UTF-8
  EXPECT_NE(dumped.find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(Gemma4Output, MarkerSet) {
  for (const char* m : {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|\"|>",
                        "<turn|>", "<eos>", "<|tool_response>"}) {
    EXPECT_TRUE(IsGemma4OutputMarker(m)) << m;
  }
  for (const char* m : {"<|turn>", "<bos>", "<|think|>", "<tool_response|>", "", "<|channel"}) {
    EXPECT_FALSE(IsGemma4OutputMarker(m)) << m;
  }
}

// Tool calls as the official template writes them into history parse back to the same
// arguments (the template sorts keys and writes Python's spelling of numbers).
TEST(Gemma4Output, ParsesWhatTheOfficialTemplateWrites) {
  const auto shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared, "../shared is absent: no official Gemma 4 template");
  Result<ChatTemplate> tmpl = ChatTemplate::FromSource(
      testing::ReadFile(*shared + "/testdata/chat-templates/gemma4-official.jinja"),
      {{"bos_token", "<bos>"}});
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  const std::vector<json> argument_sets = {
      json::object(),
      json::parse(R"({"city": "Paris", "days": 3})"),
      json::parse(R"({"q": "a{b}c,d:e [x] \"quoted\" é 😀", "n": -1.5, "ok": false})"),
      json::parse(R"({"nested": {"z": [1, 2.25, {"deep": [true, false]}], "a": "s"}, "e": []})"),
      json::parse(R"({"list": [["x"], [], {}], "num": 1e-07, "big": 123456789012})"),
  };
  for (const json& args : argument_sets) {
    ChatTemplateInputs in;
    in.messages = json::array(
        {{{"role", "user"}, {"content", "hi"}},
         {{"role", "assistant"},
          {"content", ""},
          {"tool_calls",
           json::array({{{"id", "c0"},
                         {"type", "function"},
                         {"function", {{"name", "lookup"}, {"arguments", args}}}},
                        {{"id", "c1"},
                         {"type", "function"},
                         {"function", {{"name", "other_tool"}, {"arguments", args}}}}})}}});
    Result<std::string> text = tmpl->Render(in);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    const size_t start = text->find("<|tool_call>");
    const size_t end = text->rfind("<tool_call|>");
    ASSERT_NE(start, std::string::npos);
    ParsedReply r = ParseGemma4Output(text->substr(start, end + 12 - start));
    ASSERT_FALSE(r.malformed) << r.malformed_reason << "\n" << *text;
    ASSERT_EQ(r.tool_calls.size(), 2u);
    EXPECT_EQ(r.tool_calls[0].name, "lookup");
    EXPECT_EQ(r.tool_calls[1].name, "other_tool");
    EXPECT_TRUE(SameJson(r.tool_calls[0].arguments, args)) << *text;
    EXPECT_EQ(r.content, "");
  }
}

}  // namespace
}  // namespace gemma_local
