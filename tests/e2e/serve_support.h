// Helpers for the `gemma-local serve` end-to-end tests: the server as a real process on a
// loopback port chosen by the OS, and HTTP requests made with curl (a real client, real sockets).
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.h"

namespace gemma_local::serve_test {

inline std::string Bin() { return testing::BinaryPath(); }

// A running `serve`: its pid and the port it printed. The process is stopped on destruction.
class ServeProcess {
 public:
  // `env`: "NAME=value " prefixes for the command.
  explicit ServeProcess(const std::string& args, const std::string& env = "") {
    // popen's shell prints its pid and execs serve, which keeps it (a child of this process).
    pipe_ = popen(("echo $$; " + env + " exec " + Bin() + " serve " + args + " 2>&1").c_str(), "r");
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
    // The rest of the output (what serve printed while running and stopping).
    char line[512];
    while (std::fgets(line, sizeof line, pipe_) != nullptr) output_ += line;
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

struct HttpResult {
  int status = 0;
  std::string body;
  std::string headers;  // the response's header block, lower-cased names as sent
};

// One request with curl: `method`, `path`, extra header lines, and a body (sent when not empty).
inline HttpResult Http(int port, const std::string& method, const std::string& path,
                       const std::string& body = "", const std::vector<std::string>& headers = {},
                       int timeout_s = 60) {
  testing::TempDir dir;
  std::string cmd = "curl -s -m " + std::to_string(timeout_s) + " -X " + method +
                    " -D " + dir.File("headers") + " -w '\\n%{http_code}'";
  for (const std::string& h : headers) cmd += " -H '" + h + "'";
  if (!body.empty()) {
    testing::WriteFile(dir.File("body"), body);
    cmd += " -H 'Content-Type: application/json' --data-binary @" + dir.File("body");
  }
  cmd += " http://127.0.0.1:" + std::to_string(port) + path;
  testing::CommandResult r = testing::RunCommand(cmd);
  HttpResult h;
  const size_t nl = r.out.rfind('\n');
  if (nl == std::string::npos) return h;
  h.body = r.out.substr(0, nl);
  h.status = std::atoi(r.out.c_str() + nl + 1);
  h.headers = testing::ReadFile(dir.File("headers"));
  return h;
}

inline HttpResult Get(int port, const std::string& path) { return Http(port, "GET", path); }
inline HttpResult Post(int port, const std::string& path, const std::string& body) {
  return Http(port, "POST", path, body);
}

}  // namespace gemma_local::serve_test
