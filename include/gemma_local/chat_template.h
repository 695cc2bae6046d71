// Chat templates: the model's own Jinja template, rendered exactly as Hugging Face transformers'
// apply_chat_template renders it (byte-identical output).
//
// Where the template comes from (first found wins): an explicit override file; for a checkpoint
// directory chat_template.jinja, then chat_template.json {"chat_template": ...}, then
// tokenizer_config.json "chat_template" (a string, or a list of {name, template} from which
// "default" is taken), then a GGUF file in the directory; for a tokenizer_config.json path its
// "chat_template"; for a GGUF file its tokenizer.chat_template metadata.
//
// Template variables are the ones transformers passes: messages, tools (None when absent),
// documents (None), add_generation_prompt, the tokenizer's special tokens as strings (bos_token,
// eos_token, unk_token, pad_token, ... from tokenizer_config.json, or from the GGUF vocabulary),
// and extra keyword arguments such as enable_thinking only when given.
//
// Thread-safety: a loaded ChatTemplate is immutable; Render may be called concurrently.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gemma_local/status.h"

namespace gemma_local {

// The deepest nesting of arrays/objects Render accepts in messages, tools and kwargs (the Jinja
// engine's cap); deeper input is a kInvalidArgument error. Callers that copy untrusted JSON into
// ChatTemplateInputs should check this bound first: nlohmann's copy recurses once per level.
inline constexpr size_t kMaxChatJsonDepth = 200;

struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  bool add_generation_prompt = false;
  std::optional<nlohmann::ordered_json> tools;  // a list of tool schemas; None when absent
  std::optional<bool> enable_thinking;          // undefined in the template when absent
  // Further template keyword arguments (an object); they override the special tokens.
  nlohmann::ordered_json extra_kwargs = nlohmann::ordered_json::object();
};

// Rewrites OpenAI Chat Completions messages into the shape the Gemma templates expect. Opt-in:
// transformers renders messages as given, so byte-identical rendering must not normalize.
//  - content: null becomes ""; content parts {"type": "text"} stay, "image_url"/"image" become
//    {"type": "image"}, "input_audio"/"audio" become {"type": "audio"}, "video_url"/"video" become
//    {"type": "video"}; any other part type is an error.
//  - assistant tool_calls: arguments given as a JSON string are parsed (they must be an object).
//  - role "tool" messages that follow an assistant message with tool_calls are folded into that
//    message's "tool_responses" [{name, response}] (Gemma 4's native form): the name comes from
//    the matching tool_call_id (or the message's "name"), the response is the parsed JSON when the
//    content is a JSON object, else the text.
// Errors name the message index and field, e.g. "messages[3].tool_calls[0].function.arguments:
// not a JSON object".
Result<nlohmann::ordered_json> NormalizeOpenAiMessages(const nlohmann::ordered_json& messages);

class ChatTemplate {
 public:
  // `model_path`: a checkpoint directory, a tokenizer_config.json, or a GGUF file. A non-empty
  // `template_path` overrides the template source (special tokens still come from the model).
  static Result<ChatTemplate> Load(const std::string& model_path,
                                   const std::string& template_path = "");
  // A template from source with explicit special tokens ({"bos_token": "<bos>", ...}).
  static Result<ChatTemplate> FromSource(const std::string& source,
                                         const nlohmann::ordered_json& special_tokens,
                                         std::string origin = "<string>");

  // Renders one conversation. Errors name the message index and field for malformed messages,
  // and the template line/column for template errors (including the template's raise_exception).
  Result<std::string> Render(const ChatTemplateInputs& inputs) const;

  const std::string& source() const;
  // Where the template came from, e.g. "/m/tokenizer_config.json (chat_template)".
  const std::string& origin() const;
  // The special tokens passed to the template.
  const nlohmann::ordered_json& special_tokens() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace gemma_local
