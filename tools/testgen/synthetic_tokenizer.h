// Tokenizer data for test models: a small synthetic SentencePiece-style BPE vocabulary, or the
// real Gemma 3 tokenizer files, rendered both as GGUF tokenizer metadata (llama.cpp's "llama"/SPM
// layout) and as Hugging Face tokenizer files.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "gemma_local/status.h"

namespace gemma_local::testgen {

// llama.cpp token types.
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6 };

struct TokenizerData {
  std::vector<std::string> pieces;  // by id
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::pair<std::string, std::string>> merges;  // BPE merges, rank order
  std::string chat_template;
  nlohmann::json hf_tokenizer_json;   // tokenizer.json contents
  nlohmann::json hf_tokenizer_config; // tokenizer_config.json contents
};

// A deterministic vocabulary of exactly `vocab_size` (>= 512) pieces with Gemma's special ids
// (<pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4, <start_of_turn> 105, <end_of_turn> 106,
// "\n" 107), 256 byte-fallback pieces, "▁", printable ASCII, then merged pieces. With
// `gemma4_markers`, six of the <unusedN> control ids become Gemma 4's reply markers (<|tool_response>
// 50, <|channel> 100, <channel|> 101, <|tool_call> 102, <tool_call|> 103, <|"|> 104), so that
// random-weight Gemma 4 models can emit thinking and tool-call markup.
Result<TokenizerData> MakeSyntheticTokenizer(int64_t vocab_size, bool gemma4_markers = false);

// The real tokenizer from `dir`/tokenizer.json and `dir`/tokenizer_config.json.
Result<TokenizerData> LoadGemma3Tokenizer(const std::string& dir);

// Writes tokenizer.ggml.* and tokenizer.chat_template keys.
void WriteGgufTokenizer(const TokenizerData& tok, gguf::GgufWriter& writer);

}  // namespace gemma_local::testgen
