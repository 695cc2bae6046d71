// Constrained requests through the engine: every finished output is a valid value of its
// constraint (JSON Schema, any JSON, regex, choice), greedy and sampled, alone and beside other
// requests (same tokens either way), with `n` samples; refusals at Submit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "gemma_local/engine.h"
#include "runtime/runtime_test_support.h"

namespace gemma_local {
namespace {

std::unique_ptr<Engine> OpenTiny() {
  EngineOptions options;
  options.threads = 2;
  Result<std::unique_ptr<Engine>> e = Engine::Open(testing::PresetModelPath("tiny"), options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(*e);
}

// Bounded in every dimension, so any path through it ends within max_tokens.
const char* kSchema = R"({"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 6},
    "n": {"type": "integer", "minimum": 0, "maximum": 99},
    "ok": {"type": "boolean"},
    "tags": {"type": "array", "maxItems": 3, "items": {"enum": ["a", "b\"c"]}},
    "when": {"type": "string", "format": "date"}},
  "required": ["name", "n", "ok", "tags", "when"], "additionalProperties": false})";

Request Constrained(Constraint c, float temperature = 0, uint64_t seed = 0) {
  Request r;
  r.input = RequestInput::Tokens({2, 10, 11, 12});
  r.max_tokens = 300;
  r.constraint = std::move(c);
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

void ExpectValidJson(const Completion& c) {
  ASSERT_TRUE(c.constraint.has_value());
  EXPECT_EQ(c.finish_reason, "stop") << c.text;
  EXPECT_TRUE(c.constraint->complete) << c.text;
  EXPECT_TRUE(c.constraint->valid) << c.text;
  EXPECT_TRUE(c.constraint->violations.empty()) << c.text;
  EXPECT_TRUE(nlohmann::json::accept(c.text)) << c.text;
}

TEST(Constrained, SchemaGreedyAndSampledOutputsAreValid) {
  std::unique_ptr<Engine> engine = OpenTiny();
  const Constraint schema = Constraint::JsonSchema(nlohmann::ordered_json::parse(kSchema));
  for (int seed = 0; seed < 4; ++seed) {
    Result<Completion> c = engine->Generate(Constrained(schema, seed == 0 ? 0.0f : 1.0f, seed));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ExpectValidJson(*c);
    const nlohmann::json v = nlohmann::json::parse(c->text);
    EXPECT_EQ(v.size(), 5u) << c->text;
    EXPECT_LE(v["n"].get<int>(), 99);
  }
  Result<Completion> any = engine->Generate(Constrained(Constraint::AnyJson(), 1.0f, 5));
  ASSERT_TRUE(any.ok());
  if (any->finish_reason == "stop") ExpectValidJson(*any);
}

// Always complete: with unbounded strings, arrays and extra keys, a random model would ramble
// past any budget; the steering ends every value within max_tokens.
TEST(Constrained, EveryValueCompletesWithinItsBudget) {
  std::unique_ptr<Engine> engine = OpenTiny();
  const Constraint open = Constraint::JsonSchema(nlohmann::ordered_json::parse(R"({
      "type": "object", "required": ["title", "items"], "additionalProperties": true,
      "properties": {"title": {"type": "string", "minLength": 3},
                     "items": {"type": "array", "minItems": 2, "items": {"type": "string"}}}})"));
  for (int64_t budget : {31, 40, 64}) {  // the shortest value has 31 bytes
    for (int seed = 0; seed < 4; ++seed) {
      Request r = Constrained(open, 1.0f, seed);
      r.max_tokens = budget;
      Result<Completion> c = engine->Generate(r);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      ExpectValidJson(*c);
      EXPECT_LE(c->usage.completion_tokens, budget);
      Request any = Constrained(Constraint::AnyJson(), 1.0f, seed);
      any.max_tokens = budget;
      Result<Completion> a = engine->Generate(any);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      ExpectValidJson(*a);
    }
  }
  // One token can raise the shortest completion a lot (choosing the optional key "a" commits to
  // 40 more characters): such a token is struck out when it would not fit.
  const Constraint jump = Constraint::JsonSchema(nlohmann::ordered_json::parse(
      R"({"type": "object", "properties": {"a": {"type": "string", "minLength": 40}}})"));
  for (int seed = 0; seed < 6; ++seed) {
    Request r = Constrained(jump, 1.0f, seed);
    r.max_tokens = 30;
    Result<Completion> c = engine->Generate(r);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ExpectValidJson(*c);
  }
  Request too_short = Constrained(open);
  too_short.max_tokens = 5;
  Result<std::unique_ptr<RequestHandle>> refused = engine->Submit(too_short);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shortest value takes up to"), std::string::npos)
      << refused.status().message();
}

TEST(Constrained, RegexAndChoice) {
  std::unique_ptr<Engine> engine = OpenTiny();
  for (int seed = 0; seed < 3; ++seed) {
    Result<Completion> r =
        engine->Generate(Constrained(Constraint::Regex("[a-z]{3}-[0-9]{2}"), 1.0f, seed));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(std::regex_match(r->text, std::regex("[a-z]{3}-[0-9]{2}"))) << r->text;
    EXPECT_TRUE(r->constraint->valid);
    Result<Completion> c =
        engine->Generate(Constrained(Constraint::Choice({"yes", "no", "maybe"}), 1.0f, seed));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->text == "yes" || c->text == "no" || c->text == "maybe") << c->text;
  }
}

TEST(Constrained, SameTokensAloneAndInABatchAndWithSamples) {
  std::unique_ptr<Engine> engine = OpenTiny();
  const Constraint schema = Constraint::JsonSchema(nlohmann::ordered_json::parse(kSchema));
  Result<Completion> alone = engine->Generate(Constrained(schema, 1.0f, 42));
  ASSERT_TRUE(alone.ok());
  std::vector<std::unique_ptr<RequestHandle>> others;
  for (int i = 0; i < 4; ++i) {
    Request plain;
    plain.input = RequestInput::Tokens({2, 20 + i});
    plain.max_tokens = 40;
    Result<std::unique_ptr<RequestHandle>> a = engine->Submit(plain);
    Result<std::unique_ptr<RequestHandle>> b = engine->Submit(Constrained(schema, 1.0f, 100 + i));
    ASSERT_TRUE(a.ok() && b.ok());
    others.push_back(std::move(*a));
    others.push_back(std::move(*b));
  }
  Result<std::unique_ptr<RequestHandle>> mine = engine->Submit(Constrained(schema, 1.0f, 42));
  ASSERT_TRUE(mine.ok());
  Result<Completion> batched = (*mine)->Wait();
  ASSERT_TRUE(batched.ok());
  EXPECT_EQ(batched->tokens, alone->tokens);
  for (auto& h : others) {
    Result<Completion> c = h->Wait();
    ASSERT_TRUE(c.ok());
    if (c->constraint) ExpectValidJson(*c);
  }
  Result<std::vector<std::unique_ptr<RequestHandle>>> samples =
      engine->SubmitSamples(Constrained(schema, 1.0f, 7), 3);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  for (auto& h : *samples) {
    Result<Completion> c = h->Wait();
    ASSERT_TRUE(c.ok());
    ExpectValidJson(*c);
  }
}

TEST(Constrained, RefusedAtSubmit) {
  std::unique_ptr<Engine> engine = OpenTiny();
  Request with_stop = Constrained(Constraint::AnyJson());
  with_stop.stop = {"}"};
  EXPECT_EQ(engine->Submit(with_stop).status().code(), StatusCode::kInvalidArgument);
  Result<std::unique_ptr<RequestHandle>> unsupported =
      engine->Submit(Constrained(Constraint::JsonSchema(nlohmann::ordered_json::parse(
          R"({"type": "object", "properties": {"a": {"type": "string", "format": "hostname"}}})"))));
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(unsupported.status().message().find("\"/properties/a\""), std::string::npos)
      << unsupported.status().message();
  Result<Completion> lenient = engine->Generate(Constrained(Constraint::JsonSchema(
      nlohmann::ordered_json::parse(R"({"type": "boolean", "x-unknown": 1, "frobnicate": 2})"),
      /*best_effort=*/true)));
  ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
  ASSERT_EQ(lenient->constraint->not_enforced.size(), 1u);
  EXPECT_EQ(lenient->constraint->not_enforced[0].keyword, "frobnicate");
  EXPECT_TRUE(lenient->text == "true" || lenient->text == "false") << lenient->text;
  Request thinking = Constrained(Constraint::AnyJson());
  ChatInput chat;
  chat.messages.push_back({{"role", "user"}, {"content", "hi"}});
  chat.enable_thinking = true;
  thinking.input = RequestInput::Chat(chat);
  EXPECT_EQ(engine->Submit(thinking).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gemma_local
