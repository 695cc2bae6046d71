// `gemma-local serve` as a user runs it: a real process on a loopback port (chosen by the OS),
// probed with curl. Work in progress (issue 14): /health, /v1/models, OpenAI-shaped 404s and a
// graceful SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/test_support.h"

namespace gemma_local {
namespace {

using testing::RunCommand;
using testing::TempDir;

std::string Bin() { return testing::BinaryPath(); }

// A running `serve`: its pid and the port it printed. The process is stopped on destruction.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& args) {
    // popen's shell prints its pid and execs serve, which keeps it (a child of this process).
    pipe_ = popen(("echo $$; exec " + Bin() + " serve " + args + " 2>&1").c_str(), "r");
    if (pipe_ == nullptr) return;
    char line[512];
    while (std::fgets(line, sizeof line, pipe_) != nullptr) {
      const std::string l(line);
      if (pid_ == 0) {
        pid_ = std::stoi(l);
      } else if (l.rfind("listening on http://", 0) == 0) {
        port_ = std::stoi(l.substr(l.rfind(':') + 1));
      } else if (l.rfind("ready", 0) == 0) {
        ready_ = true;
        break;
      } else {
        output_ += l;
      }
    }
  }
  ~ServeProcess() { Stop(); }

  // SIGTERM, then the exit status (-1 if it did not exit within 10 s; then SIGKILL).
  int Stop() {
    if (pipe_ == nullptr) return exit_code_;
    if (pid_ > 0) kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; ++i) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (r < 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (exit_code_ == -1 && pid_ > 0) kill(pid_, SIGKILL);
    const int closed = pclose(pipe_);
    if (exit_code_ == -1 && closed >= 0 && WIFEXITED(closed)) exit_code_ = WEXITSTATUS(closed);
    pipe_ = nullptr;
    return exit_code_;
  }

  int port() const { return port_; }
  bool ready() const { return ready_; }
  const std::string& output() const { return output_; }

 private:
  FILE* pipe_ = nullptr;
  int pid_ = 0;
  int port_ = 0;
  bool ready_ = false;
  int exit_code_ = -1;
  std::string output_;
};

// curl's body and HTTP status ("BODY\nSTATUS").
struct HttpResult {
  int status = 0;
  std::string body;
};
HttpResult Get(int port, const std::string& path) {
  testing::CommandResult r = RunCommand(
      "curl -s -m 10 -w '\\n%{http_code}' http://127.0.0.1:" + std::to_string(port) + path);
  HttpResult h;
  const size_t nl = r.out.rfind('\n');
  if (nl == std::string::npos) return h;
  h.body = r.out.substr(0, nl);
  h.status = std::atoi(r.out.c_str() + nl + 1);
  return h;
}

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
