// `gemma-local serve`: the OpenAI-compatible HTTP server (gemma_local/server.h). It listens first
// (GET /health answers 503 while the model loads), then loads the model and serves. SIGINT and
// SIGTERM stop it gracefully: no new connections, in-flight requests end, exit 0. The signals
// are blocked in every thread and taken by one thread with sigwait, so no handler and no global
// flag are needed.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "gemma_local/engine.h"
#include "gemma_local/server.h"

namespace gemma_local::cli {
namespace {

struct ServeFlags {
  std::string model;
  ServerOptions server;
  int threads = 0;
  int64_t max_context = 0;
  int64_t parallel = 0;
  int64_t queue_size = 0;
  int64_t queue_timeout_ms = -1;
  std::string api_key_file;
  EngineFlags engine;
};

// API keys: one per line of the file (blank lines and lines starting with '#' skipped), plus
// GEMMA_LOCAL_API_KEY from the environment (a key on the command line would show in `ps`).
Status ReadApiKeys(const std::string& path, std::vector<std::string>* keys) {
  if (const char* env = std::getenv("GEMMA_LOCAL_API_KEY"); env != nullptr && *env != '\0') {
    keys->push_back(env);
  }
  if (path.empty()) return Status::Ok();
  std::ifstream in(path);
  if (!in) return IoError(path + ": cannot read the API key file");
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    keys->push_back(line.substr(start));
  }
  if (keys->empty()) return InvalidArgumentError(path + ": no API keys in the file");
  return Status::Ok();
}

int Serve(const ServeFlags& f) {
  EngineOptions eo;
  eo.threads = f.threads;
  if (f.max_context > 0) eo.max_context = f.max_context;
  if (Status s = ApplyEngineFlags(f.engine, &eo); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (f.parallel > 0) eo.max_running_requests = f.parallel;
  if (f.queue_size > 0) eo.max_queued_requests = f.queue_size;
  if (f.queue_timeout_ms >= 0) eo.queue_timeout_ms = f.queue_timeout_ms;
  ServerOptions so = f.server;
  if (so.model_id.empty()) so.model_id = std::filesystem::path(f.model).filename().string();
  so.model_path = f.model;
  if (Status s = ReadApiKeys(f.api_key_file, &so.api_keys); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return kExitUsage;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: all inherit it

  Result<std::unique_ptr<Server>> server = Server::Start(so);
  if (!server.ok()) {
    std::fprintf(stderr, "error: %s\n", server.status().ToString().c_str());
    return kExitError;
  }
  std::printf("listening on http://%s:%d\n", so.host.c_str(), (*server)->port());
  std::fflush(stdout);
  Server& srv = **server;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    srv.Stop();
  });

  Result<std::unique_ptr<Engine>> engine = Engine::Open(f.model, eo);
  int code = kExitOk;
  if (!engine.ok()) {
    std::fprintf(stderr, "error: %s\n", engine.status().ToString().c_str());
    code = kExitError;
    pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes sigwait, which stops the server
  } else {
    srv.SetEngine(std::move(*engine));
    std::printf("ready: %s\n", so.model_id.c_str());
    std::fflush(stdout);
  }
  srv.Wait();
  signal_thread.join();
  return code;
}

}  // namespace

CommandRunner RegisterServe(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (docs/server.md)");
  cmd->add_option("--model", f->model, "GGUF file or Hugging Face checkpoint directory")
      ->required();
  cmd->add_option("--host", f->server.host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", f->server.port, "port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--model-id", f->server.model_id,
                  "the model's id in /v1/models (default: the file name)");
  cmd->add_option("--api-key-file", f->api_key_file,
                  "file of API keys, one per line (also GEMMA_LOCAL_API_KEY); required unless "
                  "--host is a loopback address");
  cmd->add_option("--parallel", f->parallel,
                  "requests generating at once (continuous batching; default 16)")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  cmd->add_option("--queue-size", f->queue_size,
                  "requests waiting to start at most (default 1024); more get 429 + Retry-After")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--queue-timeout-ms", f->queue_timeout_ms,
                  "a request not started within this gets 503 + Retry-After (default: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--read-timeout", f->server.read_timeout_s,
                  "seconds a request's headers and body may take to arrive (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->add_option("--max-string-bytes", f->server.max_string_bytes,
                  "longest string value in a request body (default 2 MiB)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 32));
  cmd->add_option("--max-json-depth", f->server.max_json_depth,
                  "deepest nesting of a request body (default 64)")
      ->check(CLI::Range(2, 4096));
  cmd->add_option("--http-threads", f->server.http_threads,
                  "connections served at once (default 128)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--max-body-bytes", f->server.max_body_bytes,
                  "largest request body (default 8 MiB; 413 beyond)")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 32));
  cmd->add_option("--max-n", f->server.max_n, "largest n (choices per request; default 16)")
      ->check(CLI::Range(1, 128));
  cmd->add_option("--max-messages", f->server.max_messages,
                  "most chat messages per request (default 1024)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--audit-log", f->server.audit_log_path,
                  "append one JSON line per request to this file");
  cmd->add_flag("--audit-text", f->server.audit_text,
                "include prompt and output text in the audit log (off: counts only)");
  cmd->add_option("--threads", f->threads, "worker threads (0 = all cores)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-context", f->max_context,
                  "context length of a request (default: the engine's, 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  AddEngineFlags(cmd, &f->engine);
  return [f]() { return Serve(*f); };
}

}  // namespace gemma_local::cli
