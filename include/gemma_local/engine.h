// The public engine API: open a model, score token sequences, generate.
//
// This first version runs one request at a time on the calling thread (the scheduler with
// continuous batching will sit behind the same API). Thread-safety: an Engine is not safe to call
// from several threads at once yet.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gemma_local/sampling.h"
#include "gemma_local/status.h"

namespace gemma_local {

struct EngineOptions {
  int threads = 0;             // worker threads; 0 = one per hardware thread
  int64_t max_context = 4096;  // positions per sequence the KV cache holds
  int64_t max_batch = 256;     // prompt tokens per forward call (prefill chunk)
  // Quantize the weights in memory at load time: "" (keep the file's types), "q8_0", "q4_0",
  // "q4_k" (= "q4_k_m", also "4bit"), "8bit", or any other `gemma-local quantize` type.
  std::string quantize;
};

// One teacher-forced position: the distribution that predicts the next token.
struct PositionScores {
  std::vector<std::pair<int32_t, float>> top;  // (token id, natural-log probability), best first
};

struct GenerateOptions {
  int64_t max_tokens = 32;
  SamplingParams sampling;           // default: greedy
  std::vector<int32_t> stop_tokens;  // generation ends after emitting one of these
};

struct GenerateResult {
  std::vector<int32_t> tokens;      // generated ids (a stop token, if hit, is included)
  std::string finish_reason;        // "stop" or "length"
  double prompt_ms = 0;
  double gen_ms = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Opens a GGUF file or a Hugging Face checkpoint directory.
  static Result<std::unique_ptr<Engine>> Open(const std::string& model_path, const EngineOptions& options);

  virtual int64_t vocab_size() const = 0;
  // Default stop ids for the model's family (<eos>, end of turn, and Gemma 4's <|tool_response>).
  virtual std::vector<int32_t> default_stop_tokens() const = 0;

  // Teacher forcing: one entry per input token; entry i predicts token i+1. `top_k` >= 1.
  virtual Result<std::vector<PositionScores>> Score(const std::vector<int32_t>& tokens, int top_k) = 0;

  // Generation after `prompt` (ids used exactly as given) with options.sampling. `on_token` (optional) sees each
  // new id as it is produced; returning false stops generation.
  virtual Result<GenerateResult> Generate(const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                          const std::function<bool(int32_t)>& on_token) = 0;
};

}  // namespace gemma_local
