// `gemma-local score` (teacher-forced log-probabilities) and `gemma-local run` (generation).
// Token-id input (--tokens) is used exactly as given; text prompts need the tokenizer.
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gemma_local/chat_output.h"
#include "gemma_local/chat_template.h"
#include "gemma_local/engine.h"
#include "gemma_local/model_info.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local::cli {
namespace {

// "2,105,9" -> ids; errors name the bad item.
Result<std::vector<int32_t>> ParseTokenList(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int32_t id = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || id < 0) {
      return InvalidArgumentError("--tokens: '" + item + "' is not a non-negative token id");
    }
    ids.push_back(id);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

struct CommonOptions {
  std::string model;
  std::string tokens;
  std::string prompt;
  bool chat = false;
  std::string system;
  bool think = false;
  int threads = 0;
  int64_t context = 4096;
  std::string quantize;
  bool json = false;
};

void AddCommon(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--model", o.model, "GGUF file or Hugging Face checkpoint directory")->required();
  auto* tokens = cmd->add_option("--tokens", o.tokens, "comma-separated token ids, used exactly as given");
  auto* prompt = cmd->add_option("--prompt", o.prompt, "raw text prompt (needs the model's tokenizer)");
  tokens->excludes(prompt);
  cmd->add_flag("--chat", o.chat, "wrap --prompt in the model's chat template as one user turn");
  cmd->add_option("--system", o.system, "system message (with --chat)");
  cmd->add_flag("--think", o.think, "Gemma 4: enable the thinking channel (with --chat)");
  cmd->add_option("--threads", o.threads, "worker threads (0 = all cores)");
  cmd->add_option("--context", o.context, "context size in tokens (KV cache capacity)");
  cmd->add_option("--quantize", o.quantize, "quantize weights at load: q8_0, q4_0, q4_k (= q4_k_m), ...");
  cmd->add_flag("--json", o.json, "print one JSON object");
}

// Peak resident set size of this process (Linux reports ru_maxrss in KiB).
int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError;
}

// The prompt's token ids: --tokens as given; --prompt as raw text (BOS per the model, special-token
// text parsed as Hugging Face's encode does) or, with --chat, rendered through the model's chat
// template (which writes <bos> itself; no second one is added).
Result<std::vector<int32_t>> InputTokens(const CommonOptions& o) {
  if (o.prompt.empty()) {
    if (o.chat) return InvalidArgumentError("--chat needs --prompt");
    if (o.tokens.empty()) return InvalidArgumentError("give --tokens or --prompt");
    return ParseTokenList(o.tokens);
  }
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer, Tokenizer::Load(o.model));
  if (!o.chat) return tokenizer->Encode(o.prompt);
  GL_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::Load(o.model));
  ChatTemplateInputs in;
  if (!o.system.empty()) in.messages.push_back({{"role", "system"}, {"content", o.system}});
  in.messages.push_back({{"role", "user"}, {"content", o.prompt}});
  in.add_generation_prompt = true;
  if (o.think) in.enable_thinking = true;
  GL_ASSIGN_OR_RETURN(std::string rendered, tmpl.Render(in));
  return tokenizer->Encode(rendered, EncodeOptions{std::nullopt, /*parse_special=*/true});
}

// Streams generated ids to text (special tokens skipped, stop tokens dropped) and ends generation
// when the text contains one of `stop_strings` (the text is cut before it). Without a tokenizer
// the text stays empty and stop strings cannot match. With `keep_gemma4_markers` the special
// tokens the Gemma 4 reply parser reads (<|channel>, <|tool_call>, ...) are kept as text.
class TextStream {
 public:
  TextStream(const std::string& model, std::vector<int32_t> stop_tokens, std::vector<std::string> stop_strings,
             bool keep_gemma4_markers = false)
      : stop_tokens_(std::move(stop_tokens)), stop_strings_(std::move(stop_strings)),
        keep_markers_(keep_gemma4_markers) {
    Result<std::shared_ptr<const Tokenizer>> tokenizer = Tokenizer::Load(model);
    if (tokenizer.ok()) {
      tokenizer_ = *tokenizer;
      decoder_.emplace(*tokenizer, DecodeOptions{/*skip_special=*/!keep_markers_});
    }
  }
  // False when a stop string completed (generation should end).
  bool Push(int32_t id) {
    if (!decoder_ || std::find(stop_tokens_.begin(), stop_tokens_.end(), id) != stop_tokens_.end()) return true;
    if (keep_markers_ && tokenizer_->IsSpecial(id)) {
      Result<std::string> marker = tokenizer_->IdToPiece(id);
      if (!marker.ok() || !IsGemma4OutputMarker(*marker)) return true;  // skipped like skip_special
    }
    Result<std::string> piece = decoder_->Push(id);
    if (piece.ok()) text_ += *piece;
    return !CutAtStopString();
  }
  std::string Finish() {
    if (decoder_ && !stopped_) {
      text_ += decoder_->Finish();
      CutAtStopString();
    }
    return text_;
  }
  bool stopped() const { return stopped_; }

 private:
  bool CutAtStopString() {
    for (const std::string& stop : stop_strings_) {
      const size_t at = stop.empty() ? std::string::npos : text_.find(stop);
      if (at != std::string::npos) {
        text_.resize(at);
        stopped_ = true;
        return true;
      }
    }
    return false;
  }
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<TokenStreamDecoder> decoder_;
  std::vector<int32_t> stop_tokens_;
  std::vector<std::string> stop_strings_;
  bool keep_markers_ = false;
  std::string text_;
  bool stopped_ = false;
};

// Gemma 4 replies carry thinking and tool-call markup that `run --chat` parses; Gemma 3 output is
// used as is. Reads metadata only.
bool IsGemma4(const std::string& model) {
  Result<ModelInfo> info = InspectModel(model);
  return info.ok() && info->architecture == "gemma4";
}

}  // namespace

CommandRunner RegisterScore(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  auto top_k = std::make_shared<int>(10);
  CLI::App* cmd = app.add_subcommand("score", "Teacher-forced log-probabilities: entry i is the distribution predicting token i+1");
  AddCommon(cmd, *o);
  cmd->add_option("--top-k", *top_k, "entries per position");
  return [o, top_k]() {
    Result<std::vector<int32_t>> tokens = InputTokens(*o);
    if (!tokens.ok()) return Fail(tokens.status());
    EngineOptions eo;
    eo.threads = o->threads;
    eo.quantize = o->quantize;
    eo.max_context = std::max<int64_t>(o->context, static_cast<int64_t>(tokens->size()));
    Result<std::unique_ptr<Engine>> engine = Engine::Open(o->model, eo);
    if (!engine.ok()) return Fail(engine.status());
    Result<std::vector<PositionScores>> scores = (*engine)->Score(*tokens, *top_k);
    if (!scores.ok()) return Fail(scores.status());
    nlohmann::json out;
    out["tokens"] = *tokens;
    nlohmann::json positions = nlohmann::json::array();
    for (const PositionScores& p : *scores) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, lp] : p.top) top.push_back({id, lp});
      positions.push_back({{"top", top}});
    }
    out["positions"] = positions;
    std::printf("%s\n", out.dump(o->json ? -1 : 1).c_str());
    return kExitOk;
  };
}

CommandRunner RegisterRun(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  auto max_tokens = std::make_shared<int64_t>(32);
  auto sp = std::make_shared<SamplingParams>();
  auto stops = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("run", "Generate a continuation (greedy unless --temperature > 0)");
  AddCommon(cmd, *o);
  cmd->add_option("--max-tokens", *max_tokens, "tokens to generate at most");
  cmd->add_option("--temperature", sp->temperature, "0 = greedy (default, reproducible)");
  cmd->add_option("--top-k", sp->top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", sp->top_p, "nucleus sampling mass (1 = off)");
  cmd->add_option("--min-p", sp->min_p, "drop tokens below min_p x the top probability (0 = off)");
  cmd->add_option("--repeat-penalty", sp->repetition_penalty, "HF repetition penalty over prompt + output (1 = off)");
  cmd->add_option("--presence-penalty", sp->presence_penalty, "OpenAI presence penalty over output tokens");
  cmd->add_option("--frequency-penalty", sp->frequency_penalty, "OpenAI frequency penalty over output tokens");
  cmd->add_option("--seed", sp->seed, "sampling seed");
  cmd->add_option("--stop", *stops, "stop when the generated text contains this string (repeatable; cut from the text)");
  return [o, max_tokens, sp, stops]() {
    Result<std::vector<int32_t>> tokens = InputTokens(*o);
    if (!tokens.ok()) return Fail(tokens.status());
    EngineOptions eo;
    eo.threads = o->threads;
    eo.quantize = o->quantize;
    eo.max_context = std::max<int64_t>(o->context, static_cast<int64_t>(tokens->size()) + *max_tokens);
    Result<std::unique_ptr<Engine>> engine = Engine::Open(o->model, eo);
    if (!engine.ok()) return Fail(engine.status());
    GenerateOptions go;
    go.max_tokens = *max_tokens;
    go.sampling = *sp;
    go.stop_tokens = (*engine)->default_stop_tokens();
    // A Gemma 4 chat reply is split into answer, thinking and tool calls (chat_output.h).
    const bool parse_reply = o->chat && IsGemma4(o->model);
    TextStream stream(o->model, go.stop_tokens, *stops, parse_reply);
    Result<GenerateResult> r = (*engine)->Generate(*tokens, go, [&](int32_t id) { return stream.Push(id); });
    if (!r.ok()) return Fail(r.status());
    std::string text = stream.Finish();
    if (stream.stopped()) r->finish_reason = "stop";
    std::optional<ParsedReply> reply;
    if (parse_reply) {
      reply = ParseGemma4Output(text);
      text = reply->content;
    }
    if (!o->json) {
      if (reply && !reply->reasoning.empty()) {
        std::fprintf(stderr, "[thinking] %s\n", reply->reasoning.c_str());
      }
      if (!o->prompt.empty()) {
        std::printf("%s\n", text.c_str());
      } else {
        for (size_t i = 0; i < r->tokens.size(); ++i) std::printf("%s%d", i ? "," : "", r->tokens[i]);
        std::printf("\n");
      }
      if (reply) {
        for (const ToolCall& call : reply->tool_calls) {
          std::printf("[tool_call] %s\n", call.ToJson().dump().c_str());
        }
        if (reply->malformed) std::fprintf(stderr, "warning: %s\n", reply->malformed_reason.c_str());
      }
      return kExitOk;
    }
    nlohmann::json out;
    out["prompt_tokens"] = *tokens;
    out["tokens"] = r->tokens;
    out["text"] = text;
    if (reply) {
      const nlohmann::ordered_json parsed = reply->ToJson();
      out["text"] = parsed["content"];
      out["reasoning"] = parsed["reasoning"];
      out["tool_calls"] = parsed["tool_calls"];
      if (reply->malformed) {
        out["malformed"] = true;
        out["malformed_reason"] = parsed["malformed_reason"];
      }
    }
    out["finish_reason"] = r->finish_reason;
    const double n_prompt = static_cast<double>(tokens->size());
    const double n_gen = static_cast<double>(r->tokens.size());
    out["timings"] = {{"prompt_ms", r->prompt_ms},
                      {"prompt_tokens_per_s", r->prompt_ms > 0 ? n_prompt * 1000.0 / r->prompt_ms : 0.0},
                      {"gen_ms", r->gen_ms},
                      {"gen_tokens_per_s", r->gen_ms > 0 ? n_gen * 1000.0 / r->gen_ms : 0.0},
                      {"peak_rss_bytes", PeakRssBytes()}};
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
