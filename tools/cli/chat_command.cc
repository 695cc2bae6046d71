// `gemma-local chat --model PATH`: an interactive terminal chat. Keeps the conversation, streams
// each reply as it is generated, and understands /reset, /system TEXT and /exit. Ctrl-C cancels
// the reply being generated and returns to the prompt; Ctrl-D (end of input) leaves.
//
// Gemma 4 replies are parsed while they stream (chat_output.h): thinking is shown prefixed with
// "[thinking] " (dimmed on a terminal), each tool call as one JSON line, and the answer as is.
// The history keeps only the answer as the assistant's content: the official template drops
// thinking from earlier turns anyway, and tool calls stay out because no tool results can follow
// them here (a tool call without responses would leave the model's turn open).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "gemma_local/chat_output.h"
#include "gemma_local/chat_template.h"
#include "gemma_local/engine.h"
#include "gemma_local/model_info.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local::cli {
namespace {

// Set by SIGINT; polled between tokens. A signal handler may only touch a lock-free atomic.
std::atomic<bool> g_interrupted{false};
void OnSigint(int) { g_interrupted.store(true); }

int ChatFail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return kExitError;
}

// Prints a parsed Gemma 4 reply as it streams: reasoning runs start with "[thinking] " (dimmed
// when stdout is a terminal) and end with a newline before the answer; tool calls are JSON lines.
class ReplyPrinter {
 public:
  explicit ReplyPrinter(bool tty) : tty_(tty) {}
  void Print(const std::vector<ReplyEvent>& events) {
    for (const ReplyEvent& e : events) {
      switch (e.kind) {
        case ReplyEvent::Kind::kReasoning:
          if (last_ != Last::kReasoning) {
            NewLine();
            Write(tty_ ? "\x1b[2m[thinking] " : "[thinking] ");
          } else if (tty_) {
            Write("\x1b[2m");
          }
          Write(e.text);
          if (tty_) Write("\x1b[0m");
          last_ = Last::kReasoning;
          break;
        case ReplyEvent::Kind::kContent:
          if (last_ == Last::kReasoning) NewLine();
          Write(e.text);
          last_ = Last::kContent;
          break;
        case ReplyEvent::Kind::kToolCall:
          NewLine();
          Write(e.tool_call.ToJson().dump());
          Write("\n");
          last_ = Last::kToolCall;
          break;
      }
    }
    std::fflush(stdout);
  }

 private:
  enum class Last { kNone, kReasoning, kContent, kToolCall };
  void Write(const std::string& s) {
    if (s.empty()) return;
    std::fwrite(s.data(), 1, s.size(), stdout);
    at_line_start_ = s.back() == '\n';
  }
  void NewLine() {
    if (!at_line_start_) Write("\n");
  }
  bool tty_;
  Last last_ = Last::kNone;
  bool at_line_start_ = true;
};

}  // namespace

CommandRunner RegisterChat(CLI::App& app) {
  struct Options {
    std::string model;
    std::string system;
    std::string template_path;
    int64_t max_tokens = 1024;
    int64_t context = 8192;
    int threads = 0;
    std::string quantize;
    bool think = false;
    SamplingParams sampling;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("chat", "Interactive chat in the terminal (/reset, /system TEXT, /exit)");
  cmd->add_option("--model", o->model, "GGUF file or Hugging Face checkpoint directory")->required();
  cmd->add_option("--system", o->system, "initial system message");
  cmd->add_option("--template", o->template_path, "chat template file overriding the model's");
  cmd->add_option("--max-tokens", o->max_tokens, "reply length limit");
  cmd->add_option("--context", o->context, "context size in tokens");
  cmd->add_option("--threads", o->threads, "worker threads (0 = all cores)");
  cmd->add_option("--quantize", o->quantize, "quantize weights at load: q8_0, q4_0, q4_k (= q4_k_m), ...");
  cmd->add_flag("--think", o->think, "Gemma 4: enable the thinking channel");
  cmd->add_option("--temperature", o->sampling.temperature, "0 = greedy (default)");
  cmd->add_option("--top-k", o->sampling.top_k, "top-k (0 = off)");
  cmd->add_option("--top-p", o->sampling.top_p, "top-p (1 = off)");
  cmd->add_option("--seed", o->sampling.seed, "sampling seed");
  return [o]() {
    Result<std::shared_ptr<const Tokenizer>> tokenizer = Tokenizer::Load(o->model);
    if (!tokenizer.ok()) return ChatFail(tokenizer.status());
    Result<ChatTemplate> tmpl = ChatTemplate::Load(o->model, o->template_path);
    if (!tmpl.ok()) return ChatFail(tmpl.status());
    EngineOptions eo;
    eo.threads = o->threads;
    eo.quantize = o->quantize;
    eo.max_context = o->context;
    Result<std::unique_ptr<Engine>> engine = Engine::Open(o->model, eo);
    if (!engine.ok()) return ChatFail(engine.status());
    Result<ModelInfo> info = InspectModel(o->model);
    const bool gemma4 = info.ok() && info->architecture == "gemma4";
    const bool tty = isatty(fileno(stdout)) != 0;
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: a blocked read returns so we can re-prompt

    std::string system = o->system;
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
    GenerateOptions go;
    go.max_tokens = o->max_tokens;
    go.sampling = o->sampling;
    go.stop_tokens = (*engine)->default_stop_tokens();
    std::fprintf(stderr, "gemma-local chat: /reset clears the conversation, /system TEXT sets the system message, "
                         "/exit or Ctrl-D leaves, Ctrl-C stops a reply.\n");
    std::string line;
    for (;;) {
      std::fprintf(stdout, "> ");
      std::fflush(stdout);
      g_interrupted.store(false);
      if (!std::getline(std::cin, line)) {
        if (g_interrupted.load() && !std::cin.eof()) {  // Ctrl-C at the prompt: just re-prompt
          std::cin.clear();
          std::fprintf(stdout, "\n");
          continue;
        }
        std::fprintf(stdout, "\n");
        return kExitOk;
      }
      if (line == "/exit" || line == "/quit") return kExitOk;
      if (line == "/reset") {
        history = nlohmann::ordered_json::array();
        std::fprintf(stdout, "(conversation cleared)\n");
        continue;
      }
      if (line.rfind("/system", 0) == 0) {
        system = line.size() > 8 ? line.substr(8) : "";
        history = nlohmann::ordered_json::array();
        std::fprintf(stdout, "(system message set; conversation cleared)\n");
        continue;
      }
      if (line.empty()) continue;
      ChatTemplateInputs in;
      if (!system.empty()) in.messages.push_back({{"role", "system"}, {"content", system}});
      for (const auto& m : history) in.messages.push_back(m);
      in.messages.push_back({{"role", "user"}, {"content", line}});
      in.add_generation_prompt = true;
      if (o->think) in.enable_thinking = true;
      Result<std::string> rendered = tmpl->Render(in);
      if (!rendered.ok()) {
        std::fprintf(stderr, "error: %s\n", rendered.status().ToString().c_str());
        continue;
      }
      Result<std::vector<int32_t>> ids = (*tokenizer)->Encode(*rendered, EncodeOptions{std::nullopt, true});
      if (!ids.ok()) {
        std::fprintf(stderr, "error: %s\n", ids.status().ToString().c_str());
        continue;
      }
      // Gemma 4: special tokens are skipped except the markers the reply parser reads.
      TokenStreamDecoder stream(*tokenizer, DecodeOptions{/*skip_special=*/!gemma4});
      Gemma4OutputParser parser;
      ReplyPrinter printer(tty);
      std::string reply;
      auto show = [&](const std::string& piece) {
        if (gemma4) {
          printer.Print(parser.Feed(piece));
          return;
        }
        reply += piece;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      };
      const std::vector<int32_t>& stops = go.stop_tokens;
      Result<GenerateResult> r = (*engine)->Generate(*ids, go, [&](int32_t id) {
        if (g_interrupted.load()) return false;
        if (std::find(stops.begin(), stops.end(), id) != stops.end()) return true;
        if (gemma4 && (*tokenizer)->IsSpecial(id)) {
          Result<std::string> marker = (*tokenizer)->IdToPiece(id);
          if (!marker.ok() || !IsGemma4OutputMarker(*marker)) return true;
        }
        Result<std::string> piece = stream.Push(id);
        if (piece.ok()) show(*piece);
        return true;
      });
      show(stream.Finish());
      if (gemma4) {
        printer.Print(parser.Finish());
        reply = parser.reply().content;
      }
      std::fprintf(stdout, "%s\n", g_interrupted.load() ? " [stopped]" : "");
      std::fflush(stdout);
      if (gemma4 && parser.reply().malformed) {
        std::fprintf(stderr, "(reply not fully parsed: %s)\n", parser.reply().malformed_reason.c_str());
      }
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
        continue;
      }
      history.push_back({{"role", "user"}, {"content", line}});
      history.push_back({{"role", "assistant"}, {"content", reply}});
    }
  };
}

}  // namespace gemma_local::cli
