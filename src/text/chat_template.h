// Internals of the chat-template facade (include/gemma_local/chat_template.h): locating the
// template source and the special tokens, and building the Jinja context. Exposed for tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gemma_local/chat_template.h"
#include "gemma_local/status.h"

namespace gemma_local {

struct ChatTemplateSource {
  std::string source;
  std::string origin;  // file and key it came from
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
};

// Finds the template and special tokens for `model_path` (see the facade for the order).
Result<ChatTemplateSource> FindChatTemplate(const std::string& model_path,
                                            const std::string& template_path);

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
