// Server on cpp-httplib: the library parses HTTP and runs handlers on its thread pool; this file
// maps routes to the public engine API and errors to OpenAI's error shape.
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "gemma_local/server.h"
#include "server/chat_completions.h"
#include "server/chat_page.h"

namespace gemma_local {
namespace {

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
void SendError(httplib::Response& res, int status, const std::string& message,
               const std::string& type, const std::string& code) {
  nlohmann::json body = {
      {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

class HttpServer final : public Server {
 public:
  explicit HttpServer(const ServerOptions& options) : options_(options) {}
  ~HttpServer() override {
    Stop();
    if (listener_.joinable()) listener_.join();
  }

  Status Bind() {
    http_.set_read_timeout(options_.read_timeout_s, 0);
    http_.set_write_timeout(options_.write_timeout_s, 0);
    http_.set_keep_alive_timeout(options_.idle_timeout_s);
    http_.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
    // SO_REUSEADDR only (a restart can rebind at once). httplib's default adds SO_REUSEPORT,
    // which lets a second server bind the same port and silently take half the connections.
    http_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    Routes();
    if (options_.port == 0) {
      port_ = http_.bind_to_any_port(options_.host.c_str());
    } else if (http_.bind_to_port(options_.host.c_str(), options_.port)) {
      port_ = options_.port;
    }
    if (port_ <= 0) {
      return IoError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                     " (address in use, or not an address of this machine)");
    }
    listener_ = std::thread([this] {
      http_.listen_after_bind();
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      stopped_cv_.notify_all();
    });
    return Status::Ok();
  }

  int port() const override { return port_; }

  void SetEngine(std::unique_ptr<Engine> engine) override {
    std::lock_guard<std::mutex> lock(mu_);
    engine_ = std::move(engine);
    ready_ = true;
  }

  void Stop() override {
    if (!listener_.joinable()) return;  // never bound
    // httplib's stop() does nothing before the listener runs: wait for it (bounded), unless it
    // already ended.
    for (int i = 0; i < 5000 && !http_.is_running(); ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopped_) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    http_.stop();
  }

  void Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    stopped_cv_.wait(lock, [&] { return stopped_; });
  }

 private:
  bool Ready() {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_;
  }
  // Server-sent events: one chat.completion.chunk per settled piece of text, then
  // "data: [DONE]". A client that goes away cancels the request (checked between events).
  void Stream(Engine* engine, Request request, const server::ChatDelivery& delivery,
              const std::string& id, int64_t created, httplib::Response& res) {
    Result<std::unique_ptr<RequestHandle>> submitted = engine->Submit(std::move(request));
    if (!submitted.ok()) {
      const server::ApiError e = server::FromStatus(submitted.status());
      res.status = e.http_status;
      res.set_content(e.Body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/json");
      return;
    }
    std::shared_ptr<RequestHandle> handle = std::move(*submitted);
    const std::string model = options_.model_id;
    const bool include_usage = delivery.include_usage;
    res.set_chunked_content_provider(
        "text/event-stream",
        [handle, id, model, created, include_usage](size_t, httplib::DataSink& sink) {
          bool first = true;
          int tool_index = 0;
          auto send = [&](const std::string& payload) {
            const std::string line = "data: " + payload + "\n\n";
            return sink.write(line.data(), line.size());
          };
          for (;;) {
            if (!sink.is_writable()) {
              handle->Cancel();
              return false;
            }
            std::optional<Event> e = handle->NextFor(std::chrono::milliseconds(100));
            if (!e) {
              if (handle->done()) break;
              continue;  // nothing yet: check the client again
            }
            if (e->final && e->finish_reason == "error") {
              send(server::FromStatus(e->error).Body().dump(
                  -1, ' ', false, nlohmann::json::error_handler_t::replace));
              break;
            }
            for (const nlohmann::json& chunk :
                 server::ChatChunks(*e, id, model, created, include_usage, &first, &tool_index)) {
              if (!send(chunk.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) {
                handle->Cancel();
                return false;
              }
            }
            if (e->final) break;
          }
          send("[DONE]");
          sink.done();
          return true;
        },
        [handle](bool success) {
          if (!success) handle->Cancel();
        });
  }

  // The engine once SetEngine ran (it is never replaced), else null.
  Engine* ReadyEngine() {
    std::lock_guard<std::mutex> lock(mu_);
    return engine_.get();
  }

  void Routes() {
    // The chat page: fixed bytes built into the binary, no model data, so no key is needed to
    // load it (like llama-server's page); every API call it makes sends the key.
    http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const std::string_view html = server::ChatPageHtml();
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "img-src 'self' data:; connect-src 'self'");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content(html.data(), html.size(), "text/html; charset=utf-8");
    });
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (!Ready()) {
        res.status = 503;
        res.set_content(R"({"status":"loading"})", "application/json");
        return;
      }
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      if (!Ready()) return SendError(res, 503, "the model is loading", "server_error", "loading");
      nlohmann::json model = {
          {"id", options_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "local"}};
      res.set_content(nlohmann::json({{"object", "list"}, {"data", {model}}}).dump(),
                      "application/json");
    });
    http_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Engine* engine = ReadyEngine();
      if (engine == nullptr) {
        return SendError(res, 503, "the model is loading", "server_error", "loading");
      }
      const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded()) {
        return SendError(res, 400, "the body is not valid JSON", "invalid_request_error",
                         "invalid_json");
      }
      server::ApiError error;
      server::ChatDelivery delivery;
      Result<Request> request = server::ParseChatRequest(body, &delivery, &error);
      if (!request.ok()) {
        res.status = error.http_status;
        return res.set_content(
            error.Body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
            "application/json");
      }
      const std::string id = "chatcmpl-" + std::to_string(++next_id_);
      const auto created = static_cast<int64_t>(std::time(nullptr));
      if (delivery.stream) return Stream(engine, std::move(*request), delivery, id, created, res);
      Result<Completion> done = engine->Generate(std::move(*request));
      if (!done.ok()) {
        const server::ApiError e = server::FromStatus(done.status());
        res.status = e.http_status;
        return res.set_content(
            e.Body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
            "application/json");
      }
      res.set_content(server::ChatCompletionBody(*done, id, options_.model_id, created)
                          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/json");
    });
    http_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.status == 404)
        SendError(res, 404, "no such route", "invalid_request_error", "not_found");
    });
  }

  ServerOptions options_;
  httplib::Server http_;
  int port_ = -1;
  std::thread listener_;
  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;            // guarded by mu_
  bool ready_ = false;              // guarded by mu_
  std::unique_ptr<Engine> engine_;  // guarded by mu_ (set once)
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto server = std::make_unique<HttpServer>(options);
  GL_RETURN_IF_ERROR(server->Bind());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace gemma_local
