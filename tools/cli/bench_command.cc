// `gemma-local bench`: prefill and decode speed on a synthetic prompt, time to first token, peak
// RSS, and decode speed as a share of the machine's memory bandwidth (measured here, by the same
// number of threads). A program for people and scripts (bench/compare_llamacpp), not a test.
//
// Definitions (also in bench/README.md):
//   prompt        P ids: BOS (2), then P-1 ids from BenchPromptIds (a 32-bit LCG; the llama.cpp
//                 script tests/reference/llama_bench.mjs implements the same generator).
//   prefill tok/s P / prompt_ms, where prompt_ms is the engine's time for the prompt's forward
//                 pass (one call: max_batch = P), ending with the last position's logits.
//   ttft_ms       wall time from the request's start on the engine until the first generated id:
//                 KV-cache set-up + prefill + sampling the first id.
//   decode tok/s  (G-1) / (t_last - t_first): the G-1 ids after the first, each one forward pass
//                 of one token plus sampling, over the time between the first and the last id.
//   each figure is the median over the repetitions (taken separately per figure).
//   bytes/token   weight bytes a decode step reads: every decoder tensor as stored, except the
//                 token-embedding table (one row is gathered) unless the LM head is tied to it
//                 (then the whole table is the LM head and is read every token), and the Gemma 4
//                 per-layer embedding table (row gathers too); MoE expert tensors count
//                 n_experts_used / n_experts of their size. The KV cache and activations are not
//                 counted, so this is a lower bound on the traffic.
//   bandwidth     best of several passes of a multi-threaded streaming read (sum of 64-bit words)
//                 over a buffer much larger than the last-level cache; decimal GB/s.
//   decode_bandwidth_share = decode tok/s * bytes/token / bandwidth.
// With --concurrency the command runs the serving benchmark instead (bench_serving.cc).
#include <sys/resource.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gemma_local/system_memory.h"
#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "gemma_local/engine.h"
#include "gemma_local/model_info.h"

namespace gemma_local::cli {

void AppendBenchLcgIds(int64_t n, int64_t vocab_size, uint32_t x0, std::vector<int32_t>* ids) {
  const uint32_t range = static_cast<uint32_t>(vocab_size - kBenchFirstPromptId);
  uint32_t x = x0;
  for (int64_t i = 0; i < n; ++i) {
    x = 1664525u * x + 1013904223u;
    ids->push_back(kBenchFirstPromptId + static_cast<int32_t>((x >> 8) % range));
  }
}

// Contract shared with tests/reference/llama_bench.mjs: change both or neither.
std::vector<int32_t> BenchPromptIds(int64_t n, int64_t vocab_size, uint32_t seed) {
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(n));
  ids.push_back(kBenchBosId);
  AppendBenchLcgIds(n - 1, vocab_size, seed, &ids);
  return ids;
}

// So a comparison script can check that both engines saw the same prompt (llama_bench.mjs prints
// the same checksum).
uint32_t PromptChecksum(const std::vector<int32_t>& ids) {
  uint32_t h = 2166136261u;
  for (int32_t id : ids) h = (h ^ static_cast<uint32_t>(id)) * 16777619u;
  return h;
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

struct BenchOptions {
  std::string model;
  int64_t prompt_tokens = 512;
  int64_t gen_tokens = 128;
  int threads = 0;
  std::string quantize;  // load-time quantization (EngineOptions::quantize)
  std::string kv_type = EngineOptions{}.kv_type;
  int repetitions = 3;
  uint32_t seed = 1;
  int64_t bandwidth_bytes = kGiB;
  int bandwidth_passes = 5;
  bool json = false;
};

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Read bandwidth in decimal GB/s: `threads` threads each sum their contiguous slice of a
// `bytes`-byte buffer (first-touched by the same thread, so pages sit on its NUMA node); a pass
// is timed from a barrier before the reads to a barrier after them; the best of `passes` passes
// counts (the least disturbed by other processes). Four independent accumulators let the
// compiler vectorize; a software prefetch 8 KiB ahead keeps enough cache-line misses in flight
// (as the decode kernels do): without it one core reads well below what the memory delivers,
// and the "bound" would be one the kernels beat.
double MeasureReadBandwidth(int64_t bytes, int threads, int passes) {
  constexpr size_t kPrefetchWords = 8192 / sizeof(uint64_t);
  const size_t n_words = static_cast<size_t>(bytes) / sizeof(uint64_t);
  struct Free {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  const size_t alloc_bytes = (n_words * sizeof(uint64_t) + 4095) / 4096 * 4096;
  std::unique_ptr<uint64_t, Free> buffer(
      static_cast<uint64_t*>(std::aligned_alloc(4096, alloc_bytes)));
  if (!buffer) throw std::bad_alloc();
  uint64_t* data = buffer.get();
  std::vector<uint64_t> sinks(static_cast<size_t>(threads) * 8);  // one cache line per thread
  std::vector<double> pass_ms(static_cast<size_t>(passes));
  std::barrier sync(threads);
  Clock::time_point pass_start;

  auto worker = [&](int t) {
    const size_t begin = n_words * static_cast<size_t>(t) / static_cast<size_t>(threads);
    const size_t end = n_words * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
    for (size_t i = begin; i < end; ++i) data[i] = i * 0x9E3779B97F4A7C15ull;
    for (int p = 0; p < passes; ++p) {
      sync.arrive_and_wait();
      if (t == 0) pass_start = Clock::now();
      sync.arrive_and_wait();  // nobody reads before the clock starts
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      size_t i = begin;
      for (; i + 8 <= end; i += 8) {  // one cache line per step
        __builtin_prefetch(data + i + kPrefetchWords);
        a0 += data[i] + data[i + 4];
        a1 += data[i + 1] + data[i + 5];
        a2 += data[i + 2] + data[i + 6];
        a3 += data[i + 3] + data[i + 7];
      }
      for (; i < end; ++i) a0 += data[i];
      sinks[static_cast<size_t>(t) * 8] += a0 + a1 + a2 + a3;
      sync.arrive_and_wait();
      if (t == 0) pass_ms[static_cast<size_t>(p)] = Ms(pass_start, Clock::now());
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& th : pool) th.join();

  // A volatile store of the sums keeps the compiler from dropping the reads.
  uint64_t total = 0;
  for (uint64_t s : sinks) total += s;
  volatile uint64_t keep = total;
  (void)keep;
  const double best_ms = *std::min_element(pass_ms.begin(), pass_ms.end());
  return static_cast<double>(n_words * sizeof(uint64_t)) / (best_ms * 1e-3) / 1e9;
}

struct RunTimes {
  double prompt_ms = 0;
  double ttft_ms = 0;
  double decode_ms = 0;
};

// One request of exactly `gen` ids (no stop tokens), timed by the engine as defined at the top.
Result<RunTimes> TimedRun(Engine& engine, const std::vector<int32_t>& prompt, int64_t gen) {
  Request request;
  request.input = RequestInput::Tokens(prompt);
  request.max_tokens = gen;  // greedy by default
  request.ignore_model_stop_tokens = true;
  GL_ASSIGN_OR_RETURN(Completion r, engine.Generate(std::move(request)));
  if (static_cast<int64_t>(r.tokens.size()) != gen) {
    return InternalError("generation produced " + std::to_string(r.tokens.size()) + " ids, expected " +
                         std::to_string(gen));
  }
  return RunTimes{r.timings.prompt_ms, r.timings.ttft_ms, r.timings.decode_ms};
}

int Error(const std::string& message, int code) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return code;
}

int RunBench(const BenchOptions& o) {
  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  EngineOptions eo;
  eo.threads = threads;
  eo.quantize = o.quantize;
  eo.max_context = o.prompt_tokens + o.gen_tokens;
  eo.max_batch = o.prompt_tokens;  // the whole prompt in one forward call
  eo.kv_type = o.kv_type;
  // Every repetition computes its whole prompt: with the prefix cache on, repetitions after the
  // first would reuse the first one's KV and time only the prompt's last partial block.
  eo.prefix_caching = false;
  Result<std::unique_ptr<Engine>> engine = Engine::Open(o.model, eo);
  if (!engine.ok()) return Error(engine.status().ToString(), kExitError);
  const int64_t vocab = (*engine)->vocab_size();
  if (vocab <= kBenchFirstPromptId) {
    return Error("the model's vocabulary (" + std::to_string(vocab) +
                     ") is too small for the benchmark prompt",
                 kExitError);
  }
  const std::vector<int32_t> prompt = BenchPromptIds(o.prompt_tokens, vocab, o.seed);

  // Warm-up: pages the weights in and lets the thread pool and allocator settle.
  const std::vector<int32_t> warm_prompt(prompt.begin(),
                                         prompt.begin() + std::min<int64_t>(o.prompt_tokens, 16));
  Result<RunTimes> warm = TimedRun(**engine, warm_prompt, 2);
  if (!warm.ok()) return Error(warm.status().ToString(), kExitError);

  std::vector<double> prefill_tps, decode_tps, ttft, prompt_ms, decode_ms;
  nlohmann::json runs = nlohmann::json::array();
  for (int rep = 0; rep < o.repetitions; ++rep) {
    Result<RunTimes> t = TimedRun(**engine, prompt, o.gen_tokens);
    if (!t.ok()) return Error(t.status().ToString(), kExitError);
    prompt_ms.push_back(t->prompt_ms);
    decode_ms.push_back(t->decode_ms);
    ttft.push_back(t->ttft_ms);
    prefill_tps.push_back(static_cast<double>(o.prompt_tokens) * 1000.0 /
                          std::max(t->prompt_ms, 1e-6));
    decode_tps.push_back(static_cast<double>(o.gen_tokens - 1) * 1000.0 /
                         std::max(t->decode_ms, 1e-6));
    runs.push_back({{"prompt_ms", t->prompt_ms},
                    {"ttft_ms", t->ttft_ms},
                    {"decode_ms", t->decode_ms},
                    {"prefill_tokens_per_s", prefill_tps.back()},
                    {"decode_tokens_per_s", decode_tps.back()}});
  }
  // Read before the bandwidth buffer is allocated: the model run's own high-water mark.
  const int64_t peak_rss = PeakRssBytes();
  engine->reset();  // its worker threads must not compete with the bandwidth probe

  Result<uint64_t> bytes_per_token = DecodeBytesPerToken(o.model);
  if (!bytes_per_token.ok()) return Error(bytes_per_token.status().ToString(), kExitError);
  const double bandwidth = MeasureReadBandwidth(o.bandwidth_bytes, threads, o.bandwidth_passes);
  const double decode = Median(decode_tps);
  const double share = decode * static_cast<double>(*bytes_per_token) / (bandwidth * 1e9);

  nlohmann::json out;
  out["model"] = o.model;
  out["threads"] = threads;
  out["prompt_tokens"] = o.prompt_tokens;
  out["gen_tokens"] = o.gen_tokens;
  out["repetitions"] = o.repetitions;
  out["seed"] = o.seed;
  out["kv_type"] = o.kv_type;
  out["prompt_checksum"] = PromptChecksum(prompt);
  out["prefill_tokens_per_s"] = Median(prefill_tps);
  out["decode_tokens_per_s"] = decode;
  out["ttft_ms"] = Median(ttft);
  out["prefill_ms"] = Median(prompt_ms);
  out["decode_ms"] = Median(decode_ms);
  out["peak_rss_bytes"] = peak_rss;
  out["model_bytes_per_token"] = *bytes_per_token;
  out["bandwidth_gb_per_s"] = bandwidth;
  out["bandwidth_buffer_bytes"] = o.bandwidth_bytes;
  out["decode_bandwidth_share"] = share;
  out["runs"] = runs;
  if (o.json) {
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  }
  std::printf("model            %s\n", o.model.c_str());
  std::printf("threads          %d   prompt %lld   gen %lld   repetitions %d (medians)   KV %s\n",
              threads, static_cast<long long>(o.prompt_tokens),
              static_cast<long long>(o.gen_tokens), o.repetitions, o.kv_type.c_str());
  std::printf("prefill          %10.2f tok/s   (%.1f ms)\n", Median(prefill_tps),
              Median(prompt_ms));
  std::printf("decode           %10.2f tok/s   (%lld tokens after the first in %.1f ms)\n", decode,
              static_cast<long long>(o.gen_tokens - 1), Median(decode_ms));
  std::printf("time to first    %10.2f ms\n", Median(ttft));
  std::printf("peak RSS         %10.1f MiB\n", static_cast<double>(peak_rss) / kMiB);
  std::printf("bytes per token  %10.1f MiB\n", static_cast<double>(*bytes_per_token) / kMiB);
  std::printf("bandwidth        %10.2f GB/s  (read, %d threads, %.0f MiB buffer)\n", bandwidth,
              threads, static_cast<double>(o.bandwidth_bytes) / kMiB);
  std::printf("decode share     %10.1f %% of the bandwidth bound\n", share * 100.0);
  return kExitOk;
}

}  // namespace

CommandRunner RegisterBench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto serving = std::make_shared<ServingBenchOptions>();
  auto concurrency = std::make_shared<std::string>();
  auto kv_budget = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Prefill/decode speed, time to first token, peak RSS and decode share of memory bandwidth; "
      "with --concurrency, throughput and latency under concurrent requests");
  cmd->add_option("--model", o->model, "GGUF file or Hugging Face checkpoint directory")
      ->required();
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "prompt length (BOS + pseudo-random ids)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--gen-tokens", o->gen_tokens,
                  "ids to generate (decode speed counts those after the first)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--threads", o->threads,
                  "worker threads, also for the bandwidth probe (0 = all cores)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--quantize", o->quantize,
                  "quantize weights at load (q8_0, q4_0, q4_k, ...); bytes per token still "
                  "counts the file's tensors");
  CLI::Option* repetitions =
      cmd->add_option("--repetitions", o->repetitions, "timed runs; medians are reported")
          ->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", o->seed, "prompt generator seed");
  CLI::Option* bandwidth_bytes =
      cmd->add_option("--bandwidth-bytes", o->bandwidth_bytes,
                      "bandwidth probe buffer (default 1 GiB; >= 1 MiB)")
          ->check(CLI::Range(kMiB, int64_t{1} << 40));
  CLI::Option* bandwidth_passes =
      cmd->add_option("--bandwidth-passes", o->bandwidth_passes,
                      "bandwidth probe passes (best counts)")
          ->check(CLI::Range(1, 100));
  cmd->add_option("--kv-type", o->kv_type,
                  "how the KV cache stores K/V: f16 (default), q8_0 or f32 "
                  "(EngineOptions::kv_type; both modes)");
  cmd->add_flag("--json", o->json, "print one JSON object");
  // The serving benchmark (bench_serving.cc).
  const CLI::Validator levels(
      [](std::string& text) {
        std::vector<int64_t> parsed;
        return CheckConcurrencyList(text, &parsed);
      },
      "LIST");
  CLI::Option* concurrency_opt =
      cmd->add_option("--concurrency", *concurrency,
                      "serving benchmark: comma-separated numbers of concurrent clients (e.g. "
                      "1,4,8,16), each submitting one request")
          ->check(levels);
  cmd->add_option("--shared-prefix", serving->shared_prefix,
                  "serving benchmark: leading prompt ids every request shares (< --prompt-tokens)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->needs(concurrency_opt);
  cmd->add_option("--max-batch", serving->max_batch,
                  "serving benchmark: positions per forward call (EngineOptions::max_batch)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->needs(concurrency_opt);
  cmd->add_flag("--no-prefix-cache{false}", serving->prefix_caching,
                "serving benchmark: recompute shared prompt prefixes instead of reusing their KV")
      ->needs(concurrency_opt);
  cmd->add_option("--decode-latency-factor", serving->decode_latency_factor,
                  "serving benchmark: cap a step beside generating requests at this many times a "
                  "generating-only step (EngineOptions::decode_latency_factor; 0 = no cap)")
      ->check(CLI::Range(0.0, 1000.0))
      ->needs(concurrency_opt);
  cmd->add_flag("--warm-prefix", serving->warm_prefix,
                "serving benchmark: run the shared prefix once before the clients (they find it "
                "cached; its TTFT is reported as the cold one)")
      ->needs(concurrency_opt);
  cmd->add_option("--long-prompt", serving->long_prompt,
                  "serving benchmark: one more request of this many prompt ids arrives once every "
                  "client has 4 ids (the streams' latency while a long prompt is read)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->needs(concurrency_opt);
  cmd->add_option("--kv-budget", *kv_budget,
                  "serving benchmark: KV cache pool size, e.g. 2GiB (default: 3/4 of the memory "
                  "available after loading)")
      ->needs(concurrency_opt);
  concurrency_opt->excludes(repetitions)->excludes(bandwidth_bytes)->excludes(bandwidth_passes);

  return [o, serving, concurrency, kv_budget, concurrency_opt]() {
    if (std::string error = CheckKvType(o->kv_type); !error.empty()) {
      return Error("--kv-type: " + error, kExitUsage);
    }
    if (concurrency_opt->count() == 0) return RunBench(*o);
    ServingBenchOptions s = *serving;
    if (std::string error = CheckConcurrencyList(*concurrency, &s.concurrency); !error.empty()) {
      return Error("--concurrency: " + error, kExitUsage);
    }
    if (o->prompt_tokens < 2) {
      return Error("--prompt-tokens must be at least 2 with --concurrency (BOS and at least one "
                   "id of each request's own)",
                   kExitUsage);
    }
    if (s.shared_prefix >= o->prompt_tokens) {
      return Error("--shared-prefix (" + std::to_string(s.shared_prefix) +
                       ") must be less than --prompt-tokens (" + std::to_string(o->prompt_tokens) +
                       "): each request needs ids of its own",
                   kExitUsage);
    }
    if (!kv_budget->empty()) {
      Result<int64_t> bytes = ParseByteSize(*kv_budget);
      if (!bytes.ok()) return Error("--kv-budget: " + bytes.status().message(), kExitUsage);
      if (*bytes < 1) {
        return Error("--kv-budget: must be at least 1 byte, got '" + *kv_budget + "'", kExitUsage);
      }
      s.kv_budget_bytes = *bytes;
    }
    s.model = o->model;
    s.quantize = o->quantize;
    s.kv_type = o->kv_type;
    s.threads = o->threads > 0 ? o->threads
                               : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    s.prompt_tokens = o->prompt_tokens;
    s.gen_tokens = o->gen_tokens;
    s.seed = o->seed;
    s.json = o->json;
    return RunServingBench(s);
  };
}

}  // namespace gemma_local::cli
