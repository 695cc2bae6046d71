// The engine's scheduler: continuous batching over the paged KV cache.
//
// Every step builds one forward batch: the next token of every running request
// that is generating, then prompt chunks of the ones still reading their prompt
// (chunked prefill), under a per-step position budget; then admits waiting
// requests (priority, then arrival order) while the budget, the running limit
// and the KV pool allow. A request whose KV does not fit is never failed: the
// newest running request is preempted (its blocks freed, its prompt and the
// tokens it generated recomputed when it is admitted again). Because every row
// of a forward pass is computed by the same operations whatever else is in the
// batch, a request's tokens and logprobs do not depend on what runs beside it,
// on preemption, or on how its prompt was chunked.
//
// Owned and driven by one thread (the engine's worker); only the stats it
// publishes are shared.
#pragma once

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "constrain/constraint_compile.h"
#include "constrain/vocab_index.h"
#include "gemma_local/engine.h"
#include "gemma_local/tokenizer.h"
#include "model/model.h"
#include "ops/backend.h"
#include "runtime/kv_cache.h"
#include "runtime/request_state.h"

namespace gemma_local {

using SchedulerClock = std::chrono::steady_clock;

struct SchedulerOptions {
  int64_t step_tokens = 256;     // positions per forward call
  int64_t max_running = 16;      // requests admitted at once
  int64_t queue_timeout_ms = 0;  // 0 = none
  // While requests are generating, prompt chunks beside them are sized so that a step takes at
  // most this many times a generating-only step (measured as the engine runs); 0 = chunks of
  // step_tokens whatever the latency.
  double decode_latency_factor = 1.8;
  std::string dump_activations;  // EngineOptions::dump_activations
};

// A request prepared by the engine (rendered, tokenized, validated, admitted as
// able to fit).
struct Work {
  uint64_t order = 0;  // arrival order
  int priority = 0;
  SchedulerClock::time_point submitted;
  std::vector<int32_t> prompt;
  // Generation (state != null).
  std::shared_ptr<RequestState> state;
  std::shared_ptr<const Request> request;
  bool parse = false;  // Gemma 4 reply parsing
  // Structured output: compiled at Submit; each sequence gets its own matcher over the vocab.
  std::shared_ptr<const constrain::CompiledConstraint> constraint;
  std::shared_ptr<const constrain::VocabIndex> vocab;
  // More samples of the same request (SubmitSamples): they start from this request's prompt KV
  // (shared copy-on-write) and its first logits, sample i seeded with seed + i.
  std::vector<std::shared_ptr<RequestState>> samples;
  // Scoring (state == null): every position's top_k log-probabilities.
  std::shared_ptr<std::promise<Result<ScoreResult>>> score;
  int top_k = 0;
};

class Scheduler {
 public:
  // `stats` (guarded by `stats_mu`) receives outcomes, token counts, forward
  // counters and the pool's state; the engine adds what it owns (its submit
  // queue).
  Scheduler(const Model& model, ops::Backend& backend, std::shared_ptr<const Tokenizer> tokenizer,
            std::vector<int32_t> model_stop_tokens, const SchedulerOptions& options,
            const KvCacheOptions& kv_options, std::mutex* stats_mu, EngineStats* stats);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Add(Work work);
  // Nothing waiting or running.
  bool Idle() const;
  // Ends cancelled and timed-out requests, runs one forward pass over the next
  // batch and delivers its tokens. With `stopping`, every request ends as
  // cancelled instead. False when there was nothing to run.
  bool Step(bool stopping);

  // The pool (for reports and admission; its geometry is fixed at
  // construction).
  const KvCache& kv() const { return kv_; }

 private:
  struct Sequence;
  void Finish(Sequence& s, Event final);
  void FinishScore(Sequence& s, Result<ScoreResult> result);
  void Preempt(Sequence& s);
  void Release(Sequence& s);  // frees its KV and drops it from the running/waiting lists
  std::unique_ptr<Sequence> MakeSequence(Work work);
  void Deliver(Sequence& s, const float* logits_row);
  // The next token of a constrained sequence from the masked row_, steered to finish within
  // `tokens_left` (this one included).
  int32_t SampleConstrained(Sequence& s, int64_t tokens_left);
  // Starts `s`'s further samples: forked from its KV after the prompt (with `logits_row`, the
  // prompt's last logits), or, without it or without room, as requests of their own.
  void SpawnSamples(Sequence& s, const float* logits_row);
  void PublishStats();
  bool Stopping(const Sequence& s, bool stopping) const;
  // The prompt positions `s` may take this step: the whole `budget` for a burst-mate (submitted
  // no later than `earliest_first_token`, the first token of the earliest generating request),
  // else no more than `capped_budget` (the step-latency cap) either.
  static int64_t PromptBudget(const Sequence& s, int64_t budget, int64_t capped_budget,
                              SchedulerClock::time_point earliest_first_token);
  // Takes `n` positions of `s` from the budgets.
  static void Spend(const Sequence& s, int64_t n, SchedulerClock::time_point earliest_first_token,
                    int64_t* budget, int64_t* capped_budget);
  void MeasureStep(double ms, int64_t decode_positions, int64_t prompt_positions);

  const Model& model_;
  ops::Backend& backend_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::vector<int32_t> model_stop_tokens_;
  SchedulerOptions options_;
  KvCache kv_;
  ops::Workspace workspace_;
  std::mutex* stats_mu_;
  EngineStats* stats_;

  std::vector<std::unique_ptr<Sequence>> waiting_;  // not admitted (new, or preempted)
  std::vector<std::unique_ptr<Sequence>> running_;  // admitted, in admission order
  int32_t next_seq_id_ = 0;
  int64_t forward_index_ = 0;  // numbers activation dumps
  // Step costs measured as the scheduler runs (exponential moving averages, ms): a step with
  // only generating requests, and each prompt position added beside them.
  double decode_step_ms_ = 0;
  double prefill_position_ms_ = 0;
  std::vector<float> logits_;
  std::vector<float> row_, logprob_row_;
  std::vector<float> steer_row_;  // the masked row before sampling (steering retries)
};

}  // namespace gemma_local
