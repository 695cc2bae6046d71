// The engine behind the public API: requests are prepared (rendered, tokenized, validated) on the
// caller's thread and queued; one worker thread runs them in order, each on a KV cache of its
// own, streaming events into the request's handle. The scheduler (continuous batching, paged KV
// pool) replaces the worker loop later behind the same API.
#include "gemma_local/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "core/json_access.h"
#include "gemma_local/chat_template.h"
#include "gemma_local/tokenizer.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/quantize.h"
#include "ops/reference/ref_ops.h"
#include "ops/backend.h"
#include "runtime/activation_dump.h"
#include "runtime/kv_cache.h"
#include "runtime/reply_assembler.h"
#include "runtime/request_state.h"
#include "runtime/sampler.h"
#include "text/tokenizer.h"

namespace gemma_local {
namespace {

using Clock = std::chrono::steady_clock;

double MillisBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

constexpr int kMaxTopLogprobs = 20;

// The k most likely ids of a log-probability row; ties break toward the lower id.
std::vector<std::pair<int32_t, float>> TopK(const std::vector<float>& logprobs, int k) {
  if (k <= 0) return {};  // logprobs = 0: the chosen token's only; no pass over the vocabulary
  std::vector<int32_t> ids(logprobs.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t kk = std::min(ids.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), [&](int32_t a, int32_t b) {
    return logprobs[a] != logprobs[b] ? logprobs[a] > logprobs[b] : a < b;
  });
  std::vector<std::pair<int32_t, float>> out;
  for (size_t i = 0; i < kk; ++i) out.emplace_back(ids[i], logprobs[ids[i]]);
  return out;
}

// A queued unit of work: `run` on the worker, or `abandon` when the engine shuts down first.
struct Job {
  std::function<void()> run;
  std::function<void()> abandon;
};

class LocalEngine final : public Engine {
 public:
  LocalEngine(std::string model_path, std::unique_ptr<ops::Backend> backend, std::unique_ptr<Model> model,
              const EngineOptions& options, Result<std::shared_ptr<const Tokenizer>> tokenizer)
      : model_path_(std::move(model_path)),
        backend_(std::move(backend)),
        model_(std::move(model)),
        options_(options),
        tokenizer_(std::move(tokenizer)),
        architecture_(ModelFamilyName(model_->hparams().family)) {
    worker_ = std::thread([this] { WorkerLoop(); });
  }

  // Cancels the running request and every queued one (their readers get final "cancelled"
  // events), then joins the worker.
  ~LocalEngine() override {
    stopping_.store(true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  const std::string& architecture() const override { return architecture_; }
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
      return InvalidArgumentError(given == 0 ? "the request has no input (give tokens, text or chat messages)"
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
        GL_ASSIGN_OR_RETURN(std::string rendered, chat_template->Render(in));
        // The rendered template is trusted text: its turn markers are special tokens.
        GL_ASSIGN_OR_RETURN(ids, (*tokenizer_)->Encode(rendered, EncodeOptions{std::nullopt, true}));
      }
    }
    if (ids.empty()) return InvalidArgumentError("the prompt has no tokens");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_size()) {
        return InvalidArgumentError("prompt token " + std::to_string(i) + ": id " + std::to_string(ids[i]) +
                                    " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
      }
    }
    return ids;
  }

  Result<std::unique_ptr<RequestHandle>> Submit(Request request) override {
    if (request.max_tokens < 0) return InvalidArgumentError("max_tokens must be >= 0");
    if (request.logprobs < -1 || request.logprobs > kMaxTopLogprobs) {
      return InvalidArgumentError("logprobs must be in [-1, " + std::to_string(kMaxTopLogprobs) + "], got " +
                                  std::to_string(request.logprobs));
    }
    GL_RETURN_IF_ERROR(request.sampling.Validate());
    GL_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, Tokenize(request.input));
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(prompt.size()), request.max_tokens));
    const bool gemma4 = model_->hparams().family == ModelFamily::kGemma4;
    const bool parse = request.parse_reply == ReplyParsing::kOn ||
                       (request.parse_reply == ReplyParsing::kAuto && gemma4 && request.input.chat.has_value());
    auto state = std::make_shared<RequestState>(next_id_.fetch_add(1));
    auto job_request = std::make_shared<Request>(std::move(request));
    auto job_prompt = std::make_shared<std::vector<int32_t>>(std::move(prompt));
    const Clock::time_point submitted = Clock::now();
    Job job;
    job.run = [this, state, job_request, job_prompt, parse, submitted] {
      RunGenerate(*state, *job_request, *job_prompt, parse, submitted);
    };
    job.abandon = [state, job_prompt] { state->Finish(FinalEvent("cancelled", *job_prompt)); };
    GL_RETURN_IF_ERROR(Enqueue(std::move(job)));
    return std::make_unique<RequestHandle>(state);
  }

  Result<Completion> Generate(Request request) override {
    GL_ASSIGN_OR_RETURN(std::unique_ptr<RequestHandle> handle, Submit(std::move(request)));
    return handle->Wait();
  }

  Result<ScoreResult> Score(const ScoreRequest& request) override {
    if (request.top_k < 1) return InvalidArgumentError("top_k must be >= 1, got " + std::to_string(request.top_k));
    GL_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, Tokenize(request.input));
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(tokens.size()), 0));
    auto promise = std::make_shared<std::promise<Result<ScoreResult>>>();
    std::future<Result<ScoreResult>> result = promise->get_future();
    Job job;
    job.run = [this, promise, tokens, top_k = request.top_k] {
      Result<ScoreResult> r = RunScore(tokens, top_k);
      if (!r.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.failed;
        --stats_.running;
      }
      promise->set_value(std::move(r));
    };
    job.abandon = [promise] { promise->set_value(CancelledError("the engine shut down before the request ran")); };
    GL_RETURN_IF_ERROR(Enqueue(std::move(job)));
    return result.get();
  }

  EngineStats Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    EngineStats s = stats_;
    s.queued = static_cast<int64_t>(queue_.size());
    return s;
  }

 private:
  // The chat template, loaded on first use (a checkpoint without one falls back to a built-in
  // format with a warning, which only chat requests should print).
  const Result<ChatTemplate>& Template() const {
    std::call_once(template_once_, [this] { template_.emplace(ChatTemplate::Load(model_path_, options_.template_path)); });
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
      const std::string need = max_tokens > INT64_MAX - prompt ? "more than 2^63" : std::to_string(prompt + max_tokens);
      return ResourceExhaustedError(need + " positions (prompt " + std::to_string(prompt) + " + max_tokens " +
                                    std::to_string(max_tokens) + ") exceed the context size " +
                                    std::to_string(limit) + " (raise max_context)");
    }
    return Status::Ok();
  }

  Status Enqueue(Job job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return CancelledError("the engine is shutting down");
      if (static_cast<int64_t>(queue_.size()) >= options_.max_queued_requests) {
        return ResourceExhaustedError("the request queue is full (" + std::to_string(queue_.size()) +
                                      " waiting; max_queued_requests)");
      }
      queue_.push_back(std::move(job));
      ++stats_.submitted;
    }
    cv_.notify_one();
    return Status::Ok();
  }

  void WorkerLoop() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !queue_.empty(); });
        if (shutdown_) {
          std::deque<Job> left;
          left.swap(queue_);
          lock.unlock();
          for (Job& j : left) j.abandon();
          return;
        }
        job = std::move(queue_.front());
        queue_.pop_front();
        ++stats_.running;
      }
      job.run();  // ends with stats_.running decremented, before its result is delivered
    }
  }

  static Event FinalEvent(const std::string& reason, const std::vector<int32_t>& prompt) {
    Event e;
    e.final = true;
    e.finish_reason = reason;
    e.prompt_tokens = prompt;
    e.usage.prompt_tokens = static_cast<int64_t>(prompt.size());
    return e;
  }

  // Runs `batch` (one sequence's chunk) with its KV rows reserved first and committed after.
  Status ForwardOn(KvCache& cache, const Batch& batch, std::vector<float>* logits) {
    GL_RETURN_IF_ERROR(cache.Reserve(batch));
    ops::ForwardCounters counters;
    ops::ForwardContext ctx{backend_.get(), &counters, nullptr, &workspace_};
    std::optional<ActivationDump> dump;
    if (!options_.dump_activations.empty()) {
      dump.emplace(options_.dump_activations, forward_index_++);
      ctx.activations = &*dump;
    }
    const Status s = model_->Forward(batch, cache, ctx, logits);
    if (dump && s.ok()) GL_RETURN_IF_ERROR(dump->status());
    if (s.ok()) cache.Commit(batch);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.forward_calls;
    stats_.lm_head_passes += counters.lm_head_passes;
    stats_.logit_rows += counters.logit_rows;
    return s;
  }

  void RunGenerate(RequestState& state, const Request& request, const std::vector<int32_t>& prompt, bool parse,
                   Clock::time_point submitted) {
    const Clock::time_point start = Clock::now();
    Event final = FinalEvent("length", prompt);
    final.timings.queue_ms = MillisBetween(submitted, start);
    if (Stopping(state)) {
      final.finish_reason = "cancelled";
      Finish(state, std::move(final));
      return;
    }
    std::vector<int32_t> stop_tokens = request.ignore_model_stop_tokens ? std::vector<int32_t>{} : default_stop_tokens();
    stop_tokens.insert(stop_tokens.end(), request.stop_token_ids.begin(), request.stop_token_ids.end());
    ReplyAssembler text(tokenizer_.ok() ? *tokenizer_ : nullptr, stop_tokens, request.stop, parse);
    Sampler sampler(request.sampling);
    KvCache cache(model_->hparams());
    std::vector<float> logits, raw_logits, logprob_row;
    std::vector<int32_t> context = prompt, generated;
    const int64_t chunk = options_.max_batch;
    bool prompt_cut = false;  // cancelled before the prompt was through
    for (size_t s = 0; s < prompt.size(); s += static_cast<size_t>(chunk)) {
      if (Stopping(state)) {
        prompt_cut = true;
        break;
      }
      const size_t e = std::min(prompt.size(), s + static_cast<size_t>(chunk));
      Batch batch;
      for (size_t i = s; i < e; ++i) batch.push_back({0, static_cast<int64_t>(i), prompt[i], i + 1 == prompt.size()});
      const Status st = ForwardOn(cache, batch, &logits);
      if (!st.ok()) return Fail(state, std::move(final), st);
    }
    const Clock::time_point prompt_done = Clock::now();
    final.timings.prompt_ms = MillisBetween(start, prompt_done);
    Clock::time_point first_token = prompt_done, last_token = prompt_done;
    int64_t pos = static_cast<int64_t>(prompt.size());
    while (static_cast<int64_t>(generated.size()) < request.max_tokens) {
      if (Stopping(state)) {
        final.finish_reason = "cancelled";
        break;
      }
      Event step;
      if (request.logprobs >= 0) raw_logits = logits;
      const int32_t next = sampler.Next(logits, context, generated.size());
      last_token = Clock::now();
      if (generated.empty()) first_token = last_token;
      generated.push_back(next);
      context.push_back(next);
      step.tokens.push_back(next);
      if (request.logprobs >= 0) {
        logprob_row.resize(raw_logits.size());
        ref::LogSoftmax(raw_logits.data(), static_cast<int64_t>(raw_logits.size()), logprob_row.data());
        step.logprobs.push_back({next, logprob_row[next], TopK(logprob_row, request.logprobs)});
      }
      const bool stop_string = text.Push(next, &step.deltas);
      state.Push(std::move(step));
      if (stop_string || std::find(stop_tokens.begin(), stop_tokens.end(), next) != stop_tokens.end()) {
        final.finish_reason = "stop";
        break;
      }
      if (static_cast<int64_t>(generated.size()) == request.max_tokens) break;
      const Status st = ForwardOn(cache, {{0, pos++, next, true}}, &logits);
      if (!st.ok()) return Fail(state, std::move(final), st);
    }
    if (prompt_cut || (Stopping(state) && static_cast<int64_t>(generated.size()) < request.max_tokens &&
                       final.finish_reason == "length")) {
      final.finish_reason = "cancelled";
    }
    text.Finish(&final.deltas);
    // The decoder's last flush can complete a stop string too.
    if (text.stopped() && final.finish_reason != "cancelled") final.finish_reason = "stop";
    final.reply_parsed = parse;
    if (const ParsedReply* reply = text.reply(); reply != nullptr && reply->malformed) {
      final.malformed = true;
      final.malformed_reason = reply->malformed_reason;
    }
    final.usage.completion_tokens = static_cast<int64_t>(generated.size());
    final.timings.gen_ms = MillisBetween(prompt_done, Clock::now());
    final.timings.ttft_ms = MillisBetween(start, first_token);
    final.timings.decode_ms = MillisBetween(first_token, last_token);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.prompt_tokens += static_cast<int64_t>(prompt.size());
      stats_.generated_tokens += static_cast<int64_t>(generated.size());
    }
    Finish(state, std::move(final));
  }

  bool Stopping(const RequestState& state) const { return state.cancelled() || stopping_.load(); }

  void Fail(RequestState& state, Event final, const Status& error) {
    final.finish_reason = "error";
    final.error = error;
    Finish(state, std::move(final));
  }

  // Counts the outcome and delivers the final event (in that order: a reader that saw the final
  // event sees the stats that include it).
  void Finish(RequestState& state, Event final) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --stats_.running;
      if (final.finish_reason == "cancelled") {
        ++stats_.cancelled;
      } else if (final.finish_reason == "error") {
        ++stats_.failed;
      } else {
        ++stats_.completed;
      }
    }
    state.Finish(std::move(final));
  }

  Result<ScoreResult> RunScore(const std::vector<int32_t>& tokens, int top_k) {
    KvCache cache(model_->hparams());
    ScoreResult out;
    out.tokens = tokens;
    std::vector<float> logits, logprobs(static_cast<size_t>(vocab_size()));
    const size_t chunk = static_cast<size_t>(options_.max_batch);
    for (size_t start = 0; start < tokens.size(); start += chunk) {
      if (stopping_.load()) return CancelledError("the engine shut down while scoring");
      const size_t end = std::min(tokens.size(), start + chunk);
      Batch batch;
      for (size_t i = start; i < end; ++i) batch.push_back({0, static_cast<int64_t>(i), tokens[i], true});
      GL_RETURN_IF_ERROR(ForwardOn(cache, batch, &logits));
      for (size_t r = 0; r < batch.size(); ++r) {
        ref::LogSoftmax(logits.data() + r * vocab_size(), vocab_size(), logprobs.data());
        out.positions.push_back(PositionScores{TopK(logprobs, top_k)});
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prompt_tokens += static_cast<int64_t>(tokens.size());
    ++stats_.completed;
    --stats_.running;
    return out;
  }

  const std::string model_path_;
  std::unique_ptr<ops::Backend> backend_;  // declared before the model whose weights it prepared
  std::unique_ptr<Model> model_;
  int64_t forward_index_ = 0;  // worker only: numbers activation dumps
  ops::Workspace workspace_;   // worker only: activations reused across forward calls
  EngineOptions options_;
  Result<std::shared_ptr<const Tokenizer>> tokenizer_;
  mutable std::once_flag template_once_;
  mutable std::optional<Result<ChatTemplate>> template_;
  std::string architecture_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool shutdown_ = false;
  std::atomic<bool> stopping_{false};  // set first on shutdown: the running request ends too
  EngineStats stats_;
  std::atomic<uint64_t> next_id_{1};
  std::thread worker_;  // last: started once everything above exists
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& model_path, const EngineOptions& options) {
  if (options.max_context < 0 || options.max_batch < 1 || options.max_queued_requests < 1) {
    return InvalidArgumentError("max_context must be >= 0, max_batch and max_queued_requests >= 1");
  }
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(model_path));
  // A GGUF's vocabulary comes from the metadata the checkpoint already parsed.
  Result<std::shared_ptr<const Tokenizer>> tokenizer =
      ck.gguf() != nullptr ? text::TokenizerFromGguf(*ck.gguf()) : Tokenizer::Load(model_path);
  if (!options.quantize.empty()) {
    GL_ASSIGN_OR_RETURN(QuantMix mix, ParseQuantMix(options.quantize));
    GL_RETURN_IF_ERROR(QuantizeCheckpointInMemory(ck, mix, options.threads));
  }
  GL_ASSIGN_OR_RETURN(std::unique_ptr<ops::Backend> backend, ops::CreateBackend(ops::BackendOptions{"cpu", options.threads}));
  GL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                      LoadModel(std::make_shared<const Checkpoint>(std::move(ck)), *backend));
  return std::unique_ptr<Engine>(
      new LocalEngine(model_path, std::move(backend), std::move(model), options, std::move(tokenizer)));
}

}  // namespace gemma_local
