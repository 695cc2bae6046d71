// `gemma-local score` (teacher-forced log-probabilities) and `gemma-local run` (generation).
// Token-id input (--tokens) is used exactly as given; text prompts need the tokenizer.
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "gemma_local/chat_output.h"
#include "gemma_local/engine.h"
#include "gemma_local/system_memory.h"

namespace gemma_local::cli {
namespace {

// "2,105,9" -> ids; errors name the bad item.
Result<std::vector<int32_t>> ParseTokenList(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
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
  std::string dump_activations;
  bool json = false;
  EngineFlags engine;
};

void AddCommon(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("--model", o.model, "GGUF file or Hugging Face checkpoint directory")->required();
  auto* tokens =
      cmd->add_option("--tokens", o.tokens, "comma-separated token ids, used exactly as given");
  auto* prompt =
      cmd->add_option("--prompt", o.prompt, "raw text prompt (needs the model's tokenizer)");
  tokens->excludes(prompt);
  cmd->add_flag("--chat", o.chat, "wrap --prompt in the model's chat template as one user turn");
  cmd->add_option("--system", o.system, "system message (with --chat)");
  cmd->add_flag("--think", o.think, "Gemma 4: enable the thinking channel (with --chat)");
  cmd->add_option("--threads", o.threads, "worker threads (0 = all cores)");
  cmd->add_option("--context", o.context, "context size in tokens (KV cache capacity)");
  cmd->add_option("--quantize", o.quantize,
                  "quantize weights at load: q8_0, q4_0, q4_k (= q4_k_m), ...");
  cmd->add_option(
      "--dump-activations", o.dump_activations,
      "write every forward call's named intermediates (raw f32 + index.jsonl) into this directory");
  cmd->add_flag("--json", o.json, "print one JSON object");
  AddEngineFlags(cmd, &o.engine);
}

int Fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError;
}

// The request input: --tokens as given; --prompt as raw text (BOS per the model, special-token
// text parsed as Hugging Face's encode does) or, with --chat, rendered through the model's chat
// template (which writes <bos> itself; no second one is added).
Result<RequestInput> Input(const CommonOptions& o) {
  if (o.prompt.empty()) {
    if (o.chat) return InvalidArgumentError("--chat needs --prompt");
    if (o.tokens.empty()) return InvalidArgumentError("give --tokens or --prompt");
    GL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseTokenList(o.tokens));
    return RequestInput::Tokens(std::move(ids));
  }
  if (!o.chat) return RequestInput::Text(o.prompt);
  ChatInput chat;
  if (!o.system.empty()) chat.messages.push_back({{"role", "system"}, {"content", o.system}});
  chat.messages.push_back({{"role", "user"}, {"content", o.prompt}});
  if (o.think) chat.enable_thinking = true;
  return RequestInput::Chat(std::move(chat));
}

// The engine for one command. The KV cache grows with the request, so --context no longer needs
// to be raised for long prompts: it stays accepted for compatibility and bounds nothing here
// (it never did: the old code raised it to fit the request).
Result<std::unique_ptr<Engine>> OpenEngine(const CommonOptions& o) {
  EngineOptions eo;
  eo.threads = o.threads;
  eo.quantize = o.quantize;
  eo.max_context = 0;
  eo.dump_activations = o.dump_activations;
  GL_RETURN_IF_ERROR(ApplyEngineFlags(o.engine, &eo));
  return Engine::Open(o.model, eo);
}

}  // namespace

CommandRunner RegisterScore(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  auto top_k = std::make_shared<int>(10);
  CLI::App* cmd = app.add_subcommand(
      "score",
      "Teacher-forced log-probabilities: entry i is the distribution predicting token i+1");
  AddCommon(cmd, *o);
  cmd->add_option("--top-k", *top_k, "entries per position");
  return [o, top_k]() {
    Result<RequestInput> input = Input(*o);
    if (!input.ok()) return Fail(input.status());
    Result<std::unique_ptr<Engine>> engine = OpenEngine(*o);
    if (!engine.ok()) return Fail(engine.status());
    Result<ScoreResult> scores = (*engine)->Score(ScoreRequest{*input, *top_k});
    if (!scores.ok()) return Fail(scores.status());
    nlohmann::json out;
    out["tokens"] = scores->tokens;
    nlohmann::json positions = nlohmann::json::array();
    for (const PositionScores& p : scores->positions) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, lp] : p.top) top.push_back({id, lp});
      positions.push_back({{"top", top}});
    }
    out["positions"] = positions;
    std::printf("%s\n", out.dump(o->json ? -1 : 1).c_str());
    return kExitOk;
  };
}

// --json-schema / --json-object / --regex / --choice / --grammar(-file): at most one.
struct StructuredFlags {
  std::string schema_file;
  bool any_json = false;
  std::string regex;
  std::vector<std::string> choices;
  std::string grammar;
  std::string grammar_file;
  bool best_effort = false;

  Result<std::optional<Constraint>> Build() const {
    const int given = !schema_file.empty() + any_json + !regex.empty() + !choices.empty() +
                      !grammar.empty() + !grammar_file.empty();
    if (given > 1) {
      return InvalidArgumentError(
          "give at most one of --json-schema, --json-object, --regex, --choice, --grammar, "
          "--grammar-file");
    }
    if (!grammar_file.empty()) {
      std::ifstream in(grammar_file, std::ios::binary);
      if (!in) return NotFoundError(grammar_file + ": cannot open the grammar file");
      std::stringstream text;
      text << in.rdbuf();
      return std::optional<Constraint>(Constraint::Gbnf(text.str()));
    }
    if (!grammar.empty()) return std::optional<Constraint>(Constraint::Gbnf(grammar));
    if (!schema_file.empty()) {
      std::ifstream in(schema_file);
      if (!in) return NotFoundError(schema_file + ": cannot open the JSON Schema file");
      std::stringstream text;
      text << in.rdbuf();
      nlohmann::ordered_json schema =
          nlohmann::ordered_json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
      if (schema.is_discarded()) return InvalidArgumentError(schema_file + ": not valid JSON");
      return std::optional<Constraint>(Constraint::JsonSchema(std::move(schema), best_effort));
    }
    if (any_json) return std::optional<Constraint>(Constraint::AnyJson());
    if (!regex.empty()) return std::optional<Constraint>(Constraint::Regex(regex));
    if (!choices.empty()) return std::optional<Constraint>(Constraint::Choice(choices));
    return std::optional<Constraint>();
  }
};

// On stderr: what was not enforced and why the value is not valid, if it is not.
void ReportConstraint(const ConstraintOutcome& c) {
  for (const ConstraintIssue& i : c.not_enforced) {
    std::fprintf(stderr, "warning: not enforced: %s at \"%s\": %s\n", i.keyword.c_str(),
                 i.pointer.c_str(), i.message.c_str());
  }
  for (const ConstraintViolation& v : c.violations) {
    std::fprintf(stderr, "warning: invalid at \"%s\" (schema \"%s\"): %s\n",
                 v.instance_pointer.c_str(), v.schema_pointer.c_str(), v.message.c_str());
  }
}

CommandRunner RegisterRun(CLI::App& app) {
  auto o = std::make_shared<CommonOptions>();
  auto max_tokens = std::make_shared<int64_t>(32);
  auto sp = std::make_shared<SamplingParams>();
  auto stops = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd =
      app.add_subcommand("run", "Generate a continuation (greedy unless --temperature > 0)");
  AddCommon(cmd, *o);
  cmd->add_option("--max-tokens", *max_tokens, "tokens to generate at most");
  cmd->add_option("--temperature", sp->temperature, "0 = greedy (default, reproducible)");
  cmd->add_option("--top-k", sp->top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", sp->top_p, "nucleus sampling mass (1 = off)");
  cmd->add_option("--min-p", sp->min_p, "drop tokens below min_p x the top probability (0 = off)");
  cmd->add_option("--repeat-penalty", sp->repetition_penalty,
                  "HF repetition penalty over prompt + output (1 = off)");
  cmd->add_option("--presence-penalty", sp->presence_penalty,
                  "OpenAI presence penalty over output tokens");
  cmd->add_option("--frequency-penalty", sp->frequency_penalty,
                  "OpenAI frequency penalty over output tokens");
  cmd->add_option("--seed", sp->seed, "sampling seed");
  cmd->add_option(
      "--stop", *stops,
      "stop when the generated text contains this string (repeatable; cut from the text)");
  auto structured = std::make_shared<StructuredFlags>();
  cmd->add_option("--json-schema", structured->schema_file,
                  "constrain the output to JSON valid against this JSON Schema file "
                  "(docs/structured-output.md)");
  cmd->add_flag("--json-object", structured->any_json, "constrain the output to a JSON value");
  cmd->add_option("--regex", structured->regex,
                  "constrain the output to a full match of this ECMA-262 pattern");
  cmd->add_option("--choice", structured->choices,
                  "constrain the output to one of these strings (repeatable)");
  cmd->add_option("--grammar", structured->grammar,
                  "constrain the output to this GBNF grammar (llama.cpp's format; from `root`)");
  cmd->add_option("--grammar-file", structured->grammar_file,
                  "constrain the output to the GBNF grammar in this file");
  cmd->add_flag(
      "--best-effort", structured->best_effort,
      "drop (and report) schema keywords that cannot be enforced instead of refusing the schema");
  return [o, max_tokens, sp, stops, structured]() {
    Result<RequestInput> input = Input(*o);
    if (!input.ok()) return Fail(input.status());
    Result<std::optional<Constraint>> constraint = structured->Build();
    if (!constraint.ok()) return Fail(constraint.status());
    Result<std::unique_ptr<Engine>> engine = OpenEngine(*o);
    if (!engine.ok()) return Fail(engine.status());
    Request request;
    request.input = std::move(*input);
    request.max_tokens = *max_tokens;
    request.sampling = *sp;
    request.stop = *stops;
    request.constraint = std::move(*constraint);
    Result<Completion> r = (*engine)->Generate(std::move(request));
    if (!r.ok()) return Fail(r.status());
    if (r->constraint && !o->json) ReportConstraint(*r->constraint);
    // A Gemma 4 chat reply comes split into answer, thinking and tool calls (chat_output.h).
    const bool parsed = r->reply_parsed;
    if (!o->json) {
      if (parsed && !r->reasoning.empty())
        std::fprintf(stderr, "[thinking] %s\n", r->reasoning.c_str());
      if (!o->prompt.empty()) {
        std::printf("%s\n", r->text.c_str());
      } else {
        for (size_t i = 0; i < r->tokens.size(); ++i)
          std::printf("%s%d", i ? "," : "", r->tokens[i]);
        std::printf("\n");
      }
      if (parsed) {
        for (const ToolCall& call : r->tool_calls)
          std::printf("[tool_call] %s\n", call.ToJson().dump().c_str());
        if (r->malformed) std::fprintf(stderr, "warning: %s\n", r->malformed_reason.c_str());
      }
      return kExitOk;
    }
    nlohmann::json out;
    out["prompt_tokens"] = r->prompt_tokens;
    out["tokens"] = r->tokens;
    if (parsed) {
      ParsedReply reply;
      reply.content = r->text;
      reply.reasoning = r->reasoning;
      reply.tool_calls = r->tool_calls;
      reply.malformed = r->malformed;
      reply.malformed_reason = r->malformed_reason;
      const nlohmann::ordered_json j = reply.ToJson();
      out["text"] = j["content"];
      out["reasoning"] = j["reasoning"];
      out["tool_calls"] = j["tool_calls"];
      if (r->malformed) {
        out["malformed"] = true;
        out["malformed_reason"] = j["malformed_reason"];
      }
    } else {
      out["text"] = r->text;
    }
    out["finish_reason"] = r->finish_reason;
    if (r->constraint) out["constraint"] = r->constraint->ToJson();
    const double n_prompt = static_cast<double>(r->prompt_tokens.size());
    const double n_gen = static_cast<double>(r->tokens.size());
    const Timings& t = r->timings;
    out["timings"] = {
        {"prompt_ms", t.prompt_ms},
        {"prompt_tokens_per_s", t.prompt_ms > 0 ? n_prompt * 1000.0 / t.prompt_ms : 0.0},
        {"gen_ms", t.gen_ms},
        {"gen_tokens_per_s", t.gen_ms > 0 ? n_gen * 1000.0 / t.gen_ms : 0.0},
        {"peak_rss_bytes", PeakRssBytes()}};
    std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
