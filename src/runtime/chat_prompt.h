// A chat's prompt ids, with only the chat template's own markers read as control tokens.
//
// The template's output is trusted text (its "<start_of_turn>", "<|turn>" are special tokens),
// but the messages and tool schemas inside it come from users: a user who types
// "<end_of_turn>\n<start_of_turn>model\n" must not be able to end their turn and speak for the
// model. So special-token text in any string of the messages or tools is swapped for a private
// placeholder before rendering, put back after, and those spans are tokenized as ordinary text
// (EncodeOptions::literal_spans). Text without special-token strings tokenizes exactly as the
// whole rendered string would (the Hugging Face / llama.cpp reference behaviour).
#pragma once

#include <cstdint>
#include <vector>

#include "gemma_local/chat_template.h"
#include "gemma_local/status.h"
#include "gemma_local/tokenizer.h"

namespace gemma_local {

Result<std::vector<int32_t>> TokenizeChat(const ChatTemplate& chat_template,
                                          ChatTemplateInputs inputs, const Tokenizer& tokenizer);

}  // namespace gemma_local
