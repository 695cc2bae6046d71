// The OpenAI-compatible HTTP server (`gemma-local serve`): a front end over the public engine
// API. It listens before the model is loaded (GET /health answers 503 until SetEngine, then 200),
// so orchestrators can probe it while a large model loads.
//
// Routes: GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions,
// POST /tokenize, POST /detokenize, GET /metrics (Prometheus) and the chat page at GET /.
// docs/server.md lists every field and the differences from OpenAI's API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gemma_local/engine.h"
#include "gemma_local/status.h"

namespace gemma_local {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (port() says which)
  std::string model_id;     // the id /v1/models reports (default: the model file's name)
  int read_timeout_s = 30;  // a request's headers and body must arrive within this (slow-loris)
  int write_timeout_s = 600;
  int idle_timeout_s = 5;  // keep-alive: an idle connection is closed after this
  // Connections served at once (one thread each; streaming replies hold theirs). More wait.
  int http_threads = 128;

  // API keys (Authorization: Bearer KEY). Empty: no key checks, which Start allows only on a
  // loopback address. Every route but GET /health and the static chat page at GET / checks them.
  std::vector<std::string> api_keys;

  // Request limits: a request over one gets a 4xx naming it, before any work is queued.
  int64_t max_body_bytes = int64_t{8} << 20;  // 413 beyond
  int max_json_depth = 64;                    // nesting of objects and arrays
  int64_t max_string_bytes = int64_t{2} << 20;  // any one string value in the body
  int max_messages = 1024;                    // chat messages per request
  int max_n = 16;                             // choices per request (OpenAI's `n`)

  // Audit log: one JSON line per request appended to this file ("" = none). Prompt and output
  // text are left out unless audit_text is set.
  std::string audit_log_path;
  bool audit_text = false;
  std::string model_path;  // hashed (SHA-256) in the background for the audit log's model_sha256
};

class Server {
 public:
  virtual ~Server() = default;
  // Binds `options.host:port` and starts answering on its own threads. Errors name the address;
  // a non-loopback host without api_keys is refused (kInvalidArgument).
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // The bound port.
  virtual int port() const = 0;
  // The model is ready: requests are served from now on (/health answers 200).
  virtual void SetEngine(std::unique_ptr<Engine> engine) = 0;
  // Stops accepting; replies in flight end at once with OpenAI's error object (503
  // shutting_down; a stream gets it as its last event), and their requests are cancelled.
  // Callable from any thread; idempotent.
  virtual void Stop() = 0;
  // Blocks until Stop.
  virtual void Wait() = 0;
};

}  // namespace gemma_local
