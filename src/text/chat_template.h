// Internals of the chat-template facade (include/gemma_local/chat_template.h): locating the
// template source and the special tokens, and building the Jinja context. Exposed for tests.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "gemma_local/chat_template.h"
#include "gemma_local/status.h"

namespace gemma_local {

struct ChatTemplateSource {
  std::string source;
  std::string origin;  // file and key it came from
  bool builtin = false;  // the built-in fallback (the checkpoint has no template)
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
};

// Finds the template and special tokens for `model_path` (see the facade for the order). When
// the checkpoint has no template but its family is known (ModelFamilyForTemplate), the built-in
// format of that family is used and a warning is logged to stderr; otherwise kNotFound.
Result<ChatTemplateSource> FindChatTemplate(const std::string& model_path,
                                            const std::string& template_path);

// "gemma3" or "gemma4" for a checkpoint directory (config.json model_type / architectures, else
// a GGUF in it), a GGUF file (general.architecture) or a tokenizer_config.json (the config.json
// beside it); "" when unknown. Reads metadata only.
std::string ModelFamilyForTemplate(const std::string& model_path);

// The built-in fallback template source for a family ("gemma3", "gemma4"): written for this
// project; renders plain text conversations exactly as the official templates do and raises a
// template error for tools, tool calls and non-text content. nullopt for other families.
std::optional<std::string> BuiltinChatTemplate(std::string_view family);

// tokenizer_config.json "chat_template": a string, or a list of {name, template} ("default").
Result<std::string> ChatTemplateFromConfigValue(const nlohmann::ordered_json& value,
                                                const std::string& where);

// Special tokens from tokenizer_config.json as transformers' special_tokens_map exposes them:
// bos/eos/unk/sep/pad/cls/mask_token as strings (AddedToken objects give their "content"), and
// additional_special_tokens as a list of strings.
nlohmann::ordered_json SpecialTokensFromConfig(const nlohmann::ordered_json& config);

// Checks the shape every chat template relies on: messages is a list of objects, each with a
// string "role". Errors name the index and field ("messages[2].role: ...").
Status ValidateMessages(const nlohmann::ordered_json& messages);

}  // namespace gemma_local
