// The public engine API: the one thing front ends (CLI, HTTP server, extract) use.
//
// An Engine is opened once per model: it owns the weights, the tokenizer, the chat template, the
// model family's stop rules and reply format. Work is submitted as requests; each Submit returns a
// RequestHandle whose events stream the result (token ids with optional log-probabilities, text
// decoded UTF-8-safely, Gemma 4 reasoning and tool calls, then one final event with the finish
// reason, usage and timings). Stop strings and stop tokens are handled inside the engine.
//
// Thread-safety: every Engine method may be called from any number of threads at once; handles
// may be read and cancelled from any thread (one reader per handle). Requests run one at a time
// in submission order on the engine's worker (the scheduler with continuous batching replaces
// this behind the same API); a request's output never depends on what else was submitted.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gemma_local/chat_output.h"
#include "gemma_local/constraint.h"
#include "gemma_local/sampling.h"
#include "gemma_local/status.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local {

struct EngineOptions {
  int threads = 0;             // worker threads; 0 = one per hardware thread
  // Positions per request (prompt + max_tokens); 0 = the model's context length.
  int64_t max_context = 4096;
  // Positions per forward call: every running request's next token plus prompt chunks of the
  // ones still reading their prompt (chunked prefill) share this budget.
  int64_t max_batch = 256;
  // Requests running at once (continuous batching); more wait in the queue.
  int64_t max_running_requests = 16;
  // The KV cache pool: its byte budget (0 = three quarters of the memory the system reports
  // available once the weights are loaded, or 4 GiB where it does not say) and positions per
  // block. A request that could never fit is refused at Submit; when the pool runs dry
  // mid-generation the newest request is preempted (recomputed later, same output).
  int64_t kv_budget_bytes = 0;
  int64_t kv_block_rows = 16;
  // How the KV cache stores K/V rows: "f16" (llama.cpp's default too; half of f32's memory),
  // "q8_0" (GGML's 8-bit blocks of 32 with an f16 scale, about a quarter of f32's; needs head
  // sizes that are multiples of 32) or "f32" (exact, twice f16's memory). Attention reads the
  // stored type directly; the budget above counts its bytes.
  std::string kv_type = "f16";
  // Reuse the KV of earlier requests' common prompt prefixes (whole blocks; see Usage::cached_tokens).
  bool prefix_caching = true;
  // A request not started within this many milliseconds of Submit ends with a
  // kDeadlineExceeded error (0 = wait as long as it takes).
  int64_t queue_timeout_ms = 0;
  // While requests are generating, a prompt being read beside them advances in chunks sized so
  // that a step takes at most this many times a generating-only step (measured as the engine
  // runs): streams keep their pace and the new prompt's first token comes later. 0 = chunks of
  // max_batch whatever the latency.
  double decode_latency_factor = 1.8;
  // Quantize the weights in memory at load time: "" (keep the file's types), "q8_0", "q4_0",
  // "q4_k" (= "q4_k_m", also "4bit"), "8bit", or any other `gemma-local quantize` type.
  std::string quantize;
  std::string template_path;          // a chat template file overriding the model's ("": the model's)
  int64_t max_queued_requests = 1024;  // Submit fails with kUnavailable (retry later) beyond this
  // Debugging: a directory that receives every forward call's named intermediates (llama.cpp's
  // names: inp_embd, attn_norm-L, Qcur-L, Kcur-L, Vcur-L, kqv_out-L, ffn_inp-L, ffn_out-L, l_out-L,
  // result_norm, result_output) as raw little-endian f32 files NNNNNN-NAME.f32, listed with their
  // shapes in index.jsonl. Slow; "" = off.
  std::string dump_activations;
};

// A conversation rendered with the model's chat template (add_generation_prompt is set).
struct ChatInput {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  std::optional<nlohmann::ordered_json> tools;                        // tool schemas, or none
  std::optional<bool> enable_thinking;                                // Gemma 4 thinking channel
  // Messages are OpenAI Chat Completions messages: normalize them first (NormalizeOpenAiMessages
  // in chat_template.h: content parts, tool calls, tool results).
  bool openai_format = false;
};

// What a request runs on: exactly one of token ids, raw text or chat messages.
struct RequestInput {
  std::vector<int32_t> tokens;     // ids used exactly as given (nothing is added)
  std::optional<std::string> text;  // raw text: BOS per the model, special-token text parsed
  std::optional<ChatInput> chat;

  static RequestInput Tokens(std::vector<int32_t> ids);
  static RequestInput Text(std::string text);
  static RequestInput Chat(ChatInput chat);
};

enum class ReplyParsing {
  kAuto,  // Gemma 4 replies to chat input are parsed; everything else is plain text
  kOff,
  kOn,    // parse as Gemma 4 output (reasoning, tool calls) whatever the input
};

struct Request {
  RequestInput input;
  int64_t max_tokens = 32;  // generated tokens at most (>= 0)
  SamplingParams sampling;  // default: greedy
  // Generation ends when the decoded text contains one of these; the text is cut before it and
  // nothing after it is streamed.
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;  // in addition to the model's own stop tokens
  bool ignore_model_stop_tokens = false;  // generate exactly max_tokens unless another stop hits
  // -1: no log-probabilities; 0: the chosen token's; k > 0: also the k most likely (<= 20).
  int logprobs = -1;
  ReplyParsing parse_reply = ReplyParsing::kAuto;
  // Higher runs first; equal priorities run in arrival order.
  int priority = 0;
  // Structured output (constraint.h): every generated token keeps the text a prefix of the
  // constraint's language, and a stop token is allowed only once the value is complete. Not
  // combinable with `stop` strings (a cut would break the value) or a thinking chat; reply
  // parsing is off. The final event carries the outcome.
  std::optional<Constraint> constraint;
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;                           // natural log, before sampling transforms
  std::vector<std::pair<int32_t, float>> top;  // the most likely ids, best first
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt positions taken from the prefix cache, not recomputed
};

struct Timings {
  double queue_ms = 0;   // submitted -> started
  double prompt_ms = 0;  // started -> the prompt's forward passes done (the first id's logits)
  double gen_ms = 0;     // prompt done -> generation ended
  double ttft_ms = 0;    // started -> the first generated id (prefill + first sampling)
  double decode_ms = 0;  // the first generated id -> the last
};

// One step of a request's stream. Non-final events carry what one generated token settled;
// the final event may carry text released at the end, and always the outcome.
struct Event {
  std::vector<int32_t> tokens;         // ids generated in this step (stop tokens included)
  std::vector<TokenLogprob> logprobs;  // one per id when requested
  // Text settled by this step, in order: content, Gemma 4 reasoning and completed tool calls.
  // Text held back (a possible stop-string start, an incomplete UTF-8 character, a possible
  // marker) comes in a later event.
  std::vector<ReplyEvent> deltas;
  bool final = false;

  // Final event only.
  std::string finish_reason;  // "stop", "length", "cancelled" or "error"
  Status error;               // set when finish_reason == "error"
  std::vector<int32_t> prompt_tokens;
  Usage usage;
  Timings timings;
  bool reply_parsed = false;  // the Gemma 4 reply parser ran on this request
  bool malformed = false;     // a parsed reply that did not parse fully (see chat_output.h)
  std::string malformed_reason;
  std::optional<ConstraintOutcome> constraint;  // constrained requests

  std::string Content() const;    // concatenated content deltas
  std::string Reasoning() const;  // concatenated reasoning deltas
};

// Everything a request produced (RequestHandle::Wait, Engine::Generate).
struct Completion {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  std::string text;       // the answer (content)
  std::string reasoning;  // Gemma 4 thinking ("" when none)
  std::vector<ToolCall> tool_calls;
  bool reply_parsed = false;  // the Gemma 4 reply parser ran (reasoning/tool_calls meaningful)
  bool malformed = false;
  std::string malformed_reason;
  std::string finish_reason;
  Usage usage;
  Timings timings;
  std::optional<ConstraintOutcome> constraint;  // constrained requests
};

class RequestHandle {
 public:
  struct State;
  explicit RequestHandle(std::shared_ptr<State> state);
  ~RequestHandle();
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;

  uint64_t id() const;
  // The next event, blocking until there is one; nullopt after the final event was returned.
  std::optional<Event> Next();
  // Like Next, waiting at most `timeout`; nullopt also when nothing came in time (check done()).
  std::optional<Event> NextFor(std::chrono::milliseconds timeout);
  // True once the final event has been returned by Next/NextFor.
  bool done() const;
  // Asks the engine to stop this request: it ends within one step with finish_reason "cancelled"
  // (or "stop"/"length" if it finished first). Safe from any thread, any number of times.
  void Cancel();
  // Reads the remaining events and gathers them. An error outcome comes back as the Status.
  Result<Completion> Wait();

 private:
  std::shared_ptr<State> state_;
};

// Teacher forcing.
struct ScoreRequest {
  RequestInput input;
  int top_k = 10;  // entries per position (>= 1)
};

// One teacher-forced position: the distribution that predicts the next token.
struct PositionScores {
  std::vector<std::pair<int32_t, float>> top;  // (token id, natural-log probability), best first
  float next_logprob = 0;  // the input's next token's log-probability (0 at the last position)
};

struct ScoreResult {
  std::vector<int32_t> tokens;           // the input's ids
  std::vector<PositionScores> positions;  // entry i predicts token i+1
};

// Latencies in fixed buckets (Prometheus histogram semantics: bucket i counts observations at most
// kBoundsMs[i], not cumulative here; the last bucket counts the ones above every bound).
struct LatencyHistogram {
  static constexpr std::array<double, 15> kBoundsMs = {1,   2,    5,    10,   20,   50,    100,  200,
                                                       500, 1000, 2000, 5000, 10000, 30000, 60000};
  std::array<int64_t, kBoundsMs.size() + 1> counts{};
  int64_t count = 0;
  double sum_ms = 0;

  void Observe(double ms);
  // The smallest bucket bound with at least q of the observations at or below it (q in (0, 1]);
  // +infinity when that is the overflow bucket, 0 without observations.
  double QuantileBoundMs(double q) const;
};

struct EngineStats {
  int64_t queued = 0;             // submitted, not started
  int64_t running = 0;            // started, not finished
  int64_t submitted = 0;          // since Open
  int64_t completed = 0;          // finished with stop or length
  int64_t cancelled = 0;
  int64_t failed = 0;
  int64_t prompt_tokens = 0;      // prompt positions run (prefix-cache hits not counted)
  int64_t generated_tokens = 0;
  int64_t forward_calls = 0;
  int64_t lm_head_passes = 0;     // LM head matrix products (one per forward call that wants logits)
  int64_t logit_rows = 0;         // rows of logits those produced
  int64_t timed_out = 0;          // ended waiting in the queue (queue_timeout_ms)
  int64_t preemptions = 0;        // requests whose KV was dropped to make room (recomputed later)
  // The KV cache pool.
  int64_t kv_budget_bytes = 0;
  int64_t kv_bytes_in_use = 0;
  int64_t kv_blocks_in_use = 0;
  int64_t kv_blocks_free = 0;    // allocated, held by no request, not cached
  int64_t kv_blocks_cached = 0;  // held by no request, kept for prefix hits (evictable)
  int64_t prefix_cache_queries = 0;  // prompt positions looked up in the prefix cache
  int64_t prefix_cache_hits = 0;     // of those, found cached
  LatencyHistogram ttft;  // submit -> first generated token (queue time included)
  LatencyHistogram itl;   // between consecutive generated tokens of a request
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Opens a GGUF file or a Hugging Face checkpoint directory with its tokenizer and chat template
  // (a model without a tokenizer still runs token-id requests; text and chat input then fail with
  // the tokenizer's error).
  static Result<std::unique_ptr<Engine>> Open(const std::string& model_path, const EngineOptions& options);

  // "gemma3" or "gemma4".
  virtual const std::string& architecture() const = 0;
  virtual int64_t vocab_size() const = 0;
  // The model's stop ids (<eos>, end of turn, and Gemma 4's <|tool_response>).
  virtual std::vector<int32_t> default_stop_tokens() const = 0;
  // Ok when chat input can be rendered: the tokenizer and the chat template load (the template is
  // loaded on first use), else their error.
  virtual Status ChatReady() const = 0;

  // Positions one request may use (prompt + max_tokens): EngineOptions::max_context, else the
  // model's context length (INT64_MAX when the model does not say).
  virtual int64_t context_limit() const = 0;
  // The model's tokenizer (ids to text, pieces), or null when it has none.
  virtual std::shared_ptr<const Tokenizer> tokenizer() const = 0;

  // The ids a request input runs on (template rendered, text tokenized, ids validated).
  virtual Result<std::vector<int32_t>> Tokenize(const RequestInput& input) const = 0;

  // Queues a request. Invalid requests (bad sampling parameters, an empty or too long prompt, a
  // template error, a full queue) fail here, before anything runs.
  virtual Result<std::unique_ptr<RequestHandle>> Submit(Request request) = 0;
  // `n` samples of one request (OpenAI's `n`): the prompt is computed once and its KV shared
  // copy-on-write; sample i samples with seed + i (greedy samples are identical). One handle per
  // sample, each cancellable on its own. Fails as Submit does; n in [1, 128].
  virtual Result<std::vector<std::unique_ptr<RequestHandle>>> SubmitSamples(Request request, int n) = 0;
  // Submit + Wait.
  virtual Result<Completion> Generate(Request request) = 0;
  // Teacher-forced log-probabilities (queued like a request).
  virtual Result<ScoreResult> Score(const ScoreRequest& request) = 0;

  virtual EngineStats Stats() const = 0;
};

}  // namespace gemma_local
