// Server on cpp-httplib: the library parses HTTP and runs each connection on its thread pool;
// this file maps routes to the public engine API, checks keys and limits, and counts and audits
// every answered request. Replies (streamed or not) are written by a content provider that
// watches the client: a client that goes away cancels its request within one engine step.
#include <httplib.h>
#include <strings.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>

#include "gemma_local/server.h"
#include "server/api_error.h"
#include "server/audit_log.h"
#include "server/auth.h"
#include "server/chat_completions.h"
#include "server/chat_page.h"
#include "server/completions.h"
#include "server/metrics.h"
#include "server/request_body.h"

namespace gemma_local {
namespace {

using Clock = std::chrono::steady_clock;
using server::ApiError;

void SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  if (e.retry_after_s > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s));
  res.set_content(server::Dump(e.Body()), "application/json");
}

ApiError Error(int status, const std::string& message, const std::string& type,
               const std::string& code) {
  ApiError e;
  e.http_status = status;
  e.message = message;
  e.type = type;
  e.code = code;
  return e;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// What one request did, filled as it runs and written to the metrics and the audit log when
// its response has been sent.
struct RequestRecord {
  std::string id;
  std::string route;
  std::string key_id;
  bool authorized = false;
  Clock::time_point start = Clock::now();
  Usage usage;
  std::string finish_reason;
  nlohmann::json audit_input;   // audit_text only
  nlohmann::json audit_output;  // audit_text only
};

// The events of a request's choices as they come: one at a time from whichever choice has one.
class ChoiceEvents {
 public:
  explicit ChoiceEvents(std::vector<std::unique_ptr<RequestHandle>> handles) {
    for (auto& h : handles) handles_.push_back(std::move(h));
  }
  // The next event and its choice, waiting at most about `wait`; nullopt when none came.
  std::optional<std::pair<int, Event>> Next(std::chrono::milliseconds wait) {
    const int n = static_cast<int>(handles_.size());
    for (int tried = 0; tried < n; ++tried) {
      const int i = cursor_++ % n;
      if (handles_[i]->done()) continue;
      std::optional<Event> e = handles_[i]->NextFor(n == 1 ? wait : std::chrono::milliseconds(0));
      if (e) return std::make_pair(i, std::move(*e));
    }
    if (n > 1 && !AllDone()) {
      for (int i = 0; i < n; ++i) {
        if (handles_[i]->done()) continue;
        std::optional<Event> e = handles_[i]->NextFor(std::chrono::milliseconds(2));
        if (e) return std::make_pair(i, std::move(*e));
        break;
      }
    }
    return std::nullopt;
  }
  bool AllDone() const {
    for (const auto& h : handles_) {
      if (!h->done()) return false;
    }
    return true;
  }
  void CancelAll() {
    for (auto& h : handles_) h->Cancel();
  }
  int size() const { return static_cast<int>(handles_.size()); }

 private:
  std::vector<std::unique_ptr<RequestHandle>> handles_;
  int cursor_ = 0;
};

// How a generation route turns events into its response.
struct Formatter {
  // Stream: the chunks for one event of choice i.
  std::function<std::vector<nlohmann::json>(const Event&, int)> chunks;
  std::string chunk_object;  // "chat.completion.chunk" or "text_completion"
  // Non-stream: the body for all choices.
  std::function<nlohmann::json(const std::vector<Completion>&)> body;
};

class HttpServer final : public Server {
 public:
  explicit HttpServer(const ServerOptions& options)
      : options_(options), keys_(options.api_keys), model_hash_(options.model_path) {}
  ~HttpServer() override {
    Stop();
    if (listener_.joinable()) listener_.join();
  }

  Status Bind() {
    if (!keys_.enabled() && !IsLoopback(options_.host)) {
      return InvalidArgumentError("listening on " + options_.host +
                                  " (not a loopback address) needs API keys (--api-key-file)");
    }
    if (options_.http_threads < 1) return InvalidArgumentError("http_threads must be >= 1");
    if (!options_.audit_log_path.empty()) {
      GL_ASSIGN_OR_RETURN(audit_, server::AuditLog::Open(options_.audit_log_path));
    }
    const size_t threads = static_cast<size_t>(options_.http_threads);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_.set_read_timeout(options_.read_timeout_s, 0);
    http_.set_write_timeout(options_.write_timeout_s, 0);
    http_.set_keep_alive_timeout(options_.idle_timeout_s);
    http_.set_keep_alive_max_count(1000);  // requests per connection (httplib's default is 5)
    http_.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
    // SO_REUSEADDR only (a restart can rebind at once). httplib's default adds SO_REUSEPORT,
    // which lets a second server bind the same port and silently take half the connections.
    http_.set_socket_options([this](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listen_socket_ = sock;
    });
    Hooks();
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
    // httplib listens with a backlog of 5: a burst of clients connecting at once would wait for
    // SYN retransmits (a second each). listen() again raises it.
    if (listen_socket_ != INVALID_SOCKET) ::listen(listen_socket_, SOMAXCONN);
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
  }

  void Stop() override {
    if (!listener_.joinable()) return;  // never bound
    stopping_ = true;  // replies in flight end now (503 shutting_down), so the stop is prompt
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
  // The engine once SetEngine ran (it is never replaced), else null.
  Engine* ReadyEngine() {
    std::lock_guard<std::mutex> lock(mu_);
    return engine_.get();
  }

  std::shared_ptr<RequestRecord> RecordOf(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(records_mu_);
    auto it = records_.find(&req);
    return it == records_.end() ? nullptr : it->second;
  }

  // Every request gets a record and an id before routing; the key is checked here for every
  // route but the public ones, and enforced in Route() (so the body is still read and a
  // keep-alive connection stays in step) and in the error handler (unknown routes say 401 too).
  void Hooks() {
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      auto record = std::make_shared<RequestRecord>();
      record->id = "req-" + std::to_string(++next_request_);
      record->route = server::RouteLabel(req.method, req.path);
      const bool is_public = req.path == "/health" || (req.path == "/" && req.method == "GET");
      if (!keys_.enabled() || is_public) {
        record->authorized = true;
      } else if (std::optional<std::string> key =
                     keys_.Check(req.get_header_value("Authorization"))) {
        record->authorized = true;
        record->key_id = *key;
      }
      res.set_header("X-Request-Id", record->id);
      // A POST that declares no body length (neither Content-Length nor chunked) has no body in
      // HTTP/1.1; httplib would wait for the connection to close. Answer at once.
      const bool no_length =
          (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") &&
          !req.has_header("Content-Length") &&
          strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0;
      {
        std::lock_guard<std::mutex> lock(records_mu_);
        records_[&req] = record;
      }
      if (no_length) {
        SendError(res, Error(411, "a request body needs Content-Length (or chunked encoding)",
                             "invalid_request_error", "length_required"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Statuses httplib sets itself (a malformed request 400, a body over the limit 413, an
    // unknown route 404, ...) get OpenAI's error body; responses that have one keep it.
    http_.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty() || res.content_provider_) {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          std::shared_ptr<RequestRecord> record = RecordOf(req);
          if (res.status == 404 && record != nullptr && !record->authorized) {
            SendError(res, Unauthorized());
          } else if (res.status == 404) {
            SendError(res, Error(404, "no such route: " + req.method + " " + req.path,
                                 "invalid_request_error", "not_found"));
          } else if (res.status == 413) {
            SendError(res, BodyTooLarge());
          } else {
            SendError(res, Error(res.status,
                                 "HTTP " + std::to_string(res.status) +
                                     (res.status == 400 ? ": malformed request" : ""),
                                 res.status >= 500 ? "server_error" : "invalid_request_error",
                                 "http_" + std::to_string(res.status)));
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
    // A handler that throws (a bug) answers 500 without the exception's text.
    http_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          SendError(res, Error(500, "internal error", "server_error", "internal_error"));
        });
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      std::shared_ptr<RequestRecord> record;
      {
        std::lock_guard<std::mutex> lock(records_mu_);
        auto it = records_.find(&req);
        if (it != records_.end()) {
          record = std::move(it->second);
          records_.erase(it);
        }
      }
      if (record == nullptr) {  // refused before routing (a malformed request line)
        record = std::make_shared<RequestRecord>();
        record->id = "req-" + std::to_string(++next_request_);
        record->route = "other";
      }
      Finish(req, res, *record);
    });
  }

  static ApiError Unauthorized() {
    return Error(401, "a valid API key is required (Authorization: Bearer KEY)",
                 "invalid_request_error", "invalid_api_key");
  }

  void Finish(const httplib::Request& req, const httplib::Response& res, const RequestRecord& r) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - r.start).count();
    metrics_.CountRequest(r.route, res.status, ms);
    if (audit_ == nullptr) return;
    nlohmann::json line = {
        {"time", server::UtcTimestamp()},
        {"request_id", r.id},
        {"key_id", r.key_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.key_id)},
        {"client", req.remote_addr},
        {"method", req.method},
        {"route", r.route},
        {"status", res.status},
        {"model", options_.model_id},
        {"model_sha256", model_hash_.hex()},
        {"prompt_tokens", r.usage.prompt_tokens},
        {"completion_tokens", r.usage.completion_tokens},
        {"cached_tokens", r.usage.cached_tokens},
        {"finish_reason",
         r.finish_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.finish_reason)},
        {"latency_ms", ms}};
    if (options_.audit_text) {
      line["input"] = r.audit_input;
      line["output"] = r.audit_output;
    }
    audit_->Write(line);
  }

  using Handler = std::function<void(const httplib::Request&, httplib::Response&, RequestRecord&)>;
  using PostHandler = std::function<void(const httplib::Request&, const std::string& body,
                                         httplib::Response&, RequestRecord&)>;
  // Registers a GET route. Every route goes through here or PostRoute: the key check cannot be
  // skipped.
  void GetRoute(const char* path, Handler handler) {
    http_.Get(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
      std::shared_ptr<RequestRecord> record = RecordOf(req);
      if (record == nullptr || !record->authorized) return SendError(res, Unauthorized());
      handler(req, res, *record);
    });
  }
  // Registers a POST route whose body is read here, at most max_body_bytes of it whatever its
  // framing: httplib's own limit holds only for a Content-Length body, not a chunked or
  // compressed one. The rest of an oversized body is read and dropped (up to 8 times the limit)
  // so a keep-alive connection stays in step for its next request; the body is read even for a
  // request without a valid key, for the same reason.
  void PostRoute(const char* path, PostHandler handler) {
    http_.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader) {
      std::string body;
      bool too_large = false;
      const size_t limit = static_cast<size_t>(options_.max_body_bytes);
      size_t dropped = 0;
      const bool read = reader([&](const char* data, size_t n) {
        if (!too_large && body.size() + n <= limit) {
          body.append(data, n);
          return true;
        }
        if (!too_large) {
          too_large = true;
          dropped = body.size();
          std::string().swap(body);
        }
        dropped += n;
        return dropped <= 8 * limit;  // beyond: give up on the connection
      });
      std::shared_ptr<RequestRecord> record = RecordOf(req);
      if (record == nullptr || !record->authorized) return SendError(res, Unauthorized());
      if (too_large || res.status == 413) return SendError(res, BodyTooLarge());
      if (!read) {
        return SendError(res, Error(400, "the request body could not be read",
                                    "invalid_request_error", "invalid_body"));
      }
      handler(req, body, res, *record);
    });
  }
  ApiError BodyTooLarge() const {
    return Error(413,
                 "the body is larger than " + std::to_string(options_.max_body_bytes) + " bytes",
                 "invalid_request_error", "body_too_large");
  }

  // The parsed body of a POST under the limits, and the engine; false (response sent) otherwise.
  bool Prepare(const std::string& text, httplib::Response& res, nlohmann::ordered_json* body,
               Engine** engine) {
    *engine = ReadyEngine();
    if (*engine == nullptr) {
      ApiError e = Error(503, "the model is loading", "server_error", "loading");
      e.retry_after_s = 5;
      SendError(res, e);
      return false;
    }
    ApiError error;
    if (!server::ParseBody(text, {options_.max_json_depth, options_.max_string_bytes}, body,
                           &error)) {
      SendError(res, error);
      return false;
    }
    if (body->is_object()) {
      auto model = body->find("model");
      if (model != body->end() && !model->is_null() &&
          (!model->is_string() || (*model != options_.model_id && *model != ""))) {
        ApiError e = server::BadField(
            "model",
            "no model " + model->dump() + " here; this server has '" + options_.model_id + "'",
            "model_not_found");
        e.http_status = 404;
        SendError(res, e);
        return false;
      }
    }
    return true;
  }

  // Tokenizes the prompt once, settles max_tokens against the context, and submits the choices.
  // The request then runs on those ids (a chat is not rendered twice); Gemma 4 replies to chat
  // input keep their parsing. False (response sent) on an error.
  bool Submit(Engine* engine, server::CommonFields& f, RequestRecord& record,
              httplib::Response& res, std::vector<std::unique_ptr<RequestHandle>>* handles) {
    Request& request = f.request;
    const char* prompt_field = request.input.chat ? "messages" : "prompt";
    Result<std::vector<int32_t>> ids = engine->Tokenize(request.input);
    if (!ids.ok()) {
      ApiError e = server::FromStatus(ids.status());
      if (e.http_status == 400) {
        // The engine names the place ("messages[2].content: ..."): that is the param.
        const std::string& m = e.message;
        const size_t colon = m.find(':');
        const bool named = (m.rfind("messages[", 0) == 0 || m.rfind("tools", 0) == 0) &&
                           colon != std::string::npos && m.find(' ') > colon;
        e.param = named ? m.substr(0, colon) : prompt_field;
      }
      SendError(res, e);
      return false;
    }
    ApiError error;
    if (!server::FitContext(static_cast<int64_t>(ids->size()), engine->context_limit(),
                            f.max_tokens, &request.max_tokens, &error, prompt_field)) {
      SendError(res, error);
      return false;
    }
    if (request.input.chat && request.parse_reply == ReplyParsing::kAuto) {
      request.parse_reply =
          engine->architecture() == "gemma4" ? ReplyParsing::kOn : ReplyParsing::kOff;
    }
    request.input = RequestInput::Tokens(std::move(*ids));
    const bool constrained = request.constraint.has_value();
    Result<std::vector<std::unique_ptr<RequestHandle>>> submitted =
        engine->SubmitSamples(std::move(request), f.n);
    if (!submitted.ok()) {
      ApiError e = server::FromStatus(submitted.status());
      // Constraint errors name the keyword and its pointer in the message; the field is the
      // request's response_format (or max_tokens when that cannot fit the shortest value).
      if (constrained && e.http_status == 400) {
        const std::string& m = e.message;
        if (m.rfind("max_tokens", 0) == 0) {
          e.param = "max_tokens";
        } else if (m.rfind("grammar", 0) == 0) {
          e.param = "grammar";
        } else if (m.find("JSON Schema") != std::string::npos ||
                   m.find("pattern") != std::string::npos ||
                   m.find("constraint") != std::string::npos) {
          e.param = "response_format";
        }
      }
      SendError(res, e);
      return false;
    }
    *handles = std::move(*submitted);
    return true;
  }

  // Sends the choices' reply: server-sent events when streaming, else one JSON body. Either way
  // a content provider writes it and watches the client; a client gone cancels every choice.
  void Reply(std::vector<std::unique_ptr<RequestHandle>> handles, const server::CommonFields& f,
             const server::ResponseHeader& header, Formatter formatter,
             std::shared_ptr<RequestRecord> record, httplib::Response& res) {
    auto events = std::make_shared<ChoiceEvents>(std::move(handles));
    const bool stream = f.stream;
    const bool include_usage = f.include_usage;
    const bool audit_text = options_.audit_text;
    const std::atomic<bool>* stopping = &stopping_;  // the server outlives its connections
    auto provider = [events, stream, include_usage, audit_text, formatter, record, header,
                     stopping](size_t, httplib::DataSink& sink) {
      const int n = events->size();
      std::vector<Completion> completions(n);
      std::vector<Usage> usages(n);
      std::optional<Status> failure;
      auto send = [&](const nlohmann::json& payload) {
        const std::string line = "data: " + server::Dump(payload) + "\n\n";
        return sink.write(line.data(), line.size());
      };
      while (!events->AllDone()) {
        if (*stopping && !failure) {
          events->CancelAll();
          failure = CancelledError("the server is shutting down");
        }
        if (!sink.is_writable()) {
          events->CancelAll();
          record->finish_reason = "client_disconnected";
          return false;
        }
        std::optional<std::pair<int, Event>> next = events->Next(std::chrono::milliseconds(50));
        if (!next) continue;
        auto& [i, e] = *next;
        Completion& c = completions[i];
        c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
        c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
        for (const ReplyEvent& d : e.deltas) {
          if (d.kind == ReplyEvent::Kind::kContent) c.text += d.text;
          if (d.kind == ReplyEvent::Kind::kReasoning) c.reasoning += d.text;
          if (d.kind == ReplyEvent::Kind::kToolCall) c.tool_calls.push_back(d.tool_call);
        }
        if (e.final) {
          c.finish_reason = e.finish_reason;
          c.constraint = e.constraint;
          c.usage = e.usage;
          usages[i] = e.usage;
          if (e.finish_reason == "error" && !failure) failure = e.error;
        }
        if (stream && !failure && !(e.final && e.finish_reason == "error")) {
          for (const nlohmann::json& chunk : formatter.chunks(e, i)) {
            if (!send(chunk)) {
              events->CancelAll();
              record->finish_reason = "client_disconnected";
              return false;
            }
          }
        }
      }
      record->usage = server::SumUsage(usages);
      record->finish_reason = failure ? "error" : completions.front().finish_reason;
      if (audit_text) {
        record->audit_output = nlohmann::json::array();
        for (const Completion& c : completions) record->audit_output.push_back(c.text);
      }
      // An error after the reply started (the status line is out): OpenAI's error object in
      // the body, as streams carry them.
      const std::string body =
          failure ? server::Dump(server::FromStatus(*failure).Body())
                  : (stream ? std::string() : server::Dump(formatter.body(completions)));
      if (stream) {
        if (failure) {
          send(server::FromStatus(*failure).Body());
        } else if (include_usage) {
          send(server::UsageChunk(header, formatter.chunk_object, record->usage));
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
      } else {
        sink.write(body.data(), body.size());
      }
      sink.done();
      return true;
    };
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(stream ? "text/event-stream" : "application/json",
                                     std::move(provider), [events](bool success) {
                                       if (!success) events->CancelAll();
                                     });
  }

  void ChatCompletions(const httplib::Request& req, const std::string& text, httplib::Response& res,
                       RequestRecord& record_ref) {
    std::shared_ptr<RequestRecord> record = RecordOf(req);
    nlohmann::ordered_json body;
    Engine* engine = nullptr;
    if (!Prepare(text, res, &body, &engine)) return;
    server::ChatRequest chat;
    ApiError error;
    if (!server::ParseChatRequest(body, options_.max_messages, options_.max_n, &chat, &error)) {
      return SendError(res, error);
    }
    if (options_.audit_text) record_ref.audit_input = body["messages"];
    std::vector<std::unique_ptr<RequestHandle>> handles;
    if (!Submit(engine, chat.common, record_ref, res, &handles)) return;
    std::shared_ptr<const Tokenizer> tokenizer = engine->tokenizer();
    const auto created = static_cast<int64_t>(std::time(nullptr));
    const server::ResponseHeader h = {record_ref.id, options_.model_id, created};
    auto states = std::make_shared<std::vector<server::ChatChoiceStream>>(chat.common.n);
    const bool logprobs = chat.logprobs;
    Formatter f;
    f.chunk_object = "chat.completion.chunk";
    f.chunks = [h, states, tokenizer, logprobs](const Event& e, int i) {
      return server::ChatChunks(e, i, h, &(*states)[i], tokenizer.get(), logprobs);
    };
    f.body = [h, tokenizer, logprobs](const std::vector<Completion>& c) {
      return server::ChatCompletionBody(c, h, tokenizer.get(), logprobs);
    };
    Reply(std::move(handles), chat.common, h, std::move(f), std::move(record), res);
  }

  void Completions(const httplib::Request& req, const std::string& text, httplib::Response& res,
                   RequestRecord& record_ref) {
    std::shared_ptr<RequestRecord> record = RecordOf(req);
    nlohmann::ordered_json body;
    Engine* engine = nullptr;
    if (!Prepare(text, res, &body, &engine)) return;
    server::CompletionRequest completion;
    ApiError error;
    if (!server::ParseCompletionRequest(body, options_.max_n, &completion, &error)) {
      return SendError(res, error);
    }
    if (options_.audit_text) record_ref.audit_input = body["prompt"];
    std::shared_ptr<const Tokenizer> tokenizer = engine->tokenizer();
    server::Echo echo;
    if (completion.echo) {
      const RequestInput& in = completion.common.request.input;
      if (in.text) {
        echo.text = *in.text;
      } else if (tokenizer != nullptr) {
        Result<std::string> text = tokenizer->Decode(in.tokens);
        if (text.ok()) echo.text = *text;
      }
      if (completion.logprobs >= 0) {
        Result<ScoreResult> scored =
            engine->Score(ScoreRequest{in, std::max(1, completion.logprobs)});
        if (!scored.ok()) return SendError(res, server::FromStatus(scored.status()));
        echo.logprobs = server::PromptLogprobs(*scored, tokenizer.get(), completion.logprobs);
      }
    }
    std::vector<std::unique_ptr<RequestHandle>> handles;
    if (!Submit(engine, completion.common, record_ref, res, &handles)) return;
    const auto created = static_cast<int64_t>(std::time(nullptr));
    const server::ResponseHeader h = {record_ref.id, options_.model_id, created};
    auto states =
        std::make_shared<std::vector<server::CompletionChoiceStream>>(completion.common.n);
    const int logprobs = completion.logprobs;
    Formatter f;
    f.chunk_object = "text_completion";
    f.chunks = [h, states, tokenizer, logprobs, echo](const Event& e, int i) {
      return server::CompletionChunks(e, i, h, &(*states)[i], tokenizer.get(), logprobs, echo);
    };
    f.body = [h, tokenizer, logprobs, echo](const std::vector<Completion>& c) {
      return server::CompletionBody(c, h, tokenizer.get(), logprobs, echo);
    };
    Reply(std::move(handles), completion.common, h, std::move(f), std::move(record), res);
  }

  // /tokenize and /detokenize.
  void TokenRoute(const std::string& text, httplib::Response& res, bool encode) {
    nlohmann::ordered_json body;
    Engine* engine = nullptr;
    if (!Prepare(text, res, &body, &engine)) return;
    std::shared_ptr<const Tokenizer> tokenizer = engine->tokenizer();
    if (tokenizer == nullptr) {
      return SendError(
          res, Error(400, "this model has no tokenizer", "invalid_request_error", "no_tokenizer"));
    }
    nlohmann::json out;
    ApiError error;
    const bool ok = encode ? server::Tokenize(body, *tokenizer, &out, &error)
                           : server::Detokenize(body, *tokenizer, &out, &error);
    if (!ok) return SendError(res, error);
    res.set_content(server::Dump(out), "application/json");
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
    GetRoute("/health", [this](const httplib::Request&, httplib::Response& res, RequestRecord&) {
      if (ReadyEngine() == nullptr) {
        res.status = 503;
        res.set_header("Retry-After", "5");
        return res.set_content(R"({"status":"loading"})", "application/json");
      }
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    GetRoute("/v1/models", [this](const httplib::Request&, httplib::Response& res, RequestRecord&) {
      if (ReadyEngine() == nullptr) {
        ApiError e = Error(503, "the model is loading", "server_error", "loading");
        e.retry_after_s = 5;
        return SendError(res, e);
      }
      nlohmann::json model = {
          {"id", options_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "local"}};
      res.set_content(server::Dump({{"object", "list"}, {"data", {model}}}), "application/json");
    });
    GetRoute("/metrics", [this](const httplib::Request&, httplib::Response& res, RequestRecord&) {
      Engine* engine = ReadyEngine();
      std::optional<EngineStats> stats;
      if (engine != nullptr) stats = engine->Stats();
      res.set_content(metrics_.Render(stats ? &*stats : nullptr),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    PostRoute("/v1/chat/completions",
              [this](const httplib::Request& req, const std::string& body, httplib::Response& res,
                     RequestRecord& r) { ChatCompletions(req, body, res, r); });
    PostRoute("/v1/completions",
              [this](const httplib::Request& req, const std::string& body, httplib::Response& res,
                     RequestRecord& r) { Completions(req, body, res, r); });
    PostRoute("/tokenize",
              [this](const httplib::Request&, const std::string& body, httplib::Response& res,
                     RequestRecord&) { TokenRoute(body, res, true); });
    PostRoute("/detokenize",
              [this](const httplib::Request&, const std::string& body, httplib::Response& res,
                     RequestRecord&) { TokenRoute(body, res, false); });
  }

  ServerOptions options_;
  server::ApiKeys keys_;
  server::ModelHash model_hash_;
  std::unique_ptr<server::AuditLog> audit_;
  server::ServerMetrics metrics_;
  httplib::Server http_;
  int port_ = -1;
  socket_t listen_socket_ = INVALID_SOCKET;  // set while binding (Bind's thread)
  std::thread listener_;
  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;            // guarded by mu_
  std::unique_ptr<Engine> engine_;  // guarded by mu_ (set once)
  std::mutex records_mu_;
  // In-flight requests by their httplib object (alive from routing until the logger ran).
  std::unordered_map<const httplib::Request*, std::shared_ptr<RequestRecord>> records_;
  std::atomic<uint64_t> next_request_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto server = std::make_unique<HttpServer>(options);
  GL_RETURN_IF_ERROR(server->Bind());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace gemma_local
