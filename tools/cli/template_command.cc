// `gemma-local template --model PATH [--template FILE] [--jsonl]`: renders conversations with the
// model's chat template, exactly as Hugging Face transformers would.
//
// --jsonl: each stdin line is {"messages": [...], "add_generation_prompt": bool, "tools": [...],
// "enable_thinking": bool} (the last two optional); each stdout line is {"ok": true, "text": ...}
// or
// {"ok": false, "error": ...}. A bad line never stops the stream. --openai normalizes
// OpenAI-style messages first (NormalizeOpenAiMessages). Without --jsonl the whole of stdin
// is one such object and the rendered text is written raw (errors to stderr, exit code 1).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "gemma_local/chat_template.h"

namespace gemma_local::cli {

namespace {

Result<ChatTemplateInputs> ParseRequest(const std::string& text, bool openai) {
  nlohmann::ordered_json j =
      nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("request is not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("request: expected a JSON object");
  ChatTemplateInputs in;
  if (!j.contains("messages")) return InvalidArgumentError("messages: missing");
  if (openai) {
    GL_ASSIGN_OR_RETURN(in.messages, NormalizeOpenAiMessages(j["messages"]));
  } else {
    in.messages = j["messages"];
  }
  if (j.contains("add_generation_prompt")) {
    if (!j["add_generation_prompt"].is_boolean()) {
      return InvalidArgumentError("add_generation_prompt: expected a boolean");
    }
    in.add_generation_prompt = j["add_generation_prompt"].get<bool>();
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    if (!j["tools"].is_array()) return InvalidArgumentError("tools: expected a list");
    in.tools = j["tools"];
  }
  if (j.contains("enable_thinking") && !j["enable_thinking"].is_null()) {
    if (!j["enable_thinking"].is_boolean()) {
      return InvalidArgumentError("enable_thinking: expected a boolean");
    }
    in.enable_thinking = j["enable_thinking"].get<bool>();
  }
  return in;
}

std::string Dump(const nlohmann::ordered_json& j) {
  // Invalid UTF-8 in a template's output is replaced rather than aborting the stream.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

CommandRunner RegisterTemplate(CLI::App& app) {
  struct Options {
    std::string model;
    std::string template_path;
    bool jsonl = false;
    bool openai = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "template",
      "Render conversations from stdin with the model's chat template (as transformers)");
  cmd->add_option("--model", opts->model,
                  "checkpoint directory, tokenizer_config.json, or GGUF file")
      ->required();
  cmd->add_option("--template", opts->template_path, "use this Jinja template file instead");
  cmd->add_flag("--jsonl", opts->jsonl,
                "one JSON request per stdin line, one JSON result per line");
  cmd->add_flag("--openai", opts->openai,
                "normalize OpenAI-style messages first (content parts, JSON-string tool arguments, "
                "tool-role results); off by default so output matches transformers byte for byte");
  return [opts]() {
    Result<ChatTemplate> tmpl = ChatTemplate::Load(opts->model, opts->template_path);
    if (!tmpl.ok()) {
      std::fprintf(stderr, "error: %s\n", tmpl.status().ToString().c_str());
      return kExitError;
    }
    if (!opts->jsonl) {
      const std::string text((std::istreambuf_iterator<char>(std::cin)),
                             std::istreambuf_iterator<char>());
      Result<ChatTemplateInputs> in = ParseRequest(text, opts->openai);
      Result<std::string> out = in.ok() ? tmpl->Render(*in) : Result<std::string>(in.status());
      if (!out.ok()) {
        std::fprintf(stderr, "error: %s\n", out.status().ToString().c_str());
        return kExitError;
      }
      std::fwrite(out->data(), 1, out->size(), stdout);
      return kExitOk;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Result<ChatTemplateInputs> in = ParseRequest(line, opts->openai);
      Result<std::string> out = in.ok() ? tmpl->Render(*in) : Result<std::string>(in.status());
      nlohmann::ordered_json result = nlohmann::ordered_json::object();
      result["ok"] = out.ok();
      if (out.ok()) {
        result["text"] = *out;
      } else {
        result["error"] = out.status().message();
      }
      const std::string s = Dump(result) + "\n";
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    }
    return kExitOk;
  };
}

}  // namespace gemma_local::cli
