// `gemma-local bench --concurrency 1,4,8,16`: the engine under concurrent clients (continuous
// batching). For each level C, C client threads are released at once; each submits one request
// and reads its event stream, timestamping every event as it returns.
//
// Definitions (also in bench/README.md):
//   prompts       C prompts of P ids: BOS, then ids 1 .. N-1 the same for every request (the
//                 single-stream prompt's, LCG x0 = seed: a common system prompt), then request i's
//                 own P - max(N, 1) ids: first 256 + i mod (n_vocab - 256) (so prompts are
//                 distinct for C <= n_vocab - 256), the rest from the LCG with
//                 x0 = seed + 0x9E3779B9 * (i + 1) (mod 2^32). N = --shared-prefix (0 and 1 give
//                 the same prompts: BOS is always shared).
//   requests      greedy, no stop tokens (ignore_model_stop_tokens): exactly G ids each.
//   ttft          submit (just before Engine::Submit) -> the event carrying the first id.
//   itl           the gaps between consecutive ids of one request (each id timed by the arrival
//                 of the event carrying it), G-1 per request, pooled over all requests.
//   aggregate decode tok/s = C * (G - 1) / (t_last - t_first), t_first the earliest first id of
//                 any request, t_last the latest last id of any request.
//   percentiles   nearest rank: p-th of n sorted values = the value at rank ceil(p * n / 100).
//   peak RSS      the process's high-water mark, reset (/proc/self/clear_refs) after the engine
//                 is opened and warmed up, read when the level ends.
//   warm prefix   with --warm-prefix: before the clients, one request of the shared prefix's N
//                 ids plus the id 255 (no client's next id) generating 1, timed like a client
//                 (prefix_cold_ttft_ms); the clients then find the prefix's full blocks cached.
//   long prompt   with --long-prompt L: once every client has its first 4 ids, one more request
//                 of L ids (BOS, then the LCG at x0 = seed ^ 0x5bd1e995) generating 2 arrives;
//                 itl_during_long_prompt are the clients' gaps that end between its submit and
//                 its first id (the streams' latency while it is read), long_prompt_ttft its TTFT.
//                 Its ids are not in the level's other figures.
// Each level opens its own engine (max_running_requests = C (+ 1 with a long prompt), max_context = P + G, max_batch =
// --max-batch, prefix caching on unless --no-prefix-cache, the KV pool of --kv-budget), warms it up
// with one short request on a prompt that shares no block with the measured ones (so the prefix
// cache starts empty of them), and runs once.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <latch>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/bench.h"
#include "cli/commands.h"
#include "gemma_local/engine.h"
#include "gemma_local/system_memory.h"

namespace gemma_local::cli {

std::string CheckConcurrencyList(const std::string& text, std::vector<int64_t>* levels) {
  levels->clear();
  if (text.empty()) return "expected a comma-separated list of client counts such as 1,4,8";
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    if (item.empty() || item.size() > 9 ||
        !std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "'" + item + "' is not a number (expected a comma-separated list such as 1,4,8)";
    }
    const int64_t n = std::stoll(item);
    if (n < 1 || n > kMaxBenchConcurrency) {
      return "each level must be in [1, " + std::to_string(kMaxBenchConcurrency) + "], got " + item;
    }
    levels->push_back(n);
    if (end == text.size()) return "";
    begin = end + 1;
  }
}

std::vector<std::vector<int32_t>> ServingPrompts(int64_t clients, int64_t prompt_tokens,
                                                 int64_t shared_prefix, int64_t vocab_size,
                                                 uint32_t seed) {
  const int64_t shared = std::max<int64_t>(shared_prefix, 1);
  const std::vector<int32_t> common = BenchPromptIds(shared, vocab_size, seed);
  const int64_t range = vocab_size - kBenchFirstPromptId;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t i = 0; i < clients; ++i) {
    std::vector<int32_t> ids = common;
    ids.reserve(static_cast<size_t>(prompt_tokens));
    ids.push_back(kBenchFirstPromptId + static_cast<int32_t>(i % range));
    AppendBenchLcgIds(prompt_tokens - shared - 1, vocab_size,
                      seed + 0x9E3779B9u * static_cast<uint32_t>(i + 1), &ids);
    prompts.push_back(std::move(ids));
  }
  return prompts;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMiB = 1024.0 * 1024.0;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Nearest rank: the value at rank ceil(p * n / 100) of the n sorted values (n >= 1).
double Percentile(std::vector<double> v, int p) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const size_t rank = std::max<size_t>(1, (static_cast<size_t>(p) * n + 99) / 100);
  return v[std::min(rank, n) - 1];
}

// Linux: resets this process's peak RSS to its current RSS. False where that is not possible
// (the level's peak then includes whatever came before).
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

int Error(const std::string& message, int code) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return code;
}

struct Client {
  Clock::time_point submitted;
  std::vector<Clock::time_point> token_times;  // one per generated id
  std::string finish_reason;
  Status error;
  int64_t cached_tokens = 0;  // prompt positions the prefix cache supplied
};

// Clients that have received at least kLongPromptAfter ids (the long prompt waits for all).
constexpr size_t kLongPromptAfter = 4;

// Submits `request` (timing it in `c`) and reads its events, timestamping each id as it arrives.
// `warmed_up` (may be null) counts the clients that have received kLongPromptAfter ids.
void SubmitAndRead(Engine& engine, Request request, std::atomic<int64_t>* warmed_up, Client& c) {
  c.submitted = Clock::now();
  Result<std::unique_ptr<RequestHandle>> handle = engine.Submit(std::move(request));
  if (!handle.ok()) {
    c.error = handle.status();
    return;
  }
  while (std::optional<Event> e = (*handle)->Next()) {
    const Clock::time_point now = Clock::now();
    const size_t had = c.token_times.size();
    c.token_times.insert(c.token_times.end(), e->tokens.size(), now);
    if (warmed_up != nullptr && had < kLongPromptAfter &&
        c.token_times.size() >= kLongPromptAfter) {
      ++*warmed_up;
    }
    if (e->final) {
      c.finish_reason = e->finish_reason;
      c.error = e->error;
      c.cached_tokens = e->usage.cached_tokens;
    }
  }
}

// Greedy, no stop tokens: exactly `gen` ids.
Request BenchRequest(const std::vector<int32_t>& prompt, int64_t gen) {
  Request request;
  request.input = RequestInput::Tokens(prompt);
  request.max_tokens = gen;
  request.ignore_model_stop_tokens = true;
  return request;
}

void RunClient(Engine& engine, const std::vector<int32_t>& prompt, int64_t gen, std::latch& go,
               std::atomic<int64_t>& warmed_up, Client& c) {
  Request request = BenchRequest(prompt, gen);
  go.arrive_and_wait();  // every client submits at once
  SubmitAndRead(engine, std::move(request), &warmed_up, c);
}

struct Level {
  int64_t concurrency = 0;
  double decode_tps = 0;
  double ttft_p50 = 0, ttft_p99 = 0, itl_p50 = 0, itl_p99 = 0;
  int64_t peak_rss = 0;
  int64_t decode_tokens = 0;
  double decode_window_ms = 0;
  double wall_ms = 0;  // the first submit -> the last id
  int64_t forward_calls = 0;
  int64_t preemptions = 0;
  int64_t cached_tokens = 0;
  int64_t kv_budget_bytes = 0;
  double prefix_cold_ttft = 0;  // with --warm-prefix
  // With a long prompt:
  double long_ttft = 0;
  int64_t long_itl_count = 0;
  double long_itl_p50 = 0, long_itl_p99 = 0;
};

// Submits the long prompt once `warmed_up` reaches `clients` (or every client is done).
void RunLongPrompt(Engine& engine, const std::vector<int32_t>& prompt, int64_t clients,
                   const std::atomic<int64_t>& warmed_up, const std::atomic<int64_t>& finished,
                   Client& c) {
  while (warmed_up.load() < clients && finished.load() < clients) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  SubmitAndRead(engine, BenchRequest(prompt, 2), nullptr, c);
}

Result<Level> RunLevel(const ServingBenchOptions& o, int64_t clients, bool* rss_reset) {
  EngineOptions eo;
  eo.threads = o.threads;
  eo.quantize = o.quantize;
  eo.max_context = std::max(o.prompt_tokens + o.gen_tokens, o.long_prompt + 2);
  eo.max_batch = o.max_batch;
  eo.max_running_requests = clients + (o.long_prompt > 0 ? 1 : 0);
  eo.prefix_caching = o.prefix_caching;
  eo.kv_budget_bytes = o.kv_budget_bytes;
  eo.kv_type = o.kv_type;
  eo.decode_latency_factor = o.decode_latency_factor;
  eo.max_queued_requests = std::max<int64_t>(eo.max_queued_requests, clients);
  GL_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(o.model, eo));
  const int64_t vocab = engine->vocab_size();
  if (vocab <= kBenchFirstPromptId) {
    return InvalidArgumentError("the model's vocabulary (" + std::to_string(vocab) +
                                ") is too small for the benchmark prompt");
  }
  const std::vector<std::vector<int32_t>> prompts =
      ServingPrompts(clients, o.prompt_tokens, o.shared_prefix, vocab, o.seed);

  // Warm-up: pages the weights in and lets the thread pool and allocator settle. Its prompt
  // (BOS, then up to 15 ids from the LCG at x0 = ~seed) differs from the measured ones after BOS.
  {
    GL_ASSIGN_OR_RETURN(
        Completion unused,
        engine->Generate(BenchRequest(
            BenchPromptIds(std::min<int64_t>(o.prompt_tokens, 16), vocab, ~o.seed), 2)));
    (void)unused;
  }
  double prefix_cold_ttft = 0;
  if (o.warm_prefix) {
    std::vector<int32_t> ids = BenchPromptIds(std::max<int64_t>(o.shared_prefix, 1), vocab, o.seed);
    ids.push_back(kBenchFirstPromptId - 1);
    const Clock::time_point start = Clock::now();
    GL_ASSIGN_OR_RETURN(Completion unused, engine->Generate(BenchRequest(ids, 1)));
    (void)unused;
    prefix_cold_ttft = Ms(start, Clock::now());
  }
  const EngineStats before = engine->Stats();
  *rss_reset = ResetPeakRss() && *rss_reset;

  std::vector<Client> results(static_cast<size_t>(clients));
  std::latch go(clients);
  std::atomic<int64_t> warmed_up{0}, finished{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(clients));
  for (int64_t i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      RunClient(*engine, prompts[static_cast<size_t>(i)], o.gen_tokens, go, warmed_up,
                results[static_cast<size_t>(i)]);
      ++finished;
    });
  }
  Client long_client;
  std::thread long_thread;
  if (o.long_prompt > 0) {
    std::vector<int32_t> long_ids = BenchPromptIds(o.long_prompt, vocab, o.seed ^ 0x5bd1e995u);
    long_thread = std::thread([&, long_ids] {
      RunLongPrompt(*engine, long_ids, clients, warmed_up, finished, long_client);
    });
  }
  for (std::thread& t : threads) t.join();
  if (long_thread.joinable()) long_thread.join();
  Level level;
  level.concurrency = clients;
  level.prefix_cold_ttft = prefix_cold_ttft;
  level.peak_rss = PeakRssBytes();
  const EngineStats after = engine->Stats();
  level.forward_calls = after.forward_calls - before.forward_calls;
  level.preemptions = after.preemptions - before.preemptions;
  level.kv_budget_bytes = after.kv_budget_bytes;
  engine.reset();

  std::vector<double> ttft, itl;
  Clock::time_point first_submit = results[0].submitted;
  Clock::time_point first_token = Clock::time_point::max(), last_token = Clock::time_point::min();
  for (size_t i = 0; i < results.size(); ++i) {
    const Client& c = results[i];
    if (!c.error.ok()) {
      return c.error.WithContext("request " + std::to_string(i));
    }
    if (static_cast<int64_t>(c.token_times.size()) != o.gen_tokens || c.finish_reason != "length") {
      return InternalError("request " + std::to_string(i) + " produced " +
                           std::to_string(c.token_times.size()) + " ids (finish reason '" +
                           c.finish_reason + "'), expected " + std::to_string(o.gen_tokens));
    }
    first_submit = std::min(first_submit, c.submitted);
    first_token = std::min(first_token, c.token_times.front());
    last_token = std::max(last_token, c.token_times.back());
    ttft.push_back(Ms(c.submitted, c.token_times.front()));
    for (size_t k = 1; k < c.token_times.size(); ++k) {
      itl.push_back(Ms(c.token_times[k - 1], c.token_times[k]));
    }
    level.decode_tokens += static_cast<int64_t>(c.token_times.size()) - 1;
    level.cached_tokens += c.cached_tokens;
  }
  level.decode_window_ms = Ms(first_token, last_token);
  level.wall_ms = Ms(first_submit, last_token);
  level.decode_tps =
      static_cast<double>(level.decode_tokens) * 1000.0 / std::max(level.decode_window_ms, 1e-6);
  level.ttft_p50 = Percentile(ttft, 50);
  level.ttft_p99 = Percentile(ttft, 99);
  level.itl_p50 = Percentile(itl, 50);
  level.itl_p99 = Percentile(itl, 99);
  if (o.long_prompt > 0) {
    if (!long_client.error.ok()) return long_client.error.WithContext("the long prompt");
    if (long_client.token_times.size() != 2) {
      return InternalError("the long prompt produced " +
                           std::to_string(long_client.token_times.size()) + " ids, expected 2");
    }
    const Clock::time_point from = long_client.submitted, to = long_client.token_times.front();
    level.long_ttft = Ms(from, to);
    std::vector<double> during;
    for (const Client& c : results) {
      for (size_t k = 1; k < c.token_times.size(); ++k) {
        if (c.token_times[k] > from && c.token_times[k] <= to) {
          during.push_back(Ms(c.token_times[k - 1], c.token_times[k]));
        }
      }
    }
    level.long_itl_count = static_cast<int64_t>(during.size());
    if (!during.empty()) {
      level.long_itl_p50 = Percentile(during, 50);
      level.long_itl_p99 = Percentile(during, 99);
    }
  }
  return level;
}

}  // namespace

int RunServingBench(const ServingBenchOptions& o) {
  std::vector<Level> levels;
  bool rss_reset = true;
  for (int64_t clients : o.concurrency) {
    Result<Level> level = RunLevel(o, clients, &rss_reset);
    if (!level.ok()) return Error(level.status().ToString(), kExitError);
    levels.push_back(*level);
  }

  if (o.json) {
    nlohmann::ordered_json out;
    out["model"] = o.model;
    out["threads"] = o.threads;
    out["prompt_tokens"] = o.prompt_tokens;
    out["gen_tokens"] = o.gen_tokens;
    out["shared_prefix"] = o.shared_prefix;
    out["max_batch"] = o.max_batch;
    out["decode_latency_factor"] = o.decode_latency_factor;
    out["seed"] = o.seed;
    out["prefix_caching"] = o.prefix_caching;
    out["kv_type"] = o.kv_type;
    out["long_prompt"] = o.long_prompt;
    out["warm_prefix"] = o.warm_prefix;
    out["peak_rss_reset_per_level"] = rss_reset;
    out["levels"] = nlohmann::ordered_json::array();
    for (const Level& l : levels) {
      out["levels"].push_back({{"concurrency", l.concurrency},
                               {"aggregate_decode_tokens_per_s", l.decode_tps},
                               {"ttft_ms_p50", l.ttft_p50},
                               {"ttft_ms_p99", l.ttft_p99},
                               {"itl_ms_p50", l.itl_p50},
                               {"itl_ms_p99", l.itl_p99},
                               {"peak_rss_bytes", l.peak_rss},
                               {"requests", l.concurrency},
                               {"decode_tokens", l.decode_tokens},
                               {"decode_window_ms", l.decode_window_ms},
                               {"wall_ms", l.wall_ms},
                               {"forward_calls", l.forward_calls},
                               {"preemptions", l.preemptions},
                               {"cached_prompt_tokens", l.cached_tokens},
                               {"kv_budget_bytes", l.kv_budget_bytes}});
      if (o.warm_prefix) out["levels"].back()["prefix_cold_ttft_ms"] = l.prefix_cold_ttft;
      if (o.long_prompt > 0) {
        nlohmann::ordered_json& j = out["levels"].back();
        j["long_prompt_ttft_ms"] = l.long_ttft;
        j["itl_during_long_prompt_count"] = l.long_itl_count;
        j["itl_during_long_prompt_ms_p50"] = l.long_itl_p50;
        j["itl_during_long_prompt_ms_p99"] = l.long_itl_p99;
      }
    }
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  }
  std::printf("model   %s\n", o.model.c_str());
  std::printf(
      "threads %d   prompt %lld (shared prefix %lld)   gen %lld   max batch %lld   prefix cache "
      "%s   KV %s\n",
      o.threads, static_cast<long long>(o.prompt_tokens), static_cast<long long>(o.shared_prefix),
      static_cast<long long>(o.gen_tokens), static_cast<long long>(o.max_batch),
      o.prefix_caching ? "on" : "off", o.kv_type.c_str());
  std::printf("%11s %13s %12s %12s %11s %11s %13s %9s %11s %7s\n", "concurrency", "decode tok/s",
              "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "peak RSS MiB", "forwards",
              "preemptions", "cached");
  for (const Level& l : levels) {
    std::printf("%11lld %13.2f %12.1f %12.1f %11.2f %11.2f %13.1f %9lld %11lld %7lld\n",
                static_cast<long long>(l.concurrency), l.decode_tps, l.ttft_p50, l.ttft_p99,
                l.itl_p50, l.itl_p99, static_cast<double>(l.peak_rss) / kMiB,
                static_cast<long long>(l.forward_calls), static_cast<long long>(l.preemptions),
                static_cast<long long>(l.cached_tokens));
    if (o.warm_prefix) {
      std::printf("%11s the shared prefix cold (the warming request): TTFT %.1f ms\n", "",
                  l.prefix_cold_ttft);
    }
    if (o.long_prompt > 0) {
      std::printf("%11s long prompt of %lld ids: TTFT %.1f ms; the streams' ITL meanwhile p50 %.2f "
                  "ms, p99 %.2f ms (%lld gaps)\n",
                  "", static_cast<long long>(o.long_prompt), l.long_ttft, l.long_itl_p50,
                  l.long_itl_p99, static_cast<long long>(l.long_itl_count));
    }
  }
  std::printf(
      "decode tok/s: all requests' ids after their first, over the time from the first "
      "first id to the last id; percentiles by nearest rank%s\n",
      rss_reset ? "" : "; peak RSS could not be reset per level (process high-water mark)");
  return kExitOk;
}

}  // namespace gemma_local::cli
