// The engine behind the public API: requests are prepared (rendered, tokenized, validated,
// checked against the KV pool) on the caller's thread and handed to one worker thread, which runs
// the scheduler (runtime/scheduler.h: continuous batching over the paged KV cache) and streams
// events into each request's handle.
#include "gemma_local/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "core/json_access.h"
#include "gemma_local/chat_template.h"
#include "gemma_local/system_memory.h"
#include "gemma_local/tokenizer.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/quantize.h"
#include "ops/backend.h"
#include "constrain/compile_cache.h"
#include "runtime/chat_prompt.h"
#include "runtime/kv_cache.h"
#include "runtime/request_state.h"
#include "runtime/scheduler.h"
#include "text/tokenizer.h"

namespace gemma_local {
namespace {

constexpr int kMaxTopLogprobs = 20;

class LocalEngine final : public Engine {
 public:
  LocalEngine(std::string model_path, std::unique_ptr<ops::Backend> backend,
              std::unique_ptr<Model> model, const EngineOptions& options, KvType kv_type,
              Result<std::shared_ptr<const Tokenizer>> tokenizer)
      : model_path_(std::move(model_path)),
        backend_(std::move(backend)),
        model_(std::move(model)),
        options_(options),
        tokenizer_(std::move(tokenizer)),
        architecture_(ModelFamilyName(model_->hparams().family)) {
    SchedulerOptions so;
    so.step_tokens = options_.max_batch;
    so.max_running = options_.max_running_requests;
    so.queue_timeout_ms = options_.queue_timeout_ms;
    so.decode_latency_factor = options_.decode_latency_factor;
    so.dump_activations = options_.dump_activations;
    scheduler_ = std::make_unique<Scheduler>(
        *model_, *backend_, tokenizer_.ok() ? *tokenizer_ : nullptr, default_stop_tokens(), so,
        KvCacheOptions{options_.kv_block_rows, options_.kv_budget_bytes, options_.prefix_caching,
                       kv_type},
        &mu_, &stats_);
    worker_ = std::thread([this] { WorkerLoop(); });
  }

  // Cancels every running and queued request (their readers get final "cancelled" events), then
  // joins the worker.
  ~LocalEngine() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  const std::string& architecture() const override { return architecture_; }
  int64_t context_limit() const override { return ContextLimit(); }
  std::shared_ptr<const Tokenizer> tokenizer() const override {
    return tokenizer_.ok() ? *tokenizer_ : nullptr;
  }
  int64_t vocab_size() const override { return model_->hparams().vocab_size; }
  // <eos> and the end-of-turn marker (Gemma 3 <end_of_turn>, Gemma 4 <turn|>, both id 106); Gemma 4
  // also hands control back with <|tool_response> (50) after a tool call.
  std::vector<int32_t> default_stop_tokens() const override {
    if (model_->hparams().family == ModelFamily::kGemma4) return {1, 106, 50};
    return {1, 106};
  }

  Status ChatReady() const override {
    if (!tokenizer_.ok()) return tokenizer_.status();
    return Template().status();
  }

  Result<std::vector<int32_t>> Tokenize(const RequestInput& input) const override {
    const int given = (input.tokens.empty() ? 0 : 1) + (input.text ? 1 : 0) + (input.chat ? 1 : 0);
    if (given != 1) {
      return InvalidArgumentError(
          given == 0 ? "the request has no input (give tokens, text or chat messages)"
                     : "the request has more than one input (tokens, text, chat)");
    }
    std::vector<int32_t> ids;
    if (!input.tokens.empty()) {
      ids = input.tokens;
    } else {
      if (!tokenizer_.ok()) return tokenizer_.status();
      if (input.text) {
        GL_ASSIGN_OR_RETURN(ids, (*tokenizer_)->Encode(*input.text));
      } else {
        const Result<ChatTemplate>& chat_template = Template();
        if (!chat_template.ok()) return chat_template.status();
        ChatTemplateInputs in;
        // The request's JSON is copied below, and copies recurse per level: bound it first.
        const StatusCode bad = StatusCode::kInvalidArgument;
        GL_RETURN_IF_ERROR(
            CheckJsonDepth(input.chat->messages, kMaxChatJsonDepth, "messages", bad));
        if (input.chat->tools) {
          GL_RETURN_IF_ERROR(CheckJsonDepth(*input.chat->tools, kMaxChatJsonDepth, "tools", bad));
        }
        if (input.chat->openai_format) {
          GL_ASSIGN_OR_RETURN(in.messages, NormalizeOpenAiMessages(input.chat->messages));
        } else {
          in.messages = input.chat->messages;
        }
        in.tools = input.chat->tools;
        in.enable_thinking = input.chat->enable_thinking;
        in.add_generation_prompt = true;
        // The template's markers are control tokens; the same text inside messages is not.
        GL_ASSIGN_OR_RETURN(ids, TokenizeChat(*chat_template, std::move(in), **tokenizer_));
      }
    }
    if (ids.empty()) return InvalidArgumentError("the prompt has no tokens");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_size()) {
        return InvalidArgumentError("prompt token " + std::to_string(i) + ": id " +
                                    std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                                    std::to_string(vocab_size()) + ")");
      }
    }
    return ids;
  }

  Result<std::unique_ptr<RequestHandle>> Submit(Request request) override {
    GL_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<RequestHandle>> handles,
                        SubmitSamples(std::move(request), 1));
    return std::move(handles.front());
  }

  Result<std::vector<std::unique_ptr<RequestHandle>>> SubmitSamples(Request request,
                                                                    int n) override {
    constexpr int kMaxSamples = 128;
    if (n < 1 || n > kMaxSamples) {
      return InvalidArgumentError("n must be in [1, " + std::to_string(kMaxSamples) + "], got " +
                                  std::to_string(n));
    }
    if (request.max_tokens < 0) return InvalidArgumentError("max_tokens must be >= 0");
    if (request.logprobs < -1 || request.logprobs > kMaxTopLogprobs) {
      return InvalidArgumentError("logprobs must be in [-1, " + std::to_string(kMaxTopLogprobs) +
                                  "], got " + std::to_string(request.logprobs));
    }
    GL_RETURN_IF_ERROR(request.sampling.Validate());
    GL_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, Tokenize(request.input));
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(prompt.size()), request.max_tokens));
    const bool gemma4 = model_->hparams().family == ModelFamily::kGemma4;
    const bool parse =
        request.parse_reply == ReplyParsing::kOn ||
        (request.parse_reply == ReplyParsing::kAuto && gemma4 && request.input.chat.has_value());
    GL_RETURN_IF_ERROR(CheckFits(static_cast<int64_t>(prompt.size()), request.max_tokens));
    Work work;
    if (request.constraint) {
      if (!request.stop.empty()) {
        return InvalidArgumentError(
            "stop strings cannot be combined with a constraint (cutting the text would break the "
            "value); the value ends by itself");
      }
      if (request.input.chat && request.input.chat->enable_thinking.value_or(false)) {
        return InvalidArgumentError(
            "a constraint cannot be combined with thinking (it would constrain the thoughts)");
      }
      GL_ASSIGN_OR_RETURN(work.vocab, Vocab());
      GL_ASSIGN_OR_RETURN(work.constraint, compile_cache_.Get(*request.constraint));
      if (request.max_tokens < work.constraint->min_bytes) {
        return InvalidArgumentError(
            "max_tokens " + std::to_string(request.max_tokens) +
            " cannot finish the constraint: " + "its shortest value takes up to " +
            std::to_string(work.constraint->min_bytes) + " tokens");
      }
    }
    work.priority = request.priority;
    work.prompt = std::move(prompt);
    work.state = std::make_shared<RequestState>(next_id_.fetch_add(1));
    for (int i = 1; i < n; ++i)
      work.samples.push_back(std::make_shared<RequestState>(next_id_.fetch_add(1)));
    work.parse = parse && !request.constraint;
    work.request = std::make_shared<const Request>(std::move(request));
    std::vector<std::unique_ptr<RequestHandle>> handles;
    handles.push_back(std::make_unique<RequestHandle>(work.state));
    for (const auto& state : work.samples)
      handles.push_back(std::make_unique<RequestHandle>(state));
    GL_RETURN_IF_ERROR(Enqueue(std::move(work), n));
    return handles;
  }

  Result<Completion> Generate(Request request) override {
    GL_ASSIGN_OR_RETURN(std::unique_ptr<RequestHandle> handle, Submit(std::move(request)));
    return handle->Wait();
  }

  Result<ScoreResult> Score(const ScoreRequest& request) override {
    if (request.top_k < 1)
      return InvalidArgumentError("top_k must be >= 1, got " + std::to_string(request.top_k));
    GL_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, Tokenize(request.input));
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(tokens.size()), 0));
    GL_RETURN_IF_ERROR(CheckFits(static_cast<int64_t>(tokens.size()), 0));
    Work work;
    work.prompt = std::move(tokens);
    work.score = std::make_shared<std::promise<Result<ScoreResult>>>();
    work.top_k = request.top_k;
    std::future<Result<ScoreResult>> result = work.score->get_future();
    GL_RETURN_IF_ERROR(Enqueue(std::move(work)));
    return result.get();
  }

  EngineStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    EngineStats s = stats_;
    s.queued += static_cast<int64_t>(queue_.size());  // handed over, not yet seen by the scheduler
    return s;
  }

 private:
  // The vocabulary index constrained requests share, built on first use (about a second for a
  // 262k vocabulary).
  Result<std::shared_ptr<const constrain::VocabIndex>> Vocab() const {
    if (!tokenizer_.ok()) return tokenizer_.status();
    std::call_once(vocab_once_,
                   [this] { vocab_.emplace(constrain::VocabIndex::Build(**tokenizer_)); });
    return *vocab_;
  }

  // The chat template, loaded on first use (a checkpoint without one falls back to a built-in
  // format with a warning, which only chat requests should print).
  const Result<ChatTemplate>& Template() const {
    std::call_once(template_once_, [this] {
      template_.emplace(ChatTemplate::Load(model_path_, options_.template_path));
    });
    return *template_;
  }

  // The positions a request may use: EngineOptions::max_context, or (0) the model's context
  // length, or (unknown) no limit.
  int64_t ContextLimit() const {
    if (options_.max_context > 0) return options_.max_context;
    return model_->hparams().context_length > 0 ? model_->hparams().context_length : INT64_MAX;
  }

  // prompt + max_tokens within the limit, without overflowing on a huge max_tokens.
  Status CheckLength(int64_t prompt, int64_t max_tokens) const {
    const int64_t limit = ContextLimit();
    if (prompt > limit || max_tokens > limit - prompt) {
      const std::string need =
          max_tokens > INT64_MAX - prompt ? "more than 2^63" : std::to_string(prompt + max_tokens);
      return ResourceExhaustedError(need + " positions (prompt " + std::to_string(prompt) +
                                    " + max_tokens " + std::to_string(max_tokens) +
                                    ") exceed the context size " + std::to_string(limit) +
                                    " (raise max_context)");
    }
    return Status::Ok();
  }

  // The KV pool can hold the request at its longest (prompt + max_tokens, fed in chunks of
  // max_batch) with nothing else running. Reads only the pool's fixed geometry: any thread.
  Status CheckFits(int64_t prompt, int64_t max_tokens) const {
    const KvCache& kv = scheduler_->kv();
    if (kv.budget_bytes() == 0) return Status::Ok();
    const int64_t need = kv.BytesForSequence(prompt + max_tokens, options_.max_batch);
    if (need <= kv.budget_bytes()) return Status::Ok();
    auto size = [](int64_t bytes) {
      char text[32];
      const double kib = static_cast<double>(bytes) / 1024.0;
      if (kib < 1024.0) {
        std::snprintf(text, sizeof text, "%.1f KiB", kib);
      } else {
        std::snprintf(text, sizeof text, "%.1f MiB", kib / 1024.0);
      }
      return std::string(text);
    };
    char msg[320];
    std::snprintf(
        msg, sizeof msg,
        "the request needs up to %s of KV cache (prompt %lld + max_tokens %lld positions) but the "
        "pool holds %s (kv_budget_bytes): lower max_tokens or raise the budget",
        size(need).c_str(), static_cast<long long>(prompt), static_cast<long long>(max_tokens),
        size(kv.budget_bytes()).c_str());
    return ResourceExhaustedError(msg);
  }

  // `requests`: how many the work counts as (its samples).
  Status Enqueue(Work work, int requests = 1) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return CancelledError("the engine is shutting down");
      const int64_t queued = static_cast<int64_t>(queue_.size()) + stats_.queued;
      if (queued >= options_.max_queued_requests) {
        return UnavailableError("the request queue is full (" + std::to_string(queued) +
                                " waiting; max_queued_requests)");
      }
      work.order = next_order_++;
      work.submitted = SchedulerClock::now();
      queue_.push_back(std::move(work));
      stats_.submitted += requests;
    }
    cv_.notify_one();
    return Status::Ok();
  }

  // Hands new work to the scheduler and steps it while anything runs or waits; sleeps otherwise.
  void WorkerLoop() {
    for (;;) {
      std::deque<Work> incoming;
      bool shutdown = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !queue_.empty() || !scheduler_->Idle(); });
        incoming.swap(queue_);
        shutdown = shutdown_;
      }
      for (Work& w : incoming) scheduler_->Add(std::move(w));
      if (shutdown) {
        // Ends every request as cancelled (samples spawned while ending come round again).
        while (!scheduler_->Idle()) scheduler_->Step(/*stopping=*/true);
        return;
      }
      if (!scheduler_->Step(/*stopping=*/false)) {
        // Requests wait but none can start yet: look again soon (timeouts, cancels, new work).
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(5),
                     [this] { return shutdown_ || !queue_.empty(); });
      }
    }
  }

  const std::string model_path_;
  std::unique_ptr<ops::Backend> backend_;  // declared before the model whose weights it prepared
  std::unique_ptr<Model> model_;
  EngineOptions options_;
  Result<std::shared_ptr<const Tokenizer>> tokenizer_;
  mutable std::once_flag template_once_;
  mutable std::optional<Result<ChatTemplate>> template_;
  mutable std::once_flag vocab_once_;
  mutable std::optional<Result<std::shared_ptr<const constrain::VocabIndex>>> vocab_;
  // Requests with the same constraint share its grammar and lexer tables (masks computed once).
  constrain::CompileCache compile_cache_;
  std::string architecture_;

  mutable std::mutex mu_;  // guards the fields below and the stats the scheduler publishes
  std::condition_variable cv_;
  std::deque<Work> queue_;  // submitted, not yet handed to the scheduler
  bool shutdown_ = false;
  uint64_t next_order_ = 0;
  EngineStats stats_;
  std::atomic<uint64_t> next_id_{1};
  std::unique_ptr<Scheduler> scheduler_;  // the worker's; built before it starts
  std::thread worker_;                    // last: started once everything above exists
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& model_path,
                                             const EngineOptions& options) {
  if (options.max_context < 0 || options.max_batch < 1 || options.max_queued_requests < 1 ||
      options.max_running_requests < 1 || options.kv_block_rows < 1 ||
      options.kv_budget_bytes < 0 || options.queue_timeout_ms < 0 ||
      !(options.decode_latency_factor == 0 || options.decode_latency_factor >= 1)) {
    return InvalidArgumentError(
        "max_context, kv_budget_bytes and queue_timeout_ms must be >= 0; max_batch, "
        "max_queued_requests, "
        "max_running_requests and kv_block_rows >= 1; decode_latency_factor 0 or >= 1");
  }
  const std::optional<KvType> kv_type = KvTypeFromName(options.kv_type);
  if (!kv_type) {
    return InvalidArgumentError("kv_type '" + options.kv_type +
                                "' is not a KV cache type (accepted: " + KvTypeNames() + ")");
  }
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(model_path));
  // Before the weights are quantized or bound: the geometry is in the metadata.
  GL_RETURN_IF_ERROR(KvCache::Validate(ck.hparams(), *kv_type));
  // A GGUF's vocabulary comes from the metadata the checkpoint already parsed.
  Result<std::shared_ptr<const Tokenizer>> tokenizer =
      ck.gguf() != nullptr ? text::TokenizerFromGguf(*ck.gguf()) : Tokenizer::Load(model_path);
  if (!options.quantize.empty()) {
    GL_ASSIGN_OR_RETURN(QuantMix mix, ParseQuantMix(options.quantize));
    GL_RETURN_IF_ERROR(QuantizeCheckpointInMemory(ck, mix, options.threads));
  }
  GL_ASSIGN_OR_RETURN(std::unique_ptr<ops::Backend> backend,
                      ops::CreateBackend(ops::BackendOptions{"cpu", options.threads}));
  GL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                      LoadModel(std::make_shared<const Checkpoint>(std::move(ck)), *backend));
  EngineOptions resolved = options;
  if (resolved.kv_budget_bytes == 0) {
    // Measured after the weights are in: what is left, with a quarter kept for everything else.
    constexpr int64_t kFallback = int64_t{4} << 30;
    const std::optional<int64_t> available = AvailableMemoryBytes();
    resolved.kv_budget_bytes =
        available ? std::max<int64_t>(*available / 4 * 3, int64_t{64} << 20) : kFallback;
  }
  return std::unique_ptr<Engine>(new LocalEngine(model_path, std::move(backend), std::move(model),
                                                 resolved, *kv_type, std::move(tokenizer)));
}

}  // namespace gemma_local
