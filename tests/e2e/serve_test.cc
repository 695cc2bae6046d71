// `gemma-local serve` as a user runs it: a real process on a loopback port (chosen by the OS),
// probed with curl: /health, /v1/models, OpenAI-shaped 404s, chat completions streamed and not, a
// graceful SIGTERM, load and bind failures. Hostile clients: serve_hostile_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/test_support.h"
#include "e2e/serve_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;
using namespace serve_test;  // NOLINT: the test helpers

class Serve : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CommandResult made =
        RunCommand(Bin() + " dev make-model --out " + dir_.path() + " --preset tiny");
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  TempDir dir_;
};

TEST_F(Serve, AnswersHealthAndModelsAndStopsOnSigterm) {
  ServeProcess serve("--model " + dir_.File("model.gguf") + " --port 0 --threads 2");
  ASSERT_TRUE(serve.ready()) << serve.output();
  ASSERT_GT(serve.port(), 0);
  HttpResult health = Get(serve.port(), "/health");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(nlohmann::json::parse(health.body)["status"], "ok");
  HttpResult models = Get(serve.port(), "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  nlohmann::json m = nlohmann::json::parse(models.body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "model.gguf");
  HttpResult missing = Get(serve.port(), "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"]["code"], "not_found") << missing.body;
  EXPECT_EQ(serve.Stop(), 0) << "SIGTERM is a graceful stop";
}

// Non-streaming chat completions: OpenAI's response shape and usage; bad fields get 400 naming
// them, bad JSON 400, in OpenAI's error shape.
TEST_F(Serve, ChatCompletionsAnswersInOpenAisShapeAndNamesBadFields) {
  ServeProcess serve("--model " + dir_.File("model.gguf") + " --port 0 --threads 2");
  ASSERT_TRUE(serve.ready()) << serve.output();
  HttpResult ok = Post(serve.port(), "/v1/chat/completions",
                       R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4,)"
                       R"("temperature":0,"unknown_field":1})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  nlohmann::json j = nlohmann::json::parse(ok.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int>() + j["usage"]["prompt_tokens"].get<int>(),
            j["usage"]["total_tokens"].get<int>());
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"messages":[{"role":"user","content":"hi"}],"temperature":"hot"})", "temperature"},
           {R"({"messages":[]})", "messages"},
           {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":0})", "max_tokens"},
           {R"({"messages":[{"role":"user","content":"hi"}],"stop":5})", "stop"}}) {
    HttpResult bad = Post(serve.port(), "/v1/chat/completions", body);
    EXPECT_EQ(bad.status, 400) << body << ": " << bad.body;
    EXPECT_EQ(nlohmann::json::parse(bad.body)["error"]["param"], field) << bad.body;
  }
  HttpResult not_json = Post(serve.port(), "/v1/chat/completions", "{bad");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(nlohmann::json::parse(not_json.body)["error"]["code"], "invalid_json");
  EXPECT_EQ(serve.Stop(), 0);
}

// stream: server-sent chat.completion.chunk objects whose content adds up to the non-streamed
// reply (greedy), the role on the first chunk, a finish_reason, the usage chunk on request, and
// "data: [DONE]" last.
TEST_F(Serve, StreamedChunksAddUpToTheReply) {
  ServeProcess serve("--model " + dir_.File("model.gguf") + " --port 0 --threads 2");
  ASSERT_TRUE(serve.ready()) << serve.output();
  const std::string request = R"({"messages":[{"role":"user","content":"hello"}],"max_tokens":6,)"
                              R"("temperature":0)";
  HttpResult whole = Post(serve.port(), "/v1/chat/completions", request + "}");
  ASSERT_EQ(whole.status, 200) << whole.body;
  const std::string want =
      nlohmann::json::parse(whole.body)["choices"][0]["message"]["content"].get<std::string>();
  HttpResult streamed =
      Post(serve.port(), "/v1/chat/completions",
           request + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  std::string got, finish;
  bool role = false, usage = false, done = false;
  size_t pos = 0;
  while ((pos = streamed.body.find("data: ", pos)) != std::string::npos) {
    const size_t end = streamed.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << streamed.body;
    const std::string payload = streamed.body.substr(pos + 6, end - pos - 6);
    pos = end;
    ASSERT_FALSE(done) << "data after [DONE]";
    if (payload == "[DONE]") {
      done = true;
      continue;
    }
    nlohmann::json chunk = nlohmann::json::parse(payload);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    if (chunk.contains("usage")) {
      usage = true;
      EXPECT_EQ(chunk["usage"]["completion_tokens"], 6);
      continue;
    }
    const nlohmann::json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("role")) role = true;
    if (delta.contains("content")) got += delta["content"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) {
      finish = chunk["choices"][0]["finish_reason"].get<std::string>();
    }
  }
  EXPECT_TRUE(role && usage && done) << streamed.body;
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(got, want);
  EXPECT_EQ(serve.Stop(), 0);
}

TEST_F(Serve, AModelThatCannotLoadExitsOneAndAPortInUseIsNamed) {
  ServeProcess bad("--model " + dir_.File("missing.gguf") + " --port 0");
  EXPECT_FALSE(bad.ready());
  EXPECT_NE(bad.output().find("missing.gguf"), std::string::npos) << bad.output();
  EXPECT_EQ(bad.Stop(), 1);

  ServeProcess first("--model " + dir_.File("model.gguf") + " --port 0 --threads 1");
  ASSERT_TRUE(first.ready()) << first.output();
  ServeProcess second("--model " + dir_.File("model.gguf") + " --port " +
                      std::to_string(first.port()));
  EXPECT_FALSE(second.ready());
  EXPECT_NE(second.output().find(std::to_string(first.port())), std::string::npos)
      << second.output();
  EXPECT_EQ(second.Stop(), 1);
}

}  // namespace
}  // namespace gemma_local
