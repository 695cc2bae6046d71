// `gemma-local serve` against hostile and careless clients: each case gets its documented status
// and OpenAI-shaped error (docs/server.md), including the two CVE patterns of other servers (an
// unbounded `n` exhausting memory; a route that skipped the API-key check), a full queue (429 with
// Retry-After), a slow client (disconnected at the read timeout), a vanished client (its request
// cancelled), and the server still healthy afterwards.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.h"
#include "e2e/serve_support.h"

namespace gemma_local {
namespace {

using namespace serve_test;  // NOLINT: the test helpers

constexpr char kKey[] = "sk-test-0123456789";
const std::string kAuth = std::string("Authorization: Bearer ") + kKey;

class ServeHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CommandResult made =
        testing::RunCommand(Bin() + " dev make-model --out " + dir_.path() + " --preset tiny");
    ASSERT_EQ(made.exit_code, 0) << made.err;
    testing::WriteFile(dir_.File("keys"), "# test keys\n\n" + std::string(kKey) + "\n");
  }
  std::string Model() { return "--model " + dir_.File("model.gguf") + " --port 0 --threads 2"; }
  testing::TempDir dir_;
};

std::string ErrorCode(const HttpResult& r) {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) {
    return "<not an OpenAI error: " + r.body.substr(0, 300) + ">";
  }
  EXPECT_TRUE(j["error"]["message"].is_string() && j["error"]["type"].is_string() &&
              j["error"].contains("param") && j["error"].contains("code"))
      << r.body;
  return j["error"]["code"].is_string() ? j["error"]["code"].get<std::string>() : "";
}

std::string Chat(const std::string& extra) {
  return R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2)" + extra + "}";
}

TEST_F(ServeHostile, EachHostileRequestGetsItsDocumentedStatus) {
  ServeProcess serve(Model() + " --api-key-file " + dir_.File("keys") +
                     " --max-context 256 --max-body-bytes 65536 --max-messages 8 --max-n 4 "
                     "--max-string-bytes 4096 --max-json-depth 16");
  ASSERT_TRUE(serve.ready()) << serve.output();
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  const std::string many_messages = [] {
    std::string m = R"({"messages":[)";
    for (int i = 0; i < 9; ++i) m += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
    return m + "]}";
  }();
  struct Case {
    std::string name, method, path, body;
    bool with_key;
    int status;
    std::string code;   // the error's code ("" = success)
    std::string param;  // the error's param, when it names one
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v1/chat/completions", "{\"messages\": [", true, 400,
       "invalid_json", ""},
      {"invalid UTF-8", "POST", "/v1/chat/completions",
       "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", true, 400, "invalid_json",
       ""},
      {"not an object", "POST", "/v1/chat/completions", "[1,2]", true, 400, "invalid_request",
       "body"},
      {"wrong type", "POST", "/v1/chat/completions", Chat(R"(,"temperature":"hot")"), true, 400,
       "invalid_temperature", "temperature"},
      {"out of range", "POST", "/v1/chat/completions", Chat(R"(,"top_p":7)"), true, 400,
       "invalid_top_p", "top_p"},
      {"huge float for an int", "POST", "/v1/chat/completions", Chat(R"(,"top_k":1e300)"), true,
       400, "invalid_top_k", "top_k"},
      {"unbounded n (CVE pattern)", "POST", "/v1/chat/completions", Chat(R"(,"n":100000000)"), true,
       400, "invalid_n", "n"},
      {"n over the limit", "POST", "/v1/chat/completions", Chat(R"(,"n":5)"), true, 400,
       "invalid_n", "n"},
      {"unknown model", "POST", "/v1/chat/completions", Chat(R"(,"model":"gpt-4o")"), true, 404,
       "model_not_found", "model"},
      {"max_tokens beyond the context", "POST", "/v1/chat/completions",
       Chat(R"(,"max_tokens":100000)"), true, 400, "context_length_exceeded", "max_tokens"},
      {"prompt beyond the context", "POST", "/v1/completions",
       R"({"prompt":")" + std::string(3000, 'a') + R"(","max_tokens":1})", true, 400,
       "context_length_exceeded", "prompt"},
      {"too many messages", "POST", "/v1/chat/completions", many_messages, true, 400,
       "too_many_messages", "messages"},
      {"nested too deep", "POST", "/v1/chat/completions", deep, true, 400, "json_too_deep", ""},
      {"string too long", "POST", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":")" + std::string(5000, 'a') + R"("}]})", true, 400,
       "string_too_long", ""},
      {"body too large", "POST", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"hi"}],"pad":")" + std::string(70000, 'a') + "\"}",
       true, 413, "body_too_large", ""},
      {"json_schema with a keyword the engine cannot enforce", "POST", "/v1/chat/completions",
       Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":)"
            R"({"type":"object","unevaluatedProperties":false}}})"),
       true, 400, "unsupported", "response_format"},
      {"json_schema without a schema", "POST", "/v1/chat/completions",
       Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x"}})"), true, 400,
       "invalid_response_format", "response_format"},
      {"json_schema that is not JSON Schema", "POST", "/v1/chat/completions",
       Chat(R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":5}}})"),
       true, 400, "invalid_request", "response_format"},
      {"forced tool choice", "POST", "/v1/chat/completions", Chat(R"(,"tool_choice":"required")"),
       true, 400, "unsupported", "tool_choice"},
      {"too many stop strings", "POST", "/v1/chat/completions",
       Chat(R"(,"stop":["a","b","c","d","e"])"), true, 400, "invalid_stop", "stop"},
      {"bad message", "POST", "/v1/chat/completions", R"({"messages":[{"role":5}]})", true, 400,
       "invalid_request", "messages[0].role"},
      {"bad content", "POST", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":5}]})", true, 400, "invalid_request",
       "messages[0].content"},
      {"POST without a length", "POST", "/v1/chat/completions", "", true, 411, "length_required",
       ""},
      {"token id out of range", "POST", "/v1/completions",
       R"({"prompt":[1,2,99999999],"max_tokens":1})", true, 400, "invalid_request", ""},
      {"detokenize garbage", "POST", "/detokenize", R"({"tokens":["a"]})", true, 400,
       "invalid_tokens", "tokens"},
      {"unknown route", "GET", "/v1/nothing", "", true, 404, "not_found", ""},
      {"unknown route without a key", "GET", "/v1/nothing", "", false, 401, "invalid_api_key", ""},
      {"good request", "POST", "/v1/chat/completions", Chat(""), true, 200, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    HttpResult r = Http(serve.port(), c.method, c.path, c.body,
                        c.with_key ? std::vector<std::string>{kAuth} : std::vector<std::string>{});
    EXPECT_EQ(r.status, c.status) << r.body.substr(0, 400);
    if (!c.code.empty()) {
      EXPECT_EQ(ErrorCode(r), c.code) << r.body.substr(0, 400);
      if (!c.param.empty()) {
        EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["param"], c.param) << r.body;
      }
    }
    EXPECT_NE(r.headers.find("X-Request-Id: req-"), std::string::npos) << r.headers;
  }
  EXPECT_EQ(Get(serve.port(), "/health").status, 200) << "still healthy";
  EXPECT_EQ(serve.Stop(), 0) << serve.output();
}

// The CVE pattern of a route that skipped the key check: every route but /health and the static
// page refuses a missing, wrong or malformed key with 401, whatever the method and body; the
// right key opens each one.
TEST_F(ServeHostile, EveryRouteButHealthAndThePageChecksTheKey) {
  ServeProcess serve(Model() + " --api-key-file " + dir_.File("keys"));
  ASSERT_TRUE(serve.ready()) << serve.output();
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/v1/models"},           {"GET", "/metrics"},      {"POST", "/v1/chat/completions"},
      {"POST", "/v1/completions"},     {"POST", "/tokenize"},    {"POST", "/detokenize"},
      {"GET", "/v1/chat/completions"}, {"DELETE", "/v1/models"}, {"GET", "/admin"},
      {"POST", "/health/../v1/models"}};
  const std::vector<std::vector<std::string>> bad_keys = {
      {},
      {"Authorization: Bearer wrong"},
      {"Authorization: Bearer " + std::string(kKey) + "x"},
      {"Authorization: bearer " + std::string(kKey)},
      {"Authorization: " + std::string(kKey)},
      {"Authorization: Basic c2stdGVzdA=="}};
  for (const auto& [method, path] : routes) {
    for (const auto& headers : bad_keys) {
      SCOPED_TRACE(method + " " + path + (headers.empty() ? " no key" : " " + headers[0]));
      HttpResult r = Http(serve.port(), method, path, method == "POST" ? Chat("") : "", headers);
      EXPECT_EQ(r.status, 401) << r.body;
      EXPECT_EQ(ErrorCode(r), "invalid_api_key");
    }
  }
  const std::vector<std::pair<std::string, std::string>> open = {
      {"/v1/models", ""},
      {"/metrics", ""},
      {"/v1/chat/completions", Chat("")},
      {"/v1/completions", R"({"prompt":"hi","max_tokens":1})"},
      {"/tokenize", R"({"content":"hi"})"},
      {"/detokenize", R"({"tokens":[5]})"}};
  for (const auto& [path, body] : open) {
    HttpResult r = Http(serve.port(), body.empty() ? "GET" : "POST", path, body, {kAuth});
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
  }
  EXPECT_EQ(Get(serve.port(), "/health").status, 200);
  EXPECT_EQ(Get(serve.port(), "/").status, 200) << "the static page needs no key";
  EXPECT_EQ(serve.Stop(), 0);
}

TEST_F(ServeHostile, ANonLoopbackAddressWithoutKeysRefusesToStart) {
  ServeProcess open_to_all(Model() + " --host 0.0.0.0");
  EXPECT_FALSE(open_to_all.ready());
  EXPECT_NE(open_to_all.Stop(), 0);
  EXPECT_NE(open_to_all.output().find("API keys"), std::string::npos) << open_to_all.output();
  ServeProcess with_key(Model() + " --host 0.0.0.0", std::string("GEMMA_LOCAL_API_KEY=") + kKey);
  ASSERT_TRUE(with_key.ready()) << with_key.output();
  EXPECT_EQ(Http(with_key.port(), "GET", "/v1/models", "", {kAuth}).status, 200);
  EXPECT_EQ(with_key.Stop(), 0);
}

// A full queue answers 429 with Retry-After (clients back off and retry), and the server is fine
// afterwards: the accepted requests (here given up by their clients) leave nothing running.
TEST_F(ServeHostile, AFullQueueAnswers429WithRetryAfter) {
  // Long generations (a tiny model makes thousands of tokens a second).
  ServeProcess serve(Model() + " --parallel 1 --queue-size 1 --max-context 40000");
  ASSERT_TRUE(serve.ready()) << serve.output();
  const std::string slow = Chat(R"(,"max_tokens":30000,"ignore_eos":true,"stream":true)");
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] { Http(serve.port(), "POST", "/v1/chat/completions", slow, {}, 3); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // running, then queued
  }
  HttpResult refused = Post(serve.port(), "/v1/chat/completions", slow);
  EXPECT_EQ(refused.status, 429) << refused.body.substr(0, 300);
  EXPECT_EQ(ErrorCode(refused), "over_capacity");
  EXPECT_NE(refused.headers.find("Retry-After: 1"), std::string::npos) << refused.headers;
  for (std::thread& t : clients) t.join();
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = Get(serve.port(), "/metrics").body;
    if (metrics.find("gemma_local_requests_running 0\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(metrics.find("gemma_local_requests_running 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("gemma_local_requests_queued 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(Get(serve.port(), "/health").status, 200);
  EXPECT_EQ(serve.Stop(), 0);
}

// Slow-loris: a client that sends half a request is disconnected at the read timeout, and the
// server answers others meanwhile.
TEST_F(ServeHostile, ASlowClientIsDisconnectedAtTheReadTimeout) {
  ServeProcess serve(Model() + " --read-timeout 1");
  ASSERT_TRUE(serve.ready()) << serve.output();
  const auto start = std::chrono::steady_clock::now();
  // bash's /dev/tcp: send a request line and one header, then wait for the server to close.
  testing::CommandResult r = testing::RunCommand(
      "timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(serve.port()) +
      "; printf \"POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\n\" >&3; cat <&3 "
      ">/dev/null'");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 124) << "the server kept the slow connection open";
  EXPECT_LT(seconds, 10.0);
  EXPECT_EQ(Get(serve.port(), "/health").status, 200);
  EXPECT_EQ(serve.Stop(), 0);
}

// A client that goes away mid-reply (streamed or not) cancels its request: the engine stops
// generating for it, and /metrics comes back to nothing running and no KV blocks held.
TEST_F(ServeHostile, AVanishedClientCancelsItsRequest) {
  ServeProcess serve(Model() + " --max-context 100000");
  ASSERT_TRUE(serve.ready()) << serve.output();
  for (const std::string stream : {"false", "true"}) {
    SCOPED_TRACE("stream " + stream);
    const std::string body = Chat(R"(,"max_tokens":90000,"ignore_eos":true,"stream":)" + stream);
    // curl gives up after 1 s, long before the reply ends.
    HttpResult r = Http(serve.port(), "POST", "/v1/chat/completions", body, {}, /*timeout_s=*/1);
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
    EXPECT_EQ(r.body.find("\"usage\""), std::string::npos);
  }
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = Get(serve.port(), "/metrics").body;
    if (metrics.find("gemma_local_requests_running 0\n") != std::string::npos &&
        metrics.find("gemma_local_kv_cache_blocks_in_use 0\n") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(metrics.find("gemma_local_requests_running 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("gemma_local_kv_cache_blocks_in_use 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("gemma_local_requests_finished_total{outcome=\"cancelled\"} 2\n"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(serve.Stop(), 0);
}

// The body limit holds whatever the framing: a chunked body and a gzip-compressed one (a "zip
// bomb") over --max-body-bytes get 413 like a Content-Length one, and the same keep-alive
// connection then serves the next request correctly (the rest of the body was read and dropped).
TEST_F(ServeHostile, TheBodyLimitHoldsForChunkedAndCompressedBodies) {
  ServeProcess serve(Model() + " --max-body-bytes 65536");
  ASSERT_TRUE(serve.ready()) << serve.output();
  const std::string big = R"({"messages":[{"role":"user","content":")" + std::string(400000, 'a') +
                          R"("}],"max_tokens":2})";
  testing::WriteFile(dir_.File("big.json"), big);
  testing::WriteFile(dir_.File("small.json"), Chat(""));
  testing::CommandResult gz =
      testing::RunCommand("gzip -k -f " + dir_.File("big.json"));  // writes big.json.gz
  ASSERT_EQ(gz.exit_code, 0);
  const std::string url =
      " http://127.0.0.1:" + std::to_string(serve.port()) + "/v1/chat/completions";
  for (const std::string& framing :
       {std::string("-H 'Transfer-Encoding: chunked' --data-binary @") + dir_.File("big.json"),
        std::string("-H 'Content-Encoding: gzip' --data-binary @") + dir_.File("big.json.gz")}) {
    SCOPED_TRACE(framing);
    // Two requests on one connection (curl --next reuses it): the oversized one, then a good one.
    testing::CommandResult r = testing::RunCommand(
        "curl -s -m 30 -w '\n%{http_code} %{num_connects}\n' -H 'Content-Type: application/json' " +
        framing + url +
        " --next -s -m 30 -w '\n%{http_code} %{num_connects}\n' "
        "-H 'Content-Type: application/json' --data-binary @" +
        dir_.File("small.json") + url);
    EXPECT_NE(r.out.find("body_too_large"), std::string::npos) << r.out.substr(0, 400);
    EXPECT_NE(r.out.find("\n413 1\n"), std::string::npos) << r.out.substr(0, 400);
    EXPECT_NE(r.out.find("\n200 0\n"), std::string::npos)
        << "the next request, on the same connection: " << r.out.substr(0, 400);
  }
  EXPECT_EQ(serve.Stop(), 0);
}

// SIGTERM with a long reply in flight: the server stops promptly (the reply ends with a
// shutting_down error event rather than running to its end) and exits 0.
TEST_F(ServeHostile, SigtermEndsRepliesInFlightPromptly) {
  ServeProcess serve(Model() + " --max-context 100000");
  ASSERT_TRUE(serve.ready()) << serve.output();
  HttpResult streamed;
  std::thread client([&] {
    streamed = Post(serve.port(), "/v1/chat/completions",
                    Chat(R"(,"max_tokens":90000,"ignore_eos":true,"stream":true)"));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(serve.Stop(), 0) << serve.output();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  client.join();
  EXPECT_NE(streamed.body.find("shutting_down"), std::string::npos) << streamed.body.substr(0, 300);
  EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos);
}

}  // namespace
}  // namespace gemma_local
