// The OpenAI-compatible HTTP server (`gemma-local serve`): a front end over the public engine
// API. It listens before the model is loaded (GET /health answers 503 until SetEngine, then 200),
// so orchestrators can probe it while a large model loads.
//
// Work in progress (issue 14): /health and /v1/models so far.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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
  int64_t max_body_bytes = int64_t{8} << 20;
};

class Server {
 public:
  virtual ~Server() = default;
  // Binds `options.host:port` and starts answering on its own threads. Errors name the address.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // The bound port.
  virtual int port() const = 0;
  // The model is ready: requests are served from now on (/health answers 200).
  virtual void SetEngine(std::unique_ptr<Engine> engine) = 0;
  // Stops accepting, lets in-flight requests end, and returns once the listener has stopped.
  // Callable from any thread; idempotent.
  virtual void Stop() = 0;
  // Blocks until Stop.
  virtual void Wait() = 0;
};

}  // namespace gemma_local
