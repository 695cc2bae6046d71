// The scheduler behind the engine API: continuous batching, chunked prefill,
// the KV pool's budget (admission errors, preemption), queue timeouts,
// priorities, and the rule that a request's tokens and logprobs never depend on
// what runs beside it.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/test_support.h"
#include "runtime/runtime_test_support.h"
#include "gemma_local/engine.h"
#include "runtime/kv_cache.h"
#include "testgen/make_test_model.h"

namespace gemma_local {
namespace {

std::unique_ptr<Engine> OpenEngine(const std::string& preset, EngineOptions options) {
  if (options.threads == 0) options.threads = 2;
  Result<std::unique_ptr<Engine>> e = Engine::Open(testing::PresetModelPath(preset), options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

// The bytes of KV one request of `positions` positions holds at most (the
// engine's admission rule).
int64_t RequestBytes(const std::string& preset, int64_t positions, int64_t chunk,
                     int64_t block_rows) {
  KvCache probe(*testgen::PresetShape(preset), KvCacheOptions{block_rows, 0});
  return probe.BytesForSequence(positions, chunk);
}

// Half the prompts start with one of two shared prefixes (system prompts), so
// prefix-cache hits happen in the mix.
std::vector<int32_t> SharedPrefix(int which) {
  std::vector<int32_t> p = {2};
  for (int i = 1; i < 21; ++i) p.push_back(200 + which * 50 + i);
  return p;
}

std::unique_ptr<RequestHandle> Handle(Result<std::unique_ptr<RequestHandle>> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(*r) : nullptr;
}

Request Make(std::mt19937& rng, int64_t vocab, int index) {
  Request r;
  std::vector<int32_t> ids = {2};
  if (index % 2 == 0) ids = SharedPrefix(index % 4 / 2);
  const int n = static_cast<int>(ids.size()) + 3 +
                static_cast<int>(rng() % 30);  // longer than the windows (8, 16)
  while (static_cast<int>(ids.size()) < n)
    ids.push_back(3 + static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab - 3)));
  r.input = RequestInput::Tokens(ids);
  r.max_tokens = 4 + static_cast<int64_t>(rng() % 24);
  r.ignore_model_stop_tokens = index % 3 != 0;
  if (index % 2 == 1) {
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 40;
    r.sampling.seed = 1000 + static_cast<uint64_t>(index);
  }
  if (index % 4 == 0) r.logprobs = 3;
  return r;
}

void ExpectSame(const Completion& got, const Completion& want, const std::string& what) {
  EXPECT_EQ(got.tokens, want.tokens) << what;
  EXPECT_EQ(got.finish_reason, want.finish_reason) << what;
  ASSERT_EQ(got.logprobs.size(), want.logprobs.size()) << what;
  for (size_t k = 0; k < got.logprobs.size(); ++k) {
    EXPECT_EQ(got.logprobs[k].logprob, want.logprobs[k].logprob) << what << " token " << k;
    EXPECT_EQ(got.logprobs[k].top, want.logprobs[k].top) << what << " token " << k;
  }
}

// Requests run alone (one at a time, whole prompt per forward call) and then
// all together under small prompt chunks and a KV budget that forces
// preemption: identical tokens and logprobs.
void OutputsDoNotDependOnWhatRunsBeside(const std::string& preset) {
  std::mt19937 rng(7);
  EngineOptions alone_options;
  alone_options.max_running_requests = 1;
  alone_options.prefix_caching = false;
  std::unique_ptr<Engine> alone = OpenEngine(preset, alone_options);
  ASSERT_NE(alone, nullptr);
  const int64_t vocab = alone->vocab_size();
  std::vector<Request> requests;
  std::vector<Completion> want;
  for (int i = 0; i < 14; ++i) {
    requests.push_back(Make(rng, vocab, i));
    Result<Completion> c = alone->Generate(requests.back());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    want.push_back(*c);
  }
  // The pool holds: 0 = no limit; 3 or 1 of the longest request (prompt 53 + 28
  // tokens).
  for (const int64_t budget_requests : {0, 3, 1}) {
    EngineOptions o;
    o.max_batch = 7;
    o.max_running_requests = 6;
    o.kv_block_rows = 4;
    if (budget_requests > 0)
      o.kv_budget_bytes = budget_requests * RequestBytes(preset, 53 + 28, 7, 4);
    std::unique_ptr<Engine> engine = OpenEngine(preset, o);
    ASSERT_NE(engine, nullptr);
    std::vector<size_t> order(requests.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::unique_ptr<RequestHandle>> handles(requests.size());
    for (size_t i : order) {
      Result<std::unique_ptr<RequestHandle>> h = engine->Submit(requests[i]);
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      handles[i] = std::move(*h);
      if (rng() % 3 == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 4));  // arrivals mid-run
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      Result<Completion> got = handles[i]->Wait();
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ExpectSame(
          *got, want[i],
          preset + " request " + std::to_string(i) + " budget " + std::to_string(budget_requests));
    }
    const EngineStats s = engine->Stats();
    EXPECT_EQ(s.completed, static_cast<int64_t>(requests.size()));
    EXPECT_EQ(s.running, 0);
    EXPECT_EQ(s.queued, 0);
    EXPECT_EQ(s.kv_blocks_in_use, 0) << "every block is free again";
    EXPECT_EQ(s.kv_bytes_in_use, 0);
    EXPECT_GT(s.prefix_cache_hits, 0) << "shared prefixes were meant to hit";
    if (budget_requests == 1) {
      EXPECT_GT(s.preemptions, 0) << preset << ": the budget was meant to force preemption";
    }
    if (budget_requests > 0) {
      EXPECT_EQ(s.kv_budget_bytes, o.kv_budget_bytes);
    }
    std::printf("%s budget %lld: %lld forward calls, %lld preemptions\n", preset.c_str(),
                static_cast<long long>(budget_requests), static_cast<long long>(s.forward_calls),
                static_cast<long long>(s.preemptions));
  }
}

TEST(Scheduler, OutputsDoNotDependOnWhatRunsBesideGemma3) {
  OutputsDoNotDependOnWhatRunsBeside("tiny");
}
TEST(Scheduler, OutputsDoNotDependOnWhatRunsBesideGemma4KvSharing) {
  OutputsDoNotDependOnWhatRunsBeside("g4-e2b-like");
}
TEST(Scheduler, OutputsDoNotDependOnWhatRunsBesideGemma4Moe) {
  OutputsDoNotDependOnWhatRunsBeside("g4-26b-like");
}

// A conversation's next turn starts with the previous prompt and reply: their
// full blocks come from the prefix cache, and the output is the one computed
// from scratch.
TEST(Scheduler, ANextTurnReusesThePreviousTurnsBlocks) {
  for (const std::string preset : {"tiny", "g4-e2b-like"}) {
    std::unique_ptr<Engine> cached = OpenEngine(preset, EngineOptions{});
    EngineOptions cold_options;
    cold_options.prefix_caching = false;
    std::unique_ptr<Engine> cold = OpenEngine(preset, cold_options);
    ASSERT_TRUE(cached && cold);
    Request first;
    std::vector<int32_t> prompt = {2};
    for (int i = 1; i < 40; ++i) prompt.push_back(300 + i);
    first.input = RequestInput::Tokens(prompt);
    first.max_tokens = 12;
    first.ignore_model_stop_tokens = true;
    Result<Completion> a = cached->Generate(first);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->usage.cached_tokens, 0);
    Request next = first;
    std::vector<int32_t> turn = prompt;
    turn.insert(turn.end(), a->tokens.begin(), a->tokens.end());
    for (int i = 0; i < 9; ++i) turn.push_back(400 + i);
    next.input = RequestInput::Tokens(turn);
    next.logprobs = 2;
    Result<Completion> b = cached->Generate(next);
    Result<Completion> b_cold = cold->Generate(next);
    ASSERT_TRUE(b.ok() && b_cold.ok());
    // 40 + 12 + 9 = 61 positions: the 48 in three full blocks of 16 include
    // generated ones.
    EXPECT_EQ(b->usage.cached_tokens, 48) << preset;
    EXPECT_EQ(b_cold->usage.cached_tokens, 0);
    ExpectSame(*b, *b_cold, preset);
    const EngineStats st = cached->Stats();
    EXPECT_EQ(st.prefix_cache_hits, 48);
    EXPECT_EQ(st.prompt_tokens, 40 + 61 - 48) << "cached positions are not run";
  }
}

// n samples of one request: the prompt runs once, its KV is shared copy-on-write, and sample i
// is exactly the request run alone with seed + i.
TEST(Scheduler, SamplesShareThePromptAndEqualSeededRequestsAlone) {
  EngineOptions o;
  o.max_batch = 8;
  std::unique_ptr<Engine> engine = OpenEngine("g4-e2b-like", o);
  EngineOptions cold_options;
  cold_options.prefix_caching = false;
  std::unique_ptr<Engine> cold = OpenEngine("g4-e2b-like", cold_options);
  ASSERT_TRUE(engine && cold);
  Request r;
  std::vector<int32_t> prompt = {2};
  for (int i = 1; i < 37; ++i) prompt.push_back(300 + 3 * i);
  r.input = RequestInput::Tokens(prompt);
  r.max_tokens = 10;
  r.ignore_model_stop_tokens = true;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 77;
  r.logprobs = 1;
  Result<std::vector<std::unique_ptr<RequestHandle>>> handles = engine->SubmitSamples(r, 4);
  ASSERT_TRUE(handles.ok()) << handles.status().ToString();
  ASSERT_EQ(handles->size(), 4u);
  std::vector<Completion> got;
  for (auto& h : *handles) {
    Result<Completion> c = h->Wait();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    got.push_back(*c);
  }
  for (int i = 0; i < 4; ++i) {
    Request alone = r;
    alone.sampling.seed = 77 + static_cast<uint64_t>(i);
    Result<Completion> want = cold->Generate(alone);
    ASSERT_TRUE(want.ok());
    ExpectSame(got[static_cast<size_t>(i)], *want, "sample " + std::to_string(i));
  }
  EXPECT_NE(got[0].tokens, got[1].tokens) << "different seeds, different samples (almost surely)";
  EXPECT_EQ(got[3].usage.cached_tokens, 37) << "a sample runs none of the prompt";
  const EngineStats s = engine->Stats();
  EXPECT_EQ(s.submitted, 4);
  EXPECT_EQ(s.completed, 4);
  EXPECT_EQ(s.prompt_tokens, 37) << "the prompt ran once";
  EXPECT_EQ(s.kv_blocks_in_use, 0);
  EXPECT_EQ(engine->SubmitSamples(r, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->SubmitSamples(r, 129).status().code(), StatusCode::kInvalidArgument);
}

// Samples that find no free running slot when the prompt completes wait like any request (and
// reuse the prompt's cached blocks); samples of a primary cancelled before its prompt finished
// are queued the same way. Either way each equals its seeded request alone.
TEST(Scheduler, SamplesWithoutRoomOrWithACancelledPrimaryEqualSeededRequestsAlone) {
  EngineOptions cold_options;
  cold_options.prefix_caching = false;
  std::unique_ptr<Engine> cold = OpenEngine("tiny", cold_options);
  ASSERT_NE(cold, nullptr);
  Request r;
  std::vector<int32_t> prompt = {2};
  for (int i = 1; i < 40; ++i) prompt.push_back(300 + 5 * i);
  r.input = RequestInput::Tokens(prompt);
  r.max_tokens = 6;
  r.ignore_model_stop_tokens = true;
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 5;
  std::vector<Completion> want;
  for (int i = 0; i < 3; ++i) {
    Request alone = r;
    alone.sampling.seed = 5 + static_cast<uint64_t>(i);
    Result<Completion> c = cold->Generate(alone);
    ASSERT_TRUE(c.ok());
    want.push_back(*c);
  }
  for (bool cancel_primary : {false, true}) {
    EngineOptions o;
    o.max_running_requests = 1;  // no room to fork: the samples queue
    o.max_batch = 4;             // the prompt takes ten steps: time to cancel it first
    std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
    ASSERT_NE(engine, nullptr);
    Result<std::vector<std::unique_ptr<RequestHandle>>> handles = engine->SubmitSamples(r, 3);
    ASSERT_TRUE(handles.ok()) << handles.status().ToString();
    if (cancel_primary) (*handles)[0]->Cancel();
    for (int i = 0; i < 3; ++i) {
      Result<Completion> c = (*handles)[static_cast<size_t>(i)]->Wait();
      const std::string what = std::string(cancel_primary ? "cancelled primary, " : "no room, ") +
                               "sample " + std::to_string(i);
      if (cancel_primary && i == 0) {
        if (c.ok()) EXPECT_EQ(c->finish_reason, "cancelled") << what;
        continue;
      }
      ASSERT_TRUE(c.ok()) << what << ": " << c.status().ToString();
      ExpectSame(*c, want[static_cast<size_t>(i)], what);
    }
    const EngineStats s = engine->Stats();
    EXPECT_EQ(s.kv_blocks_in_use, 0);
    EXPECT_EQ(s.running, 0);
  }
}

// The step-latency cap: with decode_latency_factor 1 a step beside generating requests takes at
// most one prompt position. A burst (requests submitted before any of them had a first token) is
// still read at full speed; a request arriving after streams started is metered in, one position
// per step.
TEST(Scheduler, LatencyCapMetersLateArrivalsButNotABurst) {
  EngineOptions o;
  o.max_batch = 64;
  o.decode_latency_factor = 1.0;
  std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
  ASSERT_NE(engine, nullptr);
  auto request = [](int salt, int prompt, int64_t max_tokens) {
    Request r;
    std::vector<int32_t> ids = {2};
    for (int i = 1; i < prompt; ++i) ids.push_back(300 + (salt * 17 + i * 3) % 200);
    r.input = RequestInput::Tokens(ids);
    r.max_tokens = max_tokens;
    r.ignore_model_stop_tokens = true;
    return r;
  };
  // Measured step costs first (the cap needs both a decode step's and a prompt position's).
  ASSERT_TRUE(engine->Generate(request(0, 20, 4)).ok());

  // A burst: a 1,000-token prompt (16 steps of 64: the others arrive while it is read, before any
  // first token, however slowly this thread runs) and 4 prompts of 40 beside it, then 20 decode
  // steps: about 19 + 20 steps. Metered, the 4 prompts' 160 positions would take 100 more.
  int64_t before = engine->Stats().forward_calls;
  std::vector<std::unique_ptr<RequestHandle>> burst;
  burst.push_back(Handle(engine->Submit(request(0, 1000, 1))));
  for (int i = 1; i <= 4; ++i) burst.push_back(Handle(engine->Submit(request(i, 40, 20))));
  for (auto& h : burst) ASSERT_TRUE(h->Wait().ok());
  EXPECT_LT(engine->Stats().forward_calls - before, 60) << "the burst was metered";

  // A stream that is generating, then a 40-token prompt: about one position per step.
  std::unique_ptr<RequestHandle> stream = Handle(engine->Submit(request(5, 4, 400)));
  for (int got = 0; got < 5;) {
    std::optional<Event> e = stream->Next();
    ASSERT_TRUE(e.has_value());
    got += static_cast<int>(e->tokens.size());
  }
  before = engine->Stats().forward_calls;
  std::unique_ptr<RequestHandle> late = Handle(engine->Submit(request(6, 40, 1)));
  ASSERT_TRUE(late->Wait().ok());
  EXPECT_GE(engine->Stats().forward_calls - before, 30) << "the late prompt was not metered";
  stream->Cancel();
  while (stream->Next()) {
  }
}

TEST(Scheduler, RequestsDecodeTogether) {
  EngineOptions o;
  o.max_running_requests = 8;
  std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
  ASSERT_NE(engine, nullptr);
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (int i = 0; i < 8; ++i) {
    Request r;
    r.input = RequestInput::Tokens({2, 300 + i, 301});
    r.max_tokens = 16;
    r.ignore_model_stop_tokens = true;
    handles.push_back(Handle(engine->Submit(r)));
  }
  for (auto& h : handles) ASSERT_TRUE(h->Wait().ok());
  const EngineStats s = engine->Stats();
  // One at a time would be 8 x 16 forward calls; together, about 16 plus
  // arrivals.
  EXPECT_LT(s.forward_calls, 48) << "requests did not share forward passes";
  EXPECT_EQ(s.generated_tokens, 8 * 16);
  EXPECT_EQ(s.ttft.count, 8);
  EXPECT_EQ(s.itl.count, 8 * 15);
  EXPECT_GT(s.itl.sum_ms, 0);
  EXPECT_LE(s.itl.QuantileBoundMs(0.5), s.itl.QuantileBoundMs(0.99));
}

TEST(LatencyHistogram, BucketsAndQuantileBounds) {
  LatencyHistogram h;
  EXPECT_EQ(h.QuantileBoundMs(0.5), 0);
  for (double ms : {0.5, 1.0, 3.0, 40.0, 70000.0}) h.Observe(ms);
  EXPECT_EQ(h.counts[0], 2);  // <= 1 ms
  EXPECT_EQ(h.counts[2], 1);  // (2, 5]
  EXPECT_EQ(h.counts[5], 1);  // (20, 50]
  EXPECT_EQ(h.counts.back(), 1);
  EXPECT_EQ(h.count, 5);
  EXPECT_EQ(h.QuantileBoundMs(0.4), 1);
  EXPECT_EQ(h.QuantileBoundMs(0.8), 50);
  EXPECT_TRUE(std::isinf(h.QuantileBoundMs(1.0)));
}

TEST(Scheduler, ARequestThatCanNeverFitIsRefusedAndOthersRun) {
  EngineOptions o;
  o.kv_block_rows = 4;
  o.max_batch = 8;
  o.kv_budget_bytes = RequestBytes("tiny", 64, 8, 4);
  std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
  ASSERT_NE(engine, nullptr);
  Request big;
  big.input = RequestInput::Tokens({2, 300, 301});
  big.max_tokens = 500;
  Result<std::unique_ptr<RequestHandle>> refused = engine->Submit(big);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("of KV cache"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("max_tokens 500"), std::string::npos)
      << refused.status().ToString();
  Request fits = big;
  fits.max_tokens = 40;
  fits.ignore_model_stop_tokens = true;
  Result<Completion> c = engine->Generate(fits);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tokens.size(), 40u);
}

// A request that generates until cancelled (with max_context raised to 1 << 20).
Request Blocker() {
  Request blocker;
  blocker.input = RequestInput::Tokens({2, 300});
  blocker.max_tokens = 100000;
  blocker.ignore_model_stop_tokens = true;
  return blocker;
}

TEST(Scheduler, QueueTimeoutEndsAWaitingRequestWithAClearError) {
  EngineOptions o;
  o.max_running_requests = 1;
  o.queue_timeout_ms = 30;
  o.max_context = 1 << 20;  // the blocker runs until cancelled
  std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
  ASSERT_NE(engine, nullptr);
  const Request blocker = Blocker();
  std::unique_ptr<RequestHandle> running = Handle(engine->Submit(blocker));
  ASSERT_TRUE(running->Next().has_value());  // it started
  Request waiting = blocker;
  waiting.max_tokens = 4;
  Result<Completion> late = engine->Generate(waiting);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded) << late.status().ToString();
  EXPECT_NE(late.status().message().find("queue timeout 30 ms"), std::string::npos)
      << late.status().ToString();
  running->Cancel();
  EXPECT_EQ(running->Wait()->finish_reason, "cancelled");
  const EngineStats s = engine->Stats();
  EXPECT_EQ(s.timed_out, 1);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.kv_blocks_in_use, 0);
}

TEST(Scheduler, HigherPriorityStartsFirst) {
  EngineOptions o;
  o.max_running_requests = 1;
  o.max_context = 1 << 20;  // the blocker runs until cancelled
  std::unique_ptr<Engine> engine = OpenEngine("tiny", o);
  ASSERT_NE(engine, nullptr);
  const Request blocker = Blocker();
  std::unique_ptr<RequestHandle> running = Handle(engine->Submit(blocker));
  ASSERT_TRUE(running->Next().has_value());
  Request low = blocker, high = blocker;
  low.max_tokens = high.max_tokens = 30;
  high.priority = 9;
  std::unique_ptr<RequestHandle> low_handle = Handle(engine->Submit(low));
  std::unique_ptr<RequestHandle> high_handle = Handle(engine->Submit(high));
  while (engine->Stats().queued < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  running->Cancel();
  Result<Completion> l = low_handle->Wait(), h = high_handle->Wait();
  ASSERT_TRUE(l.ok() && h.ok());
  // Submitted later, started earlier: the low one waited through the high one's
  // whole run.
  EXPECT_GT(l->timings.queue_ms,
            h->timings.queue_ms + h->timings.prompt_ms + h->timings.gen_ms * 0.5);
}

// Scoring goes through the same batches: its numbers do not depend on
// generation beside it.
TEST(Scheduler, ScoresBesideGenerationEqualScoresAlone) {
  EngineOptions o;
  o.max_batch = 5;
  std::unique_ptr<Engine> engine = OpenEngine("g4-e2b-like", o);
  ASSERT_NE(engine, nullptr);
  ScoreRequest score;
  score.input =
      RequestInput::Tokens({2, 310, 320, 330, 340, 350, 360, 370, 380, 390, 400, 410, 420});
  score.top_k = 4;
  Result<ScoreResult> alone = engine->Score(score);
  ASSERT_TRUE(alone.ok());
  Request busy;
  busy.input = RequestInput::Tokens({2, 300, 301, 302, 303, 304, 305, 306});
  busy.max_tokens = 60;
  busy.ignore_model_stop_tokens = true;
  std::vector<std::unique_ptr<RequestHandle>> handles;
  for (int i = 0; i < 4; ++i) handles.push_back(Handle(engine->Submit(busy)));
  Result<ScoreResult> beside = engine->Score(score);
  ASSERT_TRUE(beside.ok());
  ASSERT_EQ(beside->positions.size(), alone->positions.size());
  for (size_t p = 0; p < alone->positions.size(); ++p)
    EXPECT_EQ(beside->positions[p].top, alone->positions[p].top) << p;
  for (auto& h : handles) EXPECT_TRUE(h->Wait().ok());
}

}  // namespace
}  // namespace gemma_local
