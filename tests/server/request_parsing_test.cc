// The server's request reading: field checks (types, ranges, before any conversion), context
// fitting, body limits, API keys, UTF-8 repair, route labels and the metrics text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/auth.h"
#include "server/chat_completions.h"
#include "server/completions.h"
#include "server/metrics.h"
#include "server/request_body.h"
#include "server/request_fields.h"
#include "server/token_text.h"

namespace gemma_local::server {
namespace {

nlohmann::ordered_json J(const char* text) { return nlohmann::ordered_json::parse(text); }

TEST(RequestFields, NumbersAreTypeAndRangeCheckedBeforeConversion) {
  ApiError e;
  int64_t v = 7;
  EXPECT_TRUE(ReadInt(J(R"({"n": 3})"), "n", 1, 8, &v, &e));
  EXPECT_EQ(v, 3);
  EXPECT_TRUE(ReadInt(J(R"({"n": 4.0})"), "n", 1, 8, &v, &e)) << "an integral float is an int";
  EXPECT_EQ(v, 4);
  for (const char* bad : {R"({"n": 1e300})", R"({"n": -1e300})", R"({"n": 2.5})", R"({"n": "2"})",
                          R"({"n": 9})", R"({"n": 0})", R"({"n": 18446744073709551615})"}) {
    EXPECT_FALSE(ReadInt(J(bad), "n", 1, 8, &v, &e)) << bad;
    EXPECT_EQ(e.param, "n");
    EXPECT_EQ(e.code, "invalid_n");
  }
  float f = 0;
  EXPECT_TRUE(ReadFloat(J(R"({"t": null})"), "t", 0, 2, &f, &e)) << "null is absent";
  EXPECT_FALSE(ReadFloat(J(R"({"t": 2.5})"), "t", 0, 2, &f, &e));
  EXPECT_NE(e.message.find("[0, 2]"), std::string::npos) << e.message;
}

TEST(RequestFields, CommonFieldsAndContext) {
  CommonFields f;
  ApiError e;
  ASSERT_TRUE(
      ReadCommonFields(J(R"({"temperature":0,"seed":-1,"stop":"x","n":2,"max_completion_tokens":5,
            "ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}})"),
                       4, &f, &e))
      << e.message;
  EXPECT_EQ(f.request.sampling.temperature, 0.0f);
  EXPECT_EQ(f.request.sampling.seed, ~uint64_t{0});
  EXPECT_EQ(f.request.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(f.n, 2);
  EXPECT_EQ(f.max_tokens, 5);
  EXPECT_TRUE(f.request.ignore_model_stop_tokens && f.stream && f.include_usage);
  CommonFields g;
  EXPECT_FALSE(ReadCommonFields(J(R"({"stream_options":{"include_usage":1}})"), 4, &g, &e));
  EXPECT_EQ(e.param, "stream_options.include_usage");

  int64_t settled = 0;
  EXPECT_TRUE(FitContext(10, 100, -1, &settled, &e));
  EXPECT_EQ(settled, 90) << "no max_tokens: the rest of the context";
  EXPECT_TRUE(FitContext(10, 100, 90, &settled, &e));
  EXPECT_FALSE(FitContext(10, 100, 91, &settled, &e));
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find("over by 1"), std::string::npos) << e.message;
  EXPECT_FALSE(FitContext(100, 100, -1, &settled, &e));
  EXPECT_EQ(e.param, "messages");
}

TEST(ChatRequest, FieldsAndUnsupportedOnes) {
  ChatRequest c;
  ApiError e;
  ASSERT_TRUE(ParseChatRequest(
      J(R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":3,
            "tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],
            "reasoning_effort":"none","user":"ignored"})"),
      8, 4, &c, &e))
      << e.message;
  EXPECT_EQ(c.common.request.logprobs, 3);
  ASSERT_TRUE(c.common.request.input.chat.has_value());
  EXPECT_FALSE(c.common.request.input.chat->tools.has_value()) << "tool_choice none";
  EXPECT_EQ(c.common.request.input.chat->enable_thinking, false);
  const std::pair<const char*, const char*> bad[] = {
      {R"({"messages":[]})", "messages"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})",
       "response_format"},
      // No "type" at all (a fuzzer find: was a const operator[] on a missing key).
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"paratype":"text"}})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},
           "reasoning_effort":"high"})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", "tool_choice"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":1}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"grammar":5})", "grammar"},
      {R"({"messages":[{"role":"user","content":"x"}],"grammar":"root ::= \"a\"",
           "response_format":{"type":"json_object"}})",
       "grammar"},
      {R"({"messages":[1,2,3,4,5,6,7,8,9]})", "messages"}};
  for (const auto& [body, param] : bad) {
    ChatRequest r;
    EXPECT_FALSE(ParseChatRequest(J(body), 8, 4, &r, &e)) << body;
    EXPECT_EQ(e.param, param) << body;
  }
}

// response_format becomes the request's constraint; strict: false opts into best effort.
TEST(ChatRequest, ResponseFormatBecomesAConstraint) {
  ApiError e;
  ChatRequest r;
  ASSERT_TRUE(ParseChatRequest(J(R"({"messages":[{"role":"user","content":"x"}],
      "response_format":{"type":"json_schema","json_schema":{"name":"n","strict":false,
      "schema":{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"}}}}}})"),
                               8, 4, &r, &e))
      << e.message;
  ASSERT_TRUE(r.common.request.constraint.has_value());
  EXPECT_EQ(r.common.request.constraint->kind, Constraint::Kind::kJsonSchema);
  EXPECT_TRUE(r.common.request.constraint->best_effort);
  EXPECT_EQ(r.common.request.constraint->schema["properties"].begin().key(), "b")
      << "property order is the client's";
  ChatRequest o;
  ASSERT_TRUE(ParseChatRequest(
      J(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})"),
      8, 4, &o, &e));
  ASSERT_TRUE(o.common.request.constraint.has_value());
  EXPECT_EQ(o.common.request.constraint->schema["type"], "object");
  EXPECT_FALSE(o.common.request.constraint->best_effort);
  ChatRequest t;
  ASSERT_TRUE(ParseChatRequest(
      J(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}})"), 8, 4,
      &t, &e));
  EXPECT_FALSE(t.common.request.constraint.has_value());
  // llama-server's top-level GBNF grammar.
  ChatRequest g;
  ASSERT_TRUE(ParseChatRequest(J(R"({"messages":[{"role":"user","content":"x"}],
      "grammar":"root ::= \"yes\" | \"no\""})"),
                               8, 4, &g, &e))
      << e.message;
  ASSERT_TRUE(g.common.request.constraint.has_value());
  EXPECT_EQ(g.common.request.constraint->kind, Constraint::Kind::kGrammar);
  EXPECT_EQ(g.common.request.constraint->grammar, "root ::= \"yes\" | \"no\"");
}

// Messages and tool schemas reach the template in the client's key order (a tool's parameters
// in the order the client wrote them), not sorted.
TEST(ChatRequest, KeepsTheClientsKeyOrder) {
  ChatRequest c;
  ApiError e;
  ASSERT_TRUE(ParseChatRequest(J(R"({"messages":[{"role":"user","content":"hi","name":"z"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":
              {"type":"object","properties":{"zeta":{},"alpha":{}}}}}]})"),
                               8, 4, &c, &e))
      << e.message;
  EXPECT_EQ(c.common.request.input.chat->messages.dump(),
            R"([{"role":"user","content":"hi","name":"z"}])");
  EXPECT_EQ((*c.common.request.input.chat->tools)[0]["function"]["parameters"]["properties"].dump(),
            R"({"zeta":{},"alpha":{}})");
}

TEST(CompletionRequest, PromptShapes) {
  ApiError e;
  for (const char* ok : {R"({"prompt":"hi"})", R"({"prompt":["hi"]})", R"({"prompt":[1,2]})",
                         R"({"prompt":[[1,2]]})"}) {
    CompletionRequest r;
    EXPECT_TRUE(ParseCompletionRequest(J(ok), 4, &r, &e)) << ok << ": " << e.message;
  }
  for (const char* bad :
       {R"({"prompt":["a","b"]})", R"({"prompt":[1,-2]})", R"({"prompt":""})", R"({"prompt":[]})",
        R"({})", R"({"prompt":"x","suffix":"y"})", R"({"prompt":"x","best_of":2})"}) {
    CompletionRequest r;
    EXPECT_FALSE(ParseCompletionRequest(J(bad), 4, &r, &e)) << bad;
  }
}

TEST(RequestBody, LimitsAreCheckedWhileParsing) {
  nlohmann::ordered_json out;
  ApiError e;
  EXPECT_TRUE(ParseBody(R"({"a":[[1]]})", {4, 16}, &out, &e));
  EXPECT_FALSE(ParseBody(std::string(100000, '[') + std::string(100000, ']'), {4, 16}, &out, &e));
  EXPECT_EQ(e.code, "json_too_deep");
  EXPECT_FALSE(ParseBody(R"({"a":"01234567890123456789"})", {4, 16}, &out, &e));
  EXPECT_EQ(e.code, "string_too_long");
  EXPECT_FALSE(ParseBody(R"({"01234567890123456789":1})", {4, 16}, &out, &e)) << "keys too";
  EXPECT_FALSE(ParseBody("{\"a\":\"\xff\"}", {4, 16}, &out, &e));
  EXPECT_EQ(e.code, "invalid_json");
}

TEST(ApiKeys, DigestsComparedAndNamedByKeyId) {
  ApiKeys keys({"alpha", "beta"});
  ASSERT_TRUE(keys.enabled());
  std::optional<std::string> a = keys.Check("Bearer alpha");
  std::optional<std::string> b = keys.Check("Bearer beta");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 12u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find("alpha"), std::string::npos);
  for (const char* bad : {"", "Bearer ", "Bearer alph", "Bearer alphaa", "bearer alpha", "alpha",
                          "Basic alpha", "Bearer  alpha"}) {
    EXPECT_FALSE(keys.Check(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ApiKeys({}).enabled());
}

TEST(TokenText, ValidUtf8ReplacesEachBadByte) {
  EXPECT_EQ(ValidUtf8("abc"), "abc");
  EXPECT_EQ(ValidUtf8("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(ValidUtf8("a\xFF"
                      "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong";
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate";
  EXPECT_EQ(ValidUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "cut short";
}

TEST(Metrics, RoutesAreBoundedAndHistogramsCumulative) {
  EXPECT_EQ(RouteLabel("POST", "/v1/chat/completions"), "POST /v1/chat/completions");
  EXPECT_EQ(RouteLabel("GET", "/v1/anything/else"), "other");
  ServerMetrics m;
  m.CountRequest("GET /health", 200, 1.5);
  m.CountRequest("GET /health", 200, 700);
  const std::string loading = m.Render(nullptr);
  EXPECT_NE(loading.find("gemma_local_http_requests_total{route=\"GET /health\",status=\"200\"} 2"),
            std::string::npos)
      << loading;
  EXPECT_NE(loading.find("gemma_local_model_ready 0"), std::string::npos);
  EXPECT_NE(loading.find("gemma_local_http_request_duration_seconds_bucket{le=\"0.002\"} 1"),
            std::string::npos)
      << loading;
  EXPECT_NE(loading.find("gemma_local_http_request_duration_seconds_bucket{le=\"1\"} 2"),
            std::string::npos);
  EngineStats s;
  s.running = 3;
  s.kv_budget_bytes = 100;
  s.kv_bytes_in_use = 25;
  const std::string ready = m.Render(&s);
  EXPECT_NE(ready.find("gemma_local_requests_running 3\n"), std::string::npos);
  EXPECT_NE(ready.find("gemma_local_kv_cache_usage_ratio 0.25\n"), std::string::npos) << ready;
}

TEST(Completions, PromptLogprobsStartWithNull) {
  ScoreResult scored;
  scored.tokens = {5, 6, 7};
  scored.positions = {{{{6, -0.5f}, {9, -1.0f}}, -0.5f}, {{{7, -0.25f}}, -0.25f}, {{}, 0.0f}};
  nlohmann::json lp = PromptLogprobs(scored, nullptr, 1);
  ASSERT_EQ(lp["token_logprobs"].size(), 3u);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["token_logprobs"][1], -0.5);
  EXPECT_EQ(lp["token_logprobs"][2], -0.25);
  EXPECT_EQ(lp["top_logprobs"][1].size(), 1u);
}

}  // namespace
}  // namespace gemma_local::server

namespace gemma_local::server {
namespace {

// Gemma 4 replies: reasoning and tool calls become reasoning_content and tool_calls, streamed
// as deltas with the call's index, and finish_reason "tool_calls".
TEST(ChatChunks, ReasoningAndToolCallsAsOpenAiSendsThem) {
  ResponseHeader h{"req-1", "m", 5};
  Event e;
  ReplyEvent thought;
  thought.kind = ReplyEvent::Kind::kReasoning;
  thought.text = "hmm";
  ReplyEvent call;
  call.kind = ReplyEvent::Kind::kToolCall;
  call.tool_call = ToolCall{"call_0", "get_weather", R"({"city":"Paris"})"};
  e.deltas = {thought, call};
  ChatChoiceStream state;
  std::vector<nlohmann::json> chunks = ChatChunks(e, 1, h, &state, nullptr, false);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["reasoning_content"], "hmm");
  EXPECT_EQ(chunks[0]["choices"][0]["index"], 1);
  const nlohmann::json& tc = chunks[1]["choices"][0]["delta"]["tool_calls"][0];
  EXPECT_EQ(tc["index"], 0);
  EXPECT_EQ(tc["id"], "call_0");
  EXPECT_EQ(tc["type"], "function");
  EXPECT_EQ(tc["function"]["name"], "get_weather");
  EXPECT_EQ(tc["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_FALSE(chunks[1]["choices"][0]["delta"].contains("role"));
  Event last;
  last.final = true;
  last.finish_reason = "stop";
  chunks = ChatChunks(last, 1, h, &state, nullptr, false);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0]["choices"][0]["finish_reason"], "tool_calls");

  Completion c;
  c.text = "";
  c.reasoning = "hmm";
  c.tool_calls = {call.tool_call};
  c.finish_reason = "stop";
  c.usage = {10, 4, 8};
  const nlohmann::json body = ChatCompletionBody({c}, h, nullptr, false);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(body["choices"][0]["message"]["reasoning_content"], "hmm");
  EXPECT_EQ(body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_TRUE(body["choices"][0]["message"]["refusal"].is_null());
  EXPECT_EQ(body["usage"]["total_tokens"], 14);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
}

}  // namespace
}  // namespace gemma_local::server
