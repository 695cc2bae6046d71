// `gemma-local serve`: the OpenAI-compatible HTTP server (gemma_local/server.h). It listens first
// (GET /health answers 503 while the model loads), then loads the model and serves. SIGINT and
// SIGTERM stop it gracefully: no new connections, in-flight requests end, exit 0. The signals
// are blocked in every thread and taken by one thread with sigwait, so no handler and no global
// flag are needed.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
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
  EngineFlags engine;
};

int Serve(const ServeFlags& f) {
  EngineOptions eo;
  eo.threads = f.threads;
  if (f.max_context > 0) eo.max_context = f.max_context;
  if (Status s = ApplyEngineFlags(f.engine, &eo); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return kExitUsage;
  }
  ServerOptions so = f.server;
  if (so.model_id.empty()) so.model_id = std::filesystem::path(f.model).filename().string();

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
      "serve", "OpenAI-compatible HTTP server (work in progress: /health, /v1/models)");
  cmd->add_option("--model", f->model, "GGUF file or Hugging Face checkpoint directory")
      ->required();
  cmd->add_option("--host", f->server.host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", f->server.port, "port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--model-id", f->server.model_id,
                  "the model's id in /v1/models (default: the file name)");
  cmd->add_option("--threads", f->threads, "worker threads (0 = all cores)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-context", f->max_context,
                  "context length of a request (default: the engine's, 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  AddEngineFlags(cmd, &f->engine);
  return [f]() { return Serve(*f); };
}

}  // namespace gemma_local::cli
