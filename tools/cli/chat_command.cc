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
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "gemma_local/chat_output.h"
#include "gemma_local/engine.h"

namespace gemma_local::cli {
namespace {

// Set by SIGINT; polled between tokens. A signal handler may only touch a lock-free atomic.
std::atomic<bool> g_interrupted{false};
void OnSigint(int) { g_interrupted.store(true); }

int ChatFail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitError;
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
    bool ignore_eos = false;
    bool stats = false;
    SamplingParams sampling;
    EngineFlags engine;
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
  cmd->add_flag("--ignore-eos", o->ignore_eos,
                "keep generating past the model's end-of-turn tokens (up to --max-tokens)");
  cmd->add_option("--temperature", o->sampling.temperature, "0 = greedy (default)");
  cmd->add_option("--top-k", o->sampling.top_k, "top-k (0 = off)");
  cmd->add_option("--top-p", o->sampling.top_p, "top-p (1 = off)");
  cmd->add_option("--seed", o->sampling.seed, "sampling seed");
  cmd->add_flag("--stats", o->stats,
                "after each reply, print its prompt size (and how much came from the cached conversation) and speed to stderr");
  AddEngineFlags(cmd, &o->engine);
  return [o]() {
    EngineOptions eo;
    eo.threads = o->threads;
    eo.quantize = o->quantize;
    eo.max_context = o->context;
    eo.template_path = o->template_path;
    if (Status flags = ApplyEngineFlags(o->engine, &eo); !flags.ok()) return ChatFail(flags);
    Result<std::unique_ptr<Engine>> engine = Engine::Open(o->model, eo);
    if (!engine.ok()) return ChatFail(engine.status());
    if (Status ready = (*engine)->ChatReady(); !ready.ok()) return ChatFail(ready);
    const bool tty = isatty(fileno(stdout)) != 0;
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: a blocked read returns so we can re-prompt

    std::string system = o->system;
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
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
      ChatInput chat;
      if (!system.empty()) chat.messages.push_back({{"role", "system"}, {"content", system}});
      for (const auto& m : history) chat.messages.push_back(m);
      chat.messages.push_back({{"role", "user"}, {"content", line}});
      if (o->think) chat.enable_thinking = true;
      Request request;
      request.input = RequestInput::Chat(std::move(chat));
      request.max_tokens = o->max_tokens;
      request.sampling = o->sampling;
      request.ignore_model_stop_tokens = o->ignore_eos;
      Result<std::unique_ptr<RequestHandle>> handle = (*engine)->Submit(std::move(request));
      if (!handle.ok()) {
        std::fprintf(stderr, "error: %s\n", handle.status().ToString().c_str());
        continue;
      }
      // Gemma 4 replies arrive parsed (reasoning, tool calls); Gemma 3 replies as content only.
      ReplyPrinter printer(tty);
      std::string reply;
      Event last;
      for (;;) {
        // Polls so that Ctrl-C (which only sets a flag) cancels within a tenth of a second.
        std::optional<Event> e = (*handle)->NextFor(std::chrono::milliseconds(100));
        if (g_interrupted.load()) (*handle)->Cancel();
        if (!e) continue;
        printer.Print(e->deltas);
        reply += e->Content();
        if (e->final) {
          last = std::move(*e);
          break;
        }
      }
      std::fprintf(stdout, "%s\n", g_interrupted.load() ? " [stopped]" : "");
      std::fflush(stdout);
      if (last.malformed) std::fprintf(stderr, "(reply not fully parsed: %s)\n", last.malformed_reason.c_str());
      if (o->stats) {
        const double decode_s = last.timings.decode_ms / 1000.0;
        const int64_t n = last.usage.completion_tokens;
        std::fprintf(stderr, "[prompt %lld tokens, %lld from the cached conversation; reply %lld tokens, %.1f tok/s]\n",
                     static_cast<long long>(last.usage.prompt_tokens), static_cast<long long>(last.usage.cached_tokens),
                     static_cast<long long>(n), n > 1 && decode_s > 0 ? static_cast<double>(n - 1) / decode_s : 0.0);
      }
      if (last.finish_reason == "error") {
        std::fprintf(stderr, "error: %s\n", last.error.ToString().c_str());
        continue;
      }
      history.push_back({{"role", "user"}, {"content", line}});
      history.push_back({{"role", "assistant"}, {"content", reply}});
    }
  };
}

}  // namespace gemma_local::cli
