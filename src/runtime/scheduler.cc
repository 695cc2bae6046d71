#include "runtime/scheduler.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <span>

#include "constrain/matcher.h"
#include "ops/reference/ref_ops.h"
#include "runtime/activation_dump.h"
#include "runtime/reply_assembler.h"
#include "runtime/sampler.h"

namespace gemma_local {
namespace {

double MillisBetween(SchedulerClock::time_point a, SchedulerClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The k most likely ids of a log-probability row; ties break toward the lower
// id.
std::vector<std::pair<int32_t, float>> TopK(const std::vector<float>& logprobs, int k) {
  if (k <= 0)
    return {};  // logprobs = 0: the chosen token's only; no pass over the
                // vocabulary
  std::vector<int32_t> ids(logprobs.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t kk = std::min(ids.size(), static_cast<size_t>(k));
  std::partial_sort(ids.begin(), ids.begin() + kk, ids.end(), [&](int32_t a, int32_t b) {
    return logprobs[a] != logprobs[b] ? logprobs[a] > logprobs[b] : a < b;
  });
  std::vector<std::pair<int32_t, float>> out;
  for (size_t i = 0; i < kk; ++i) out.emplace_back(ids[i], logprobs[ids[i]]);
  return out;
}

}  // namespace

struct Scheduler::Sequence {
  Work work;
  int32_t id = 0;               // KV cache sequence
  std::vector<int32_t> tokens;  // the prompt, then every generated id
  int64_t computed = 0;         // positions whose K/V is cached
  int64_t planned = 0;          // positions in this step's batch
  size_t generated = 0;
  int64_t cached_tokens = 0;  // prompt positions the prefix cache supplied at the start
  bool started = false;       // admitted at least once
  bool prompt_done = false;   // the prompt's last logits were computed
  SchedulerClock::time_point start, prompt_done_at, first_token, last_token;
  std::optional<ReplyAssembler> text;
  std::optional<Sampler> sampler;
  std::vector<int32_t> stop_tokens;
  ScoreResult score;
  std::unique_ptr<constrain::Matcher> matcher;  // constrained requests
  constrain::TokenMask mask;

  bool scoring() const { return work.state == nullptr; }
  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - computed; }
};

Scheduler::Scheduler(const Model& model, ops::Backend& backend,
                     std::shared_ptr<const Tokenizer> tokenizer,
                     std::vector<int32_t> model_stop_tokens, const SchedulerOptions& options,
                     const KvCacheOptions& kv_options, std::mutex* stats_mu, EngineStats* stats)
    : model_(model),
      backend_(backend),
      tokenizer_(std::move(tokenizer)),
      model_stop_tokens_(std::move(model_stop_tokens)),
      options_(options),
      kv_(model.hparams(), kv_options),
      stats_mu_(stats_mu),
      stats_(stats) {
  PublishStats();
}

Scheduler::~Scheduler() = default;

void Scheduler::Add(Work work) {
  waiting_.push_back(MakeSequence(std::move(work)));
  PublishStats();
}

std::unique_ptr<Scheduler::Sequence> Scheduler::MakeSequence(Work work) {
  auto s = std::make_unique<Sequence>();
  s->id = next_seq_id_++;
  s->tokens = work.prompt;
  if (!work.score) {
    const Request& r = *work.request;
    if (!r.ignore_model_stop_tokens) s->stop_tokens = model_stop_tokens_;
    s->stop_tokens.insert(s->stop_tokens.end(), r.stop_token_ids.begin(), r.stop_token_ids.end());
    s->text.emplace(tokenizer_, s->stop_tokens, r.stop, work.parse);
    s->sampler.emplace(r.sampling);
    if (work.constraint) {
      s->matcher = std::make_unique<constrain::Matcher>(work.constraint->grammar, work.vocab,
                                                        s->stop_tokens, work.constraint->lexer);
    }
  }
  s->work = std::move(work);
  return s;
}

void Scheduler::SpawnSamples(Sequence& s, const float* logits_row) {
  std::vector<std::shared_ptr<RequestState>> samples;
  samples.swap(s.work.samples);
  for (size_t i = 0; i < samples.size(); ++i) {
    Work w;
    w.order = s.work.order;
    w.priority = s.work.priority;
    w.submitted = s.work.submitted;
    w.prompt = s.work.prompt;
    w.state = samples[i];
    w.parse = s.work.parse;
    w.constraint = s.work.constraint;  // shared: all samples run on this thread
    w.vocab = s.work.vocab;
    auto request = std::make_shared<Request>(*s.work.request);
    request->sampling.seed += i + 1;
    w.request = std::move(request);
    std::unique_ptr<Sequence> child = MakeSequence(std::move(w));
    // Forked: the prompt's full blocks shared, its partial block copied; the first token comes
    // from the same logits. Otherwise it waits like any request (prefix hits still apply).
    if (logits_row != nullptr && static_cast<int64_t>(running_.size()) < options_.max_running &&
        kv_.Fork(s.id, child->id).ok()) {
      child->computed = s.computed;
      child->started = true;
      child->start = s.start;
      child->prompt_done = true;
      child->prompt_done_at = s.prompt_done_at;
      child->cached_tokens = s.computed;  // none of its prompt is run again
      Sequence& c = *child;
      running_.push_back(std::move(child));
      Deliver(c, logits_row);
    } else {
      waiting_.push_back(std::move(child));
    }
  }
}

int64_t Scheduler::PromptBudget(const Sequence& s, int64_t budget, int64_t capped_budget,
                                SchedulerClock::time_point earliest_first_token) {
  return s.work.submitted <= earliest_first_token ? budget : std::min(budget, capped_budget);
}

void Scheduler::Spend(const Sequence& s, int64_t n, SchedulerClock::time_point earliest_first_token,
                      int64_t* budget, int64_t* capped_budget) {
  *budget -= n;
  if (s.work.submitted > earliest_first_token) *capped_budget -= n;
  *capped_budget = std::min(*capped_budget, *budget);
}

bool Scheduler::Idle() const { return waiting_.empty() && running_.empty(); }

bool Scheduler::Stopping(const Sequence& s, bool stopping) const {
  return stopping || (s.work.state != nullptr && s.work.state->cancelled());
}

void Scheduler::Release(Sequence& s) {
  kv_.Clear(s.id);
  for (auto* list : {&running_, &waiting_}) {
    auto it =
        std::find_if(list->begin(), list->end(), [&](const auto& p) { return p.get() == &s; });
    if (it != list->end()) {
      list->erase(it);  // destroys `s`
      return;
    }
  }
}

void Scheduler::Preempt(Sequence& s) {
  kv_.Clear(s.id);
  s.computed = 0;
  auto it =
      std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == &s; });
  waiting_.push_back(std::move(*it));
  running_.erase(it);
  std::lock_guard<std::mutex> lock(*stats_mu_);
  ++stats_->preemptions;
}

void Scheduler::PublishStats() {
  const KvCacheStats kv = kv_.Stats();
  std::lock_guard<std::mutex> lock(*stats_mu_);
  stats_->running = static_cast<int64_t>(running_.size());
  stats_->queued = static_cast<int64_t>(waiting_.size());
  stats_->kv_budget_bytes = kv.budget_bytes;
  stats_->kv_bytes_in_use = kv.bytes_in_use;
  stats_->kv_blocks_in_use = kv.blocks_in_use;
  stats_->kv_blocks_free = kv.blocks_free;
  stats_->kv_blocks_cached = kv.blocks_cached;
  stats_->prefix_cache_queries = kv.prefix_queries;
  stats_->prefix_cache_hits = kv.prefix_hits;
}

void Scheduler::Finish(Sequence& s, Event final) {
  // Samples not started yet run on their own (they are not cancelled with this one).
  if (!s.work.samples.empty()) SpawnSamples(s, nullptr);
  const auto now = SchedulerClock::now();
  final.final = true;
  final.prompt_tokens = s.work.prompt;
  final.usage.prompt_tokens = static_cast<int64_t>(s.work.prompt.size());
  final.usage.completion_tokens = static_cast<int64_t>(s.generated);
  final.usage.cached_tokens = s.cached_tokens;
  if (s.started) {
    s.text->Finish(&final.deltas);
    // The decoder's last flush can complete a stop string too.
    const bool ended_early = final.finish_reason == "cancelled" || final.finish_reason == "error";
    if (s.text->stopped() && !ended_early) final.finish_reason = "stop";
    final.reply_parsed = s.work.parse;
    if (const ParsedReply* reply = s.text->reply(); reply != nullptr && reply->malformed) {
      final.malformed = true;
      final.malformed_reason = reply->malformed_reason;
    }
    if (s.matcher) {
      // The budget ran out exactly as the value completed: nothing was cut.
      if (final.finish_reason == "length" && s.matcher->Complete()) final.finish_reason = "stop";
      const bool complete =
          s.matcher->finished() || (final.finish_reason == "stop" && s.matcher->Complete());
      std::vector<int32_t> generated(s.tokens.end() - static_cast<std::ptrdiff_t>(s.generated),
                                     s.tokens.end());
      if (!generated.empty() && std::find(s.stop_tokens.begin(), s.stop_tokens.end(),
                                          generated.back()) != s.stop_tokens.end()) {
        generated.pop_back();
      }
      Result<std::string> text = tokenizer_->Decode(generated);
      final.constraint =
          constrain::JudgeOutput(*s.work.constraint, complete, text.ok() ? *text : std::string());
    }
    final.timings.queue_ms = MillisBetween(s.work.submitted, s.start);
    final.timings.prompt_ms = MillisBetween(s.start, s.prompt_done ? s.prompt_done_at : now);
    if (s.prompt_done) final.timings.gen_ms = MillisBetween(s.prompt_done_at, now);
    if (s.generated > 0) {
      final.timings.ttft_ms = MillisBetween(s.start, s.first_token);
      final.timings.decode_ms = MillisBetween(s.first_token, s.last_token);
    } else if (s.prompt_done) {
      final.timings.ttft_ms = final.timings.prompt_ms;
    }
  } else {
    final.timings.queue_ms = MillisBetween(s.work.submitted, now);
  }
  std::shared_ptr<RequestState> state = s.work.state;
  {
    std::lock_guard<std::mutex> lock(*stats_mu_);
    if (s.prompt_done)
      stats_->prompt_tokens += static_cast<int64_t>(s.work.prompt.size()) - s.cached_tokens;
    stats_->generated_tokens += static_cast<int64_t>(s.generated);
    if (final.finish_reason == "cancelled") {
      ++stats_->cancelled;
    } else if (final.finish_reason == "error") {
      ++stats_->failed;
      if (final.error.code() == StatusCode::kDeadlineExceeded) ++stats_->timed_out;
    } else {
      ++stats_->completed;
    }
  }
  Release(s);
  // Stats first: a reader that saw the final event sees the stats that include
  // it.
  PublishStats();
  state->Finish(std::move(final));
}

void Scheduler::FinishScore(Sequence& s, Result<ScoreResult> result) {
  auto promise = s.work.score;
  {
    std::lock_guard<std::mutex> lock(*stats_mu_);
    if (result.ok()) {
      stats_->prompt_tokens += static_cast<int64_t>(s.tokens.size());
      ++stats_->completed;
    } else if (result.status().code() == StatusCode::kCancelled) {
      ++stats_->cancelled;
    } else {
      ++stats_->failed;
      if (result.status().code() == StatusCode::kDeadlineExceeded) ++stats_->timed_out;
    }
  }
  Release(s);
  PublishStats();
  promise->set_value(std::move(result));
}

namespace {

// Disallowed ids get -inf; ids past the mask (a model vocabulary larger than the tokenizer's)
// are never allowed.
void ApplyMask(const constrain::TokenMask& mask, std::vector<float>& row) {
  const std::span<const uint64_t> words = mask.words();
  const size_t n = row.size();
  for (size_t w = 0; w * 64 < n; ++w) {
    const uint64_t bits = w < words.size() ? words[w] : 0;
    if (bits == ~uint64_t{0}) continue;
    const size_t end = std::min(n, (w + 1) * 64);
    for (size_t i = w * 64; i < end; ++i) {
      if (((bits >> (i - w * 64)) & 1) == 0) row[i] = -std::numeric_limits<float>::infinity();
    }
  }
}

Event EndEvent(const std::string& reason, Status error = Status::Ok()) {
  Event e;
  e.finish_reason = reason;
  e.error = std::move(error);
  return e;
}

}  // namespace

void Scheduler::Deliver(Sequence& s, const float* logits_row) {
  const auto now = SchedulerClock::now();
  if (!s.prompt_done) {
    s.prompt_done = true;
    s.prompt_done_at = now;
  }
  if (!s.work.samples.empty()) SpawnSamples(s, logits_row);
  const Request& r = *s.work.request;
  if (static_cast<int64_t>(s.generated) >= r.max_tokens) return Finish(s, EndEvent("length"));
  const auto V = static_cast<size_t>(model_.hparams().vocab_size);
  row_.assign(logits_row, logits_row + V);
  Event step;
  if (r.logprobs >= 0) {
    logprob_row_.resize(V);
    ref::LogSoftmax(logits_row, static_cast<int64_t>(V), logprob_row_.data());
  }
  if (s.matcher) {
    // The mask first: penalties, temperature and the truncations then act on allowed ids only.
    Status masked = s.matcher->FillMask(&s.mask);
    if (!masked.ok()) {
      // A value that is complete with no stop token to end it (ignore_model_stop_tokens) ends
      // here; anything else is a dead end, which the tests show never happens.
      if (s.matcher->Complete()) return Finish(s, EndEvent("stop"));
      return Finish(s, EndEvent("error", masked));
    }
    ApplyMask(s.mask, row_);
  }
  int32_t next;
  if (s.matcher) {
    next = SampleConstrained(s, r.max_tokens - static_cast<int64_t>(s.generated));
  } else {
    next = s.sampler->Next(row_, s.tokens, s.generated);
  }
  if (s.matcher) {
    if (Status accepted = s.matcher->Accept(next); !accepted.ok()) {
      return Finish(s, EndEvent("error", InternalError("sampled a token the constraint forbids: " +
                                                       accepted.message())));
    }
  }
  const auto token_time = SchedulerClock::now();
  {
    std::lock_guard<std::mutex> lock(*stats_mu_);
    if (s.generated == 0) {
      stats_->ttft.Observe(MillisBetween(s.work.submitted, token_time));
    } else {
      stats_->itl.Observe(MillisBetween(s.last_token, token_time));
    }
  }
  s.last_token = token_time;
  if (s.generated == 0) s.first_token = s.last_token;
  ++s.generated;
  s.tokens.push_back(next);
  step.tokens.push_back(next);
  if (r.logprobs >= 0)
    step.logprobs.push_back({next, logprob_row_[next], TopK(logprob_row_, r.logprobs)});
  const bool stop_string = s.text->Push(next, &step.deltas);
  s.work.state->Push(std::move(step));
  if (stop_string ||
      std::find(s.stop_tokens.begin(), s.stop_tokens.end(), next) != s.stop_tokens.end()) {
    return Finish(s, EndEvent("stop"));
  }
  if (static_cast<int64_t>(s.generated) >= r.max_tokens) return Finish(s, EndEvent("length"));
}

// Always complete: a sampled token after which the value could no longer finish in the tokens left
// (one token can add a long required part: an optional key, a branch) is struck out and the
// sampler draws again (up to 8 times, on the same masked logits); failing that, the token that
// shortens the completion most is forced. The invariant "shortest completion (bytes) <= tokens
// left" then holds at every step, so the value is complete when the budget runs out.
int32_t Scheduler::SampleConstrained(Sequence& s, int64_t tokens_left) {
  constrain::Matcher& m = *s.matcher;
  steer_row_ = row_;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int32_t next = s.sampler->Next(row_, s.tokens, s.generated);
    if (next < 0 || next >= s.mask.size() || !s.mask.Test(next)) break;  // nothing allowed left
    if (m.CompletionBytesAfter(next) <= tokens_left - 1) return next;
    s.mask.Reset(next);
    if (s.mask.Empty()) break;
    steer_row_[static_cast<size_t>(next)] = -std::numeric_limits<float>::infinity();
    row_ = steer_row_;
  }
  // The token that shortens the completion most (a stop token once the value is complete);
  // FillMask's mask, not the struck-out one, so it is always there.
  Status refilled = m.FillMask(&s.mask);
  const int32_t forced = refilled.ok() ? m.SteerToken(s.mask) : -1;
  if (forced >= 0) return forced;
  row_ = steer_row_;
  return s.sampler->Next(row_, s.tokens, s.generated);
}

void Scheduler::MeasureStep(double ms, int64_t decode_positions, int64_t prompt_positions) {
  constexpr double kWeight = 0.2;  // of the newest step
  const auto blend = [](double& avg, double x) { avg = avg == 0 ? x : avg + kWeight * (x - avg); };
  if (prompt_positions == 0) {
    blend(decode_step_ms_, ms);
  } else if (decode_positions > 0 && decode_step_ms_ > 0) {
    blend(prefill_position_ms_,
          std::max(0.0, ms - decode_step_ms_) / static_cast<double>(prompt_positions));
  } else if (prefill_position_ms_ == 0) {
    // A prompt alone: an upper bound (it includes reading the weights once) until a mixed step.
    prefill_position_ms_ = ms / static_cast<double>(prompt_positions);
  }
}

bool Scheduler::Step(bool stopping) {
  const auto now = SchedulerClock::now();
  // 1. End what was cancelled (or everything, when stopping) and what waited
  // too long.
  std::vector<Sequence*> ending;
  for (const auto& s : running_) {
    if (Stopping(*s, stopping)) ending.push_back(s.get());
  }
  std::vector<Sequence*> timed_out;
  for (const auto& s : waiting_) {
    if (Stopping(*s, stopping)) {
      ending.push_back(s.get());
    } else if (!s->started && options_.queue_timeout_ms > 0 &&
               MillisBetween(s->work.submitted, now) >
                   static_cast<double>(options_.queue_timeout_ms)) {
      timed_out.push_back(s.get());
    }
  }
  for (Sequence* s : ending) {
    if (s->scoring()) {
      FinishScore(*s, CancelledError(stopping ? "the engine shut down before the request finished"
                                              : "the request was cancelled"));
    } else {
      Finish(*s, EndEvent("cancelled"));
    }
  }
  for (Sequence* s : timed_out) {
    const Status error = DeadlineExceededError(
        "the request waited " +
        std::to_string(static_cast<int64_t>(MillisBetween(s->work.submitted, now))) +
        " ms in the queue without starting (queue timeout " +
        std::to_string(options_.queue_timeout_ms) + " ms)");
    if (s->scoring()) {
      FinishScore(*s, error);
    } else {
      Finish(*s, EndEvent("error", error));
    }
  }

  // 2. Plan the running requests' positions: generating ones first (one token
  // each), then prompt chunks in admission order. When their new blocks do not
  // fit, preempt the newest and replan.
  bool preempted = false;
  int64_t budget = 0, bytes = 0, capped_budget = 0;
  int64_t n_decode = 0;
  SchedulerClock::time_point earliest_first_token = SchedulerClock::time_point::max();
  for (;;) {
    budget = options_.step_tokens;
    bytes = 0;
    n_decode = 0;
    for (const auto& s : running_) s->planned = 0;
    for (const auto& s : running_) {
      if (s->pending() == 1 && budget > 0) {
        s->planned = 1;
        --budget;
        ++n_decode;
      }
    }
    // Beside generating requests, prompt positions only up to the step latency the factor allows
    // (capped_budget), except for a burst: a request submitted before every generating one had
    // its first token arrived together with them, and is read at full speed (its burst-mates'
    // streams had not started when it came); later arrivals are metered in. The same test makes
    // requests queued behind max_running (and preempted ones, resumed) burst-mates of the streams
    // that started after they arrived: under a backlog the cap does not meter them, and a step
    // beside running streams is bounded by step_tokens only.
    capped_budget = budget;
    earliest_first_token = SchedulerClock::time_point::max();
    if (n_decode > 0 && options_.decode_latency_factor > 0 && decode_step_ms_ > 0 &&
        prefill_position_ms_ > 0) {
      const double room = (options_.decode_latency_factor - 1.0) * decode_step_ms_;
      const auto cap = std::max<int64_t>(1, static_cast<int64_t>(room / prefill_position_ms_));
      capped_budget = std::min(budget, cap);
      for (const auto& s : running_) {
        if (s->generated > 0) earliest_first_token = std::min(earliest_first_token, s->first_token);
      }
    }
    for (const auto& s : running_) {
      if (s->pending() > 1 && budget > 0) {
        s->planned =
            std::min(s->pending(), PromptBudget(*s, budget, capped_budget, earliest_first_token));
        Spend(*s, s->planned, earliest_first_token, &budget, &capped_budget);
      }
    }
    for (const auto& s : running_) {
      if (s->planned > 0) bytes += kv_.BytesToReserve(s->id, s->planned);
    }
    if (bytes <= kv_.BytesAvailable() || running_.size() <= 1) break;
    Preempt(*running_.back());
    preempted = true;
  }

  // 3. Admit waiting requests (priority, then arrival) while the step, the
  // running limit and the pool allow, keeping one block per group of headroom
  // for every running request's next token. Not in a step that preempted: the
  // room just made is for the requests already running.
  if (!preempted) {
    int64_t headroom_per_request = 0;
    for (int64_t b : kv_.GroupBlockBytes()) headroom_per_request += b;
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int64_t>(running_.size()) < options_.max_running) {
      auto best = waiting_.begin();
      for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        const Work& a = (*it)->work;
        const Work& b = (*best)->work;
        if (a.priority > b.priority || (a.priority == b.priority && a.order < b.order)) best = it;
      }
      Sequence& s = **best;
      if (s.computed == 0 && !s.scoring()) {
        // Reuse the longest cached prefix; the last token is always computed
        // (its logits).
        s.computed = kv_.AttachPrefix(s.id, s.tokens, static_cast<int64_t>(s.tokens.size()) - 1);
        if (!s.started) s.cached_tokens = s.computed;
      }
      const int64_t n =
          std::min(s.pending(), PromptBudget(s, budget, capped_budget, earliest_first_token));
      const int64_t need = kv_.BytesToReserve(s.id, n);
      const int64_t headroom = static_cast<int64_t>(running_.size()) * headroom_per_request;
      if (n == 0 || (!running_.empty() && bytes + need + headroom > kv_.BytesAvailable())) {
        kv_.Clear(s.id);  // an attached prefix goes back to the cache
        s.computed = 0;
        break;
      }
      s.planned = n;
      Spend(s, n, earliest_first_token, &budget, &capped_budget);
      bytes += need;
      if (!s.started) {
        s.started = true;
        s.start = now;
      }
      running_.push_back(std::move(*best));
      waiting_.erase(best);
    }
  }

  // 4. The batch, in running order.
  Batch batch;
  std::vector<Sequence*> in_batch;
  for (const auto& s : running_) {
    if (s->planned == 0) continue;
    in_batch.push_back(s.get());
    const auto last = static_cast<int64_t>(s->tokens.size()) - 1;
    for (int64_t p = s->computed; p < s->computed + s->planned; ++p) {
      batch.push_back({s->id, p, s->tokens[static_cast<size_t>(p)], s->scoring() || p == last});
    }
  }
  PublishStats();
  if (batch.empty()) return false;

  // 5. Forward, with every row reserved first.
  const auto step_start = SchedulerClock::now();
  Status st = kv_.Reserve(batch);
  if (st.ok()) {
    ops::ForwardCounters counters;
    ops::ForwardContext ctx{&backend_, &counters, nullptr, &workspace_};
    std::optional<ActivationDump> dump;
    if (!options_.dump_activations.empty()) {
      dump.emplace(options_.dump_activations, forward_index_++);
      ctx.activations = &*dump;
    }
    st = model_.Forward(batch, kv_, ctx, &logits_);
    if (dump && st.ok()) st = dump->status();
    std::lock_guard<std::mutex> lock(*stats_mu_);
    ++stats_->forward_calls;
    stats_->lm_head_passes += counters.lm_head_passes;
    stats_->logit_rows += counters.logit_rows;
  }
  if (!st.ok()) {
    for (Sequence* s : in_batch) {
      if (s->scoring()) {
        FinishScore(*s, st);
      } else {
        Finish(*s, EndEvent("error", st));
      }
    }
    return true;
  }
  kv_.Commit(batch);
  MeasureStep(MillisBetween(step_start, SchedulerClock::now()), n_decode,
              static_cast<int64_t>(batch.size()) - n_decode);

  // 6. Deliver: logits rows come in batch order, one per entry that wanted
  // them.
  const int64_t V = model_.hparams().vocab_size;
  std::vector<std::pair<Sequence*, const float*>> sample;
  size_t row = 0;
  size_t entry = 0;
  for (Sequence* s : in_batch) {
    const int64_t first = s->computed;
    s->computed += s->planned;
    for (int64_t p = first; p < s->computed; ++p, ++entry) {
      if (!batch[entry].want_logits) continue;
      const float* logits = logits_.data() + static_cast<int64_t>(row++) * V;
      if (!s->scoring()) {
        sample.emplace_back(s, logits);
      } else if (p == static_cast<int64_t>(
                          s->score.positions.size())) {  // not recorded before a preemption
        logprob_row_.resize(static_cast<size_t>(V));
        ref::LogSoftmax(logits, V, logprob_row_.data());
        const float next = p + 1 < static_cast<int64_t>(s->tokens.size())
                               ? logprob_row_[static_cast<size_t>(s->tokens[p + 1])]
                               : 0.0f;
        s->score.positions.push_back(PositionScores{TopK(logprob_row_, s->work.top_k), next});
      }
    }
  }
  for (Sequence* s : in_batch) {  // before Deliver, which may end (and free) generating ones
    if (s->scoring() && s->pending() == 0) {
      s->score.tokens = s->tokens;
      FinishScore(*s, std::move(s->score));
    }
  }
  for (auto& [s, logits] : sample) Deliver(*s, logits);
  PublishStats();
  return true;
}

}  // namespace gemma_local
