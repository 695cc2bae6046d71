// The server in process under concurrent clients (also built with ThreadSanitizer by
// scripts/test.sh): many connections at once, streamed and not, /metrics scraped meanwhile, each
// reply equal to the same request answered alone, every request audited, nothing left running.
#include <httplib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.h"
#include "gemma_local/engine.h"
#include "gemma_local/server.h"
#include "runtime/runtime_test_support.h"

namespace gemma_local {
namespace {

std::string ChatBody(int i, bool stream) {
  nlohmann::json body = {
      {"messages", {{{"role", "user"}, {"content", "question " + std::to_string(i % 3)}}}},
      {"max_tokens", 8},
      {"temperature", 0},
      {"stream", stream}};
  return body.dump();
}

// The content of a reply, streamed or not.
std::string Content(const std::string& body, bool stream) {
  if (!stream) {
    return nlohmann::json::parse(body)["choices"][0]["message"]["content"].get<std::string>();
  }
  std::string text;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    const std::string payload = body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (payload == "[DONE]") break;
    const nlohmann::json chunk = nlohmann::json::parse(payload);
    if (chunk["choices"].empty()) continue;
    const nlohmann::json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  return text;
}

TEST(ServerConcurrency, ManyClientsGetTheRepliesTheyWouldGetAlone) {
  testing::TempDir dir;
  ServerOptions options;
  options.port = 0;
  options.model_id = "tiny";
  options.audit_log_path = dir.File("audit.jsonl");
  options.api_keys = {"k1", "k2"};
  options.model_path = testing::PresetModelPath("tiny");  // hashed for the audit log
  Result<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EngineOptions eo;
  eo.threads = 2;
  Result<std::unique_ptr<Engine>> engine =
      Engine::Open(testing::PresetModelPath("tiny"), eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  (*server)->SetEngine(std::move(*engine));
  const int port = (*server)->port();
  const httplib::Headers auth = {{"Authorization", "Bearer k1"}};

  // Each distinct prompt answered alone first.
  std::vector<std::string> alone(3);
  {
    httplib::Client client("127.0.0.1", port);
    for (int i = 0; i < 3; ++i) {
      auto res = client.Post("/v1/chat/completions", auth, ChatBody(i, false), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      alone[i] = Content(res->body, false);
    }
  }

  constexpr int kClients = 8;
  constexpr int kPerClient = 6;
  std::atomic<int> mismatches{0}, failures{0};
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    httplib::Client client("127.0.0.1", port);
    client.set_default_headers({{"Authorization", "Bearer k2"}});
    while (!done) {
      auto res = client.Get("/metrics");
      if (!res || res->status != 200) ++failures;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      for (int r = 0; r < kPerClient; ++r) {
        const int i = c * kPerClient + r;
        const bool stream = i % 2 == 1;
        auto res =
            client.Post("/v1/chat/completions", auth, ChatBody(i, stream), "application/json");
        if (!res || res->status != 200) {
          ++failures;
          continue;
        }
        if (Content(res->body, stream) != alone[i % 3]) ++mismatches;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  done = true;
  scraper.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(mismatches, 0) << "a reply depended on what ran beside it";

  httplib::Client client("127.0.0.1", port);
  auto metrics = client.Get("/metrics", auth);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("gemma_local_requests_running 0\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("gemma_local_kv_cache_blocks_in_use 0\n"), std::string::npos);
  (*server)->Stop();
  (*server)->Wait();
  server->reset();  // the audit log is flushed per line; closed here

  // The audit log's model hash is the file's SHA-256 (computed in the background: the last lines
  // have it).
  testing::CommandResult sum = testing::RunCommand("sha256sum " + options.model_path);
  ASSERT_EQ(sum.exit_code, 0);
  const std::string want_sha = sum.out.substr(0, 64);
  std::ifstream audit(dir.File("audit.jsonl"));
  int chat_lines = 0;
  std::string line, last_sha;
  while (std::getline(audit, line)) {
    const nlohmann::json entry = nlohmann::json::parse(line);
    EXPECT_FALSE(entry.contains("input")) << "no text without audit_text";
    last_sha = entry["model_sha256"].get<std::string>();
    if (entry["route"] == "POST /v1/chat/completions") {
      ++chat_lines;
      EXPECT_EQ(entry["status"], 200);
      EXPECT_EQ(entry["key_id"].get<std::string>().size(), 12u);
      EXPECT_EQ(entry["completion_tokens"], 8);
    }
  }
  EXPECT_EQ(chat_lines, 3 + kClients * kPerClient);
  EXPECT_EQ(last_sha, want_sha);
}

// audit_text: the audit line also holds the request's messages and the reply's text.
TEST(ServerAudit, TextOnlyWhenSwitchedOn) {
  testing::TempDir dir;
  ServerOptions options;
  options.port = 0;
  options.model_id = "tiny";
  options.audit_log_path = dir.File("audit.jsonl");
  options.audit_text = true;
  Result<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EngineOptions eo;
  eo.threads = 2;
  Result<std::unique_ptr<Engine>> engine = Engine::Open(testing::PresetModelPath("tiny"), eo);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  (*server)->SetEngine(std::move(*engine));
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Post("/v1/chat/completions", ChatBody(0, false), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string reply = Content(res->body, false);
  (*server)->Stop();
  (*server)->Wait();
  server->reset();
  std::ifstream audit(dir.File("audit.jsonl"));
  std::string line;
  ASSERT_TRUE(std::getline(audit, line));
  const nlohmann::json entry = nlohmann::json::parse(line);
  EXPECT_EQ(entry["input"][0]["content"], "question 0");
  EXPECT_EQ(entry["output"][0], reply);
  EXPECT_TRUE(entry["key_id"].is_null()) << "no keys configured";
}

}  // namespace
}  // namespace gemma_local
