// Single-request engine over Model::Forward and SimpleKvCache. The scheduler (continuous
// batching, paged cache) replaces the internals later behind the same public API.
#include "gemma_local/engine.h"

#include <algorithm>
#include <chrono>

#include "model/checkpoint.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "model/quantize.h"
#include "ops/reference/ref_ops.h"
#include "runtime/kv_cache.h"
#include "runtime/sampler.h"

namespace gemma_local {
namespace {

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

class LocalEngine final : public Engine {
 public:
  LocalEngine(std::unique_ptr<ThreadPool> pool, std::unique_ptr<Model> model, const EngineOptions& options)
      : pool_(std::move(pool)), model_(std::move(model)), options_(options) {}

  int64_t vocab_size() const override { return model_->hparams().vocab_size; }
  // <eos> and the end-of-turn marker (Gemma 3 <end_of_turn>, Gemma 4 <turn|>, both id 106); Gemma 4
  // also hands control back with <|tool_response> (50) after a tool call.
  std::vector<int32_t> default_stop_tokens() const override {
    if (model_->hparams().family == ModelFamily::kGemma4) return {1, 106, 50};
    return {1, 106};
  }

  Result<std::vector<PositionScores>> Score(const std::vector<int32_t>& tokens, int top_k) override {
    if (top_k < 1) return InvalidArgumentError("top_k must be >= 1, got " + std::to_string(top_k));
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(tokens.size())));
    SimpleKvCache cache(model_->hparams(), 1, options_.max_context, options_.max_batch);
    std::vector<PositionScores> out;
    std::vector<float> logits, logprobs(static_cast<size_t>(vocab_size()));
    for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(options_.max_batch)) {
      const size_t end = std::min(tokens.size(), start + static_cast<size_t>(options_.max_batch));
      Batch batch;
      for (size_t i = start; i < end; ++i) batch.push_back({0, static_cast<int64_t>(i), tokens[i], true});
      GL_RETURN_IF_ERROR(model_->Forward(batch, cache, &logits));
      for (size_t r = 0; r < batch.size(); ++r) {
        ref::LogSoftmax(logits.data() + r * vocab_size(), vocab_size(), logprobs.data());
        out.push_back(TopK(logprobs, top_k));
      }
    }
    return out;
  }

  Result<GenerateResult> Generate(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token) override {
    if (prompt.empty()) return InvalidArgumentError("the prompt has no tokens");
    if (options.max_tokens < 0) return InvalidArgumentError("max_tokens must be >= 0");
    GL_RETURN_IF_ERROR(options.sampling.Validate());
    Sampler sampler(options.sampling);
    std::vector<int32_t> context = prompt;
    GL_RETURN_IF_ERROR(CheckLength(static_cast<int64_t>(prompt.size()) + options.max_tokens));
    SimpleKvCache cache(model_->hparams(), 1, options_.max_context, options_.max_batch);
    GenerateResult result;
    result.finish_reason = "length";
    std::vector<float> logits;
    auto start = std::chrono::steady_clock::now();
    for (size_t s = 0; s < prompt.size(); s += static_cast<size_t>(options_.max_batch)) {
      const size_t e = std::min(prompt.size(), s + static_cast<size_t>(options_.max_batch));
      Batch batch;
      for (size_t i = s; i < e; ++i) batch.push_back({0, static_cast<int64_t>(i), prompt[i], i + 1 == prompt.size()});
      GL_RETURN_IF_ERROR(model_->Forward(batch, cache, &logits));
    }
    result.prompt_ms = MillisSince(start);
    start = std::chrono::steady_clock::now();
    int64_t pos = static_cast<int64_t>(prompt.size());
    while (static_cast<int64_t>(result.tokens.size()) < options.max_tokens) {
      const int32_t next = sampler.Next(logits, context, result.tokens.size());
      result.tokens.push_back(next);
      context.push_back(next);
      if (on_token && !on_token(next)) break;
      if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), next) != options.stop_tokens.end()) {
        result.finish_reason = "stop";
        break;
      }
      if (static_cast<int64_t>(result.tokens.size()) == options.max_tokens) break;
      GL_RETURN_IF_ERROR(model_->Forward({{0, pos++, next, true}}, cache, &logits));
    }
    result.gen_ms = MillisSince(start);
    return result;
  }

 private:
  Status CheckLength(int64_t n) const {
    if (n > options_.max_context) {
      return ResourceExhaustedError(std::to_string(n) + " positions exceed the context size " +
                                    std::to_string(options_.max_context) + " (raise max_context)");
    }
    return Status::Ok();
  }

  static PositionScores TopK(const std::vector<float>& logprobs, int k) {
    std::vector<int32_t> ids(logprobs.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    const size_t kk = std::min(ids.size(), static_cast<size_t>(k));
    // Ties break toward the lower id so results are deterministic.
    std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), [&](int32_t a, int32_t b) {
      return logprobs[a] != logprobs[b] ? logprobs[a] > logprobs[b] : a < b;
    });
    PositionScores p;
    for (size_t i = 0; i < kk; ++i) p.top.emplace_back(ids[i], logprobs[ids[i]]);
    return p;
  }

  std::unique_ptr<ThreadPool> pool_;  // declared first: outlives the model that uses it
  std::unique_ptr<Model> model_;
  EngineOptions options_;
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& model_path, const EngineOptions& options) {
  if (options.max_context < 1 || options.max_batch < 1) {
    return InvalidArgumentError("max_context and max_batch must be >= 1");
  }
  GL_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::Open(model_path));
  if (!options.quantize.empty()) {
    GL_ASSIGN_OR_RETURN(QuantMix mix, ParseQuantMix(options.quantize));
    GL_RETURN_IF_ERROR(QuantizeCheckpointInMemory(ck, mix, options.threads));
  }
  auto pool = std::make_unique<ThreadPool>(options.threads);
  GL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                      LoadModel(std::make_shared<const Checkpoint>(std::move(ck)), ops::Context{pool.get()}));
  return std::unique_ptr<Engine>(new LocalEngine(std::move(pool), std::move(model), options));
}

}  // namespace gemma_local
