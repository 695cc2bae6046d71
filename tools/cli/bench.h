// Shared by `gemma-local bench`'s two modes: the single-stream benchmark (bench_command.cc) and
// the serving benchmark under concurrent clients (bench_serving.cc). Definitions of every figure
// are at the top of those files and in bench/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gemma_local/engine.h"

namespace gemma_local::cli {

inline constexpr int32_t kBenchBosId = 2;
// Generated ids stay clear of Gemma's control and special tokens at the bottom of the vocabulary.
inline constexpr int32_t kBenchFirstPromptId = 256;

// Appends `n` ids in [kBenchFirstPromptId, vocab_size) from the LCG
// x <- 1664525 x + 1013904223 (mod 2^32) started at x0:
// id = kBenchFirstPromptId + (x >> 8) % (vocab_size - kBenchFirstPromptId).
void AppendBenchLcgIds(int64_t n, int64_t vocab_size, uint32_t x0, std::vector<int32_t>* ids);

// The single-stream benchmark prompt: BOS, then n-1 ids from the LCG with x0 = seed.
// Contract shared with tests/reference/llama_bench.mjs: change both or neither.
std::vector<int32_t> BenchPromptIds(int64_t n, int64_t vocab_size, uint32_t seed);

// FNV-1a over the ids as 32-bit words.
uint32_t PromptChecksum(const std::vector<int32_t>& ids);

struct ServingBenchOptions {
  std::string model;
  std::string quantize;
  int threads = 0;                   // resolved (> 0)
  std::vector<int64_t> concurrency;  // levels, in the order given
  int64_t prompt_tokens = 512;
  int64_t gen_tokens = 128;
  int64_t shared_prefix = 0;
  int64_t max_batch = 256;
  uint32_t seed = 1;
  bool prefix_caching = true;
  int64_t kv_budget_bytes = 0;  // 0 = the engine's default
  std::string kv_type = EngineOptions{}.kv_type;
  double decode_latency_factor = EngineOptions{}.decode_latency_factor;
  // > 0: one more request of this many prompt ids arrives once every client has 4 ids, to
  // measure the streams' inter-token latency while a long prompt is read beside them.
  int64_t long_prompt = 0;
  // With a shared prefix: one request of the prefix (plus one id of its own) runs before the
  // clients start, so they find the prefix cached; its TTFT is the cold one to compare with.
  bool warm_prefix = false;
  bool json = false;
};

// Parses --concurrency: comma-separated integers in [1, kMaxBenchConcurrency]. "" when valid,
// else what is wrong (without the flag's name).
inline constexpr int64_t kMaxBenchConcurrency = 1024;
std::string CheckConcurrencyList(const std::string& text, std::vector<int64_t>* levels);

// The prompts of a serving level with `clients` requests (see bench_serving.cc).
std::vector<std::vector<int32_t>> ServingPrompts(int64_t clients, int64_t prompt_tokens,
                                                 int64_t shared_prefix, int64_t vocab_size,
                                                 uint32_t seed);

// Runs the serving benchmark and prints its report; returns the process exit code.
int RunServingBench(const ServingBenchOptions& options);

}  // namespace gemma_local::cli
