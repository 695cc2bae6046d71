// `gemma-local extract`: structured data from many documents. Every document runs as a chat
// request constrained to the JSON Schema (so each value parses and fits the schema's grammar); the
// value is then validated against the full schema and checked by the rules (rules.h), and a
// failure is retried with feedback that names what failed. One JSON line per document; the run is
// durable and resumable through a journal (extract_io.h). docs/structured-output.md, "extract".
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/extract_io.h"
#include "gemma_local/constraint.h"
#include "gemma_local/engine.h"
#include "gemma_local/model_info.h"
#include "gemma_local/rules.h"

namespace gemma_local::cli {
namespace {

using extract::Document;
using extract::Journal;

struct ExtractOptions {
  std::string model;
  std::string schema_file;
  std::string rules_file;
  std::string prompt_template_file;
  std::vector<std::string> inputs;
  std::string output;
  int concurrency = 4;
  int max_attempts = 3;
  int64_t max_tokens = 1024;
  int threads = 0;
  bool reproducible = false;
  bool best_effort = false;
  SamplingParams sampling;
  EngineFlags engine;
};

constexpr const char* kDefaultPrompt =
    "Extract the information in the document below as JSON that follows this JSON Schema. "
    "Use null for a value the document does not give.\n\nJSON Schema:\n{{schema}}\n\n"
    "Document:\n{{text}}";

// `tmpl` with {{schema}}, {{text}} and {{id}} replaced in one pass (text that itself contains
// "{{schema}}" stays as it is).
std::string RenderPrompt(const std::string& tmpl, const std::string& schema, const Document& doc) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl.compare(i, 10, "{{schema}}") == 0) {
      out += schema, i += 10;
    } else if (tmpl.compare(i, 8, "{{text}}") == 0) {
      out += doc.text, i += 8;
    } else if (tmpl.compare(i, 6, "{{id}}") == 0) {
      out += doc.id.is_string() ? doc.id.get<std::string>() : doc.id.dump(), i += 6;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

nlohmann::ordered_json ErrorEntry(const char* kind, const char* where_key, const std::string& where,
                                  const std::string& message) {
  nlohmann::ordered_json e = {{"kind", kind}};
  if (where_key != nullptr) e[where_key] = where;
  e["message"] = message;
  return e;
}

// The user turn that asks for a corrected value after attempt `errors`.
std::string Feedback(const nlohmann::ordered_json& errors) {
  std::string text = "Your JSON did not pass these checks:\n";
  for (const auto& e : errors) {
    text += "- ";
    if (e.contains("rule")) text += "rule " + e["rule"].get<std::string>() + ": ";
    if (e.contains("pointer")) text += "at \"" + e["pointer"].get<std::string>() + "\": ";
    text += e["message"].get<std::string>() + "\n";
  }
  return text + "Reply with the corrected JSON only.";
}

struct Totals {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> tokens{0};
};

class Extractor {
 public:
  Extractor(const ExtractOptions& o, Engine* engine, const RuleSet* rules, Constraint constraint,
            std::string prompt_template, std::string model_sha256)
      : o_(o),
        engine_(engine),
        rules_(rules),
        constraint_(std::move(constraint)),
        schema_text_(constraint_.schema.dump(2)),
        template_(std::move(prompt_template)),
        model_sha256_(std::move(model_sha256)) {}

  // One document to its output line (compact JSON, keys in the documented order).
  std::string Run(const Document& doc, int64_t* tokens_out, bool* ok_out) const {
    const auto start = std::chrono::steady_clock::now();
    nlohmann::ordered_json data = nullptr;
    nlohmann::ordered_json errors = nlohmann::ordered_json::array();
    nlohmann::ordered_json rule_results = nlohmann::ordered_json::array();
    int attempts = 0;
    int64_t tokens = 0;
    if (!doc.input_error.empty()) {
      errors.push_back(ErrorEntry("input", nullptr, "", doc.input_error));
    } else {
      ChatInput chat;
      chat.messages.push_back(
          {{"role", "user"}, {"content", RenderPrompt(template_, schema_text_, doc)}});
      while (attempts < o_.max_attempts) {
        ++attempts;
        data = nullptr;
        errors = nlohmann::ordered_json::array();
        rule_results = nlohmann::ordered_json::array();
        Request request;
        request.input = RequestInput::Chat(chat);
        request.max_tokens = o_.max_tokens;
        request.sampling = o_.sampling;
        request.constraint = constraint_;
        Result<Completion> r = engine_->Generate(std::move(request));
        if (!r.ok()) {  // refused or failed as a request: retrying would not change that
          errors.push_back(ErrorEntry("generation", nullptr, "", r.status().ToString()));
          break;
        }
        tokens += static_cast<int64_t>(r->tokens.size());
        const ConstraintOutcome outcome = r->constraint.value_or(ConstraintOutcome{});
        if (!outcome.complete) {
          errors.push_back(ErrorEntry(
              "generation", nullptr, "",
              "the value was not finished within " + std::to_string(o_.max_tokens) + " tokens"));
        } else {
          data = nlohmann::ordered_json::parse(r->text, nullptr, false);
          if (data.is_discarded()) {  // cannot happen for a complete constrained value
            data = nullptr;
            errors.push_back(ErrorEntry("generation", nullptr, "", "the output is not JSON"));
          }
          for (const ConstraintViolation& v : outcome.violations) {
            errors.push_back(ErrorEntry("schema", "pointer", v.instance_pointer, v.message));
          }
          if (rules_ != nullptr && !data.is_null()) {
            for (const RuleResult& rr : rules_->Evaluate(data)) {
              rule_results.push_back(rr.ToJson());
              if (!rr.ok && rr.severity == "error") {
                errors.push_back(ErrorEntry(
                    "rule", "rule", rr.name,
                    rr.detail.empty() ? rr.message : rr.message + " (" + rr.detail + ")"));
              }
            }
          }
        }
        if (errors.empty()) break;
        chat.messages.push_back({{"role", "assistant"}, {"content", r->text}});
        chat.messages.push_back({{"role", "user"}, {"content", Feedback(errors)}});
      }
    }
    const double ms =
        o_.reproducible
            ? 0.0
            : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
    const bool ok = errors.empty();
    nlohmann::ordered_json line;
    line["id"] = doc.id;
    line["ok"] = ok;
    line["data"] = data;
    line["errors"] = errors;
    line["rules"] = rule_results;
    line["attempts"] = attempts;
    line["tokens"] = tokens;
    line["ms"] = static_cast<int64_t>(ms + 0.5);
    line["model_sha256"] = model_sha256_;
    *tokens_out = tokens;
    *ok_out = ok;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

 private:
  const ExtractOptions& o_;
  Engine* engine_;
  const RuleSet* rules_;
  const Constraint constraint_;
  const std::string schema_text_;
  const std::string template_;
  const std::string model_sha256_;
};

// done/total, docs/s, tok/s, ETA and failures: one rewritten line on a terminal, else a log line.
void PrintProgress(bool tty, int64_t total, const Totals& t,
                   std::chrono::steady_clock::time_point start, bool final) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t done = t.done.load();
  const double docs_per_s = s > 0 ? static_cast<double>(done) / s : 0;
  const double eta = docs_per_s > 0 ? static_cast<double>(total - done) / docs_per_s : 0;
  char text[256];
  std::snprintf(text, sizeof text,
                "extract: %lld/%lld documents, %.2f docs/s, %.1f tok/s, ETA %.0f s, %lld failed",
                static_cast<long long>(done), static_cast<long long>(total), docs_per_s,
                s > 0 ? static_cast<double>(t.tokens.load()) / s : 0.0, eta,
                static_cast<long long>(t.failed.load()));
  if (tty) {
    std::fprintf(stderr, "\r%s\x1b[K%s", text, final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", text);
  }
  std::fflush(stderr);
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return kExitUsage;
}

int RunExtract(const ExtractOptions& o) {
  if (o.concurrency < 1 || o.concurrency > 256) return Usage("--concurrency must be in [1, 256]");
  if (o.max_attempts < 1 || o.max_attempts > 10) return Usage("--max-attempts must be in [1, 10]");
  if (o.max_tokens < 1) return Usage("--max-tokens must be at least 1");
  // Everything that can refuse the run does so before any document runs.
  std::ifstream schema_in(o.schema_file, std::ios::binary);
  if (!schema_in) return Usage("--schema " + o.schema_file + ": cannot be read");
  std::stringstream schema_text;
  schema_text << schema_in.rdbuf();
  nlohmann::ordered_json schema =
      nlohmann::ordered_json::parse(schema_text.str(), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return Usage("--schema " + o.schema_file + ": not valid JSON");
  Constraint constraint = Constraint::JsonSchema(std::move(schema), o.best_effort);
  Result<ConstraintReport> report = InspectConstraint(constraint);
  if (!report.ok()) return Usage("--schema " + o.schema_file + ": " + report.status().message());
  for (const ConstraintIssue& i : report->not_enforced) {
    std::fprintf(stderr, "warning: not enforced: %s at \"%s\": %s\n", i.keyword.c_str(),
                 i.pointer.c_str(), i.message.c_str());
  }
  if (report->min_bytes > o.max_tokens) {  // Submit's rule (one byte per token at worst)
    return Usage("--max-tokens " + std::to_string(o.max_tokens) +
                 " cannot fit the schema's shortest value, which may need " +
                 std::to_string(report->min_bytes) + " tokens");
  }
  std::unique_ptr<RuleSet> rules;
  if (!o.rules_file.empty()) {
    Result<std::unique_ptr<RuleSet>> loaded = RuleSet::Load(o.rules_file);
    if (!loaded.ok()) return Usage("--rules " + loaded.status().message());
    rules = std::move(*loaded);
  }
  std::string prompt_template = kDefaultPrompt;
  if (!o.prompt_template_file.empty()) {
    std::ifstream in(o.prompt_template_file, std::ios::binary);
    if (!in) return Usage("--prompt-template " + o.prompt_template_file + ": cannot be read");
    std::stringstream text;
    text << in.rdbuf();
    prompt_template = text.str();
    if (prompt_template.find("{{text}}") == std::string::npos) {
      return Usage("--prompt-template " + o.prompt_template_file +
                   ": has no {{text}} placeholder for the document");
    }
  }
  Result<std::vector<Document>> docs = extract::ListDocuments(o.inputs);
  if (!docs.ok()) return Usage(docs.status().message());
  Result<std::unique_ptr<Journal>> journal = Journal::Open(o.output);
  if (!journal.ok()) {
    std::fprintf(stderr, "error: %s\n", journal.status().message().c_str());
    return journal.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  // The model's hash reads the whole file: beside loading it, not before.
  std::future<Result<std::string>> sha =
      std::async(std::launch::async, [&o] { return ModelSha256(o.model); });

  EngineOptions eo;
  eo.threads = o.threads;
  eo.max_context = 0;
  eo.max_running_requests = std::max<int64_t>(o.concurrency, 1);
  if (Status s = ApplyEngineFlags(o.engine, &eo); !s.ok()) return Usage(s.message());
  Result<std::unique_ptr<Engine>> engine = Engine::Open(o.model, eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "error: %s\n", engine.status().ToString().c_str());
    return kExitError;
  }
  if (Status s = (*engine)->ChatReady(); !s.ok()) {
    std::fprintf(stderr, "error: the model cannot run chat requests: %s\n", s.ToString().c_str());
    return kExitError;
  }

  Result<std::string> model_sha256 = sha.get();
  if (!model_sha256.ok()) {
    std::fprintf(stderr, "error: --model %s\n", model_sha256.status().ToString().c_str());
    return kExitError;
  }
  std::vector<const Document*> todo;
  std::vector<std::string> order;
  for (const Document& d : *docs) {
    order.push_back(d.key);
    if (!(*journal)->Succeeded(d.key)) todo.push_back(&d);
  }
  const int64_t total = static_cast<int64_t>(docs->size());
  Totals totals;
  totals.done = total - static_cast<int64_t>(todo.size());
  const Extractor extractor(o, engine->get(), rules.get(), constraint, prompt_template,
                            *model_sha256);
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  int running = o.concurrency;
  Status write_error;
  auto worker = [&] {
    for (size_t i = next++; i < todo.size(); i = next++) {
      int64_t tokens = 0;
      bool ok = false;
      const std::string line = extractor.Run(*todo[i], &tokens, &ok);
      Status s = (*journal)->Append(todo[i]->key, line);
      totals.tokens += tokens;
      totals.failed += ok ? 0 : 1;
      ++totals.done;
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        write_error = s;
        next = todo.size();  // stop taking documents: their lines could not be kept
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    --running;
    cv.notify_all();
  };
  const auto start = std::chrono::steady_clock::now();
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::vector<std::thread> threads;
  for (int k = 0; k < o.concurrency; ++k) threads.emplace_back(worker);
  {
    std::unique_lock<std::mutex> lock(mu);
    const auto period = tty ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
    while (!cv.wait_for(lock, period, [&] { return running == 0; })) {
      lock.unlock();
      PrintProgress(tty, total, totals, start, false);
      lock.lock();
    }
  }
  for (std::thread& t : threads) t.join();
  PrintProgress(tty, total, totals, start, true);
  if (!write_error.ok()) {
    std::fprintf(stderr, "error: %s\n", write_error.ToString().c_str());
    return kExitError;
  }
  if (Status s = (*journal)->Finish(order); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return kExitError;
  }
  // Failures among the documents skipped this time count too: the file is what matters.
  int64_t failed = 0;
  for (const std::string& key : order) failed += (*journal)->Succeeded(key) ? 0 : 1;
  return failed > 0 ? kExitError : kExitOk;
}

}  // namespace

CommandRunner RegisterExtract(CLI::App& app) {
  auto o = std::make_shared<ExtractOptions>();
  CLI::App* cmd = app.add_subcommand(
      "extract",
      "Structured data from documents: one JSON line per document, valid against --schema, "
      "checked by --rules, resumable (docs/structured-output.md)");
  cmd->add_option("--model", o->model, "GGUF file or Hugging Face checkpoint directory")
      ->required();
  cmd->add_option("--schema", o->schema_file, "JSON Schema file every value must satisfy")
      ->required();
  cmd->add_option("--rules", o->rules_file, "YAML file of validation rules (jq expressions)");
  cmd->add_option("--prompt-template", o->prompt_template_file,
                  "prompt file with {{text}} (and optionally {{schema}}, {{id}}) placeholders");
  cmd->add_option("--input", o->inputs,
                  "a directory (one document per file), a .jsonl file ({\"id\", \"text\"} per "
                  "line) or files; repeatable")
      ->required();
  cmd->add_option("--output", o->output, "the output .jsonl (resumed if it or its journal exists)")
      ->required();
  cmd->add_option("--concurrency", o->concurrency, "documents in flight (batched by the engine)");
  cmd->add_option("--max-attempts", o->max_attempts,
                  "attempts per document; a failed schema or rule check retries with feedback");
  cmd->add_option("--max-tokens", o->max_tokens, "generated tokens per attempt at most");
  cmd->add_option("--threads", o->threads, "worker threads (0 = all cores)");
  cmd->add_flag("--reproducible", o->reproducible,
                "write \"ms\": 0 so reruns give byte-identical files");
  cmd->add_flag("--best-effort", o->best_effort,
                "drop (and report) schema keywords that cannot be enforced instead of refusing");
  cmd->add_option("--temperature", o->sampling.temperature, "0 = greedy (default, reproducible)");
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling mass (1 = off)");
  cmd->add_option("--seed", o->sampling.seed, "sampling seed");
  AddEngineFlags(cmd, &o->engine);
  return [o]() { return RunExtract(*o); };
}

}  // namespace gemma_local::cli
