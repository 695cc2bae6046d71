#include "testgen/synthetic_tokenizer.h"

#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "core/mapped_file.h"

namespace gemma_local::testgen {
namespace {

using nlohmann::json;

constexpr const char* kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's whitespace marker

// A Gemma-3-style turn template written for the synthetic tokenizer (not the official one).
constexpr const char* kSyntheticChatTemplate =
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + (message['content'] | trim) + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

constexpr const char* kWords[] = {
    "the", "and", "of", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
    "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by",
    "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there",
    "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other",
    "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make", "like",
    "him", "into", "time", "has", "look", "two", "more", "write", "go", "see", "number", "no",
    "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "its", "now",
    "find", "hello", "world", "gemma", "model", "local", "engine", "token", "json", "answer",
};

// Splits UTF-8 text into characters.
std::vector<std::string> Utf8Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

json AddedToken(int64_t id, const std::string& content, bool special) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

json HfTokenizerJson(const TokenizerData& tok) {
  json vocab = json::object();
  for (size_t i = 0; i < tok.pieces.size(); ++i) vocab[tok.pieces[i]] = i;
  json merges = json::array();
  for (const auto& [a, b] : tok.merges) merges.push_back(json::array({a, b}));
  json added = json::array();
  for (size_t i = 0; i < tok.pieces.size(); ++i) {
    if (tok.types[i] == TokenType::kControl || tok.types[i] == TokenType::kUnknown) {
      added.push_back(AddedToken(static_cast<int64_t>(i), tok.pieces[i], true));
    }
  }
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}},
                        {"behavior", "MergedWithPrevious"}, {"invert", false}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                            {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                            {{"SpecialToken", {{"id", "<bos>"}, {"type_id", 1}}}},
                            {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
      {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", json::array({2})}, {"tokens", json::array({"<bos>"})}}}}}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                            {{"type", "ByteFallback"}},
                                            {{"type", "Fuse"}}})}};
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", merges}};
  return j;
}

json HfTokenizerConfig(const TokenizerData& tok) {
  return {{"add_bos_token", true},       {"add_eos_token", false},
          {"bos_token", "<bos>"},        {"eos_token", "<end_of_turn>"},
          {"pad_token", "<pad>"},        {"unk_token", "<unk>"},
          {"chat_template", tok.chat_template},
          {"clean_up_tokenization_spaces", false},
          {"model_max_length", 32768},   {"padding_side", "left"},
          {"tokenizer_class", "GemmaTokenizer"},
          {"spaces_between_special_tokens", false}};
}

}  // namespace

Result<TokenizerData> MakeSyntheticTokenizer(int64_t vocab_size, bool gemma4_markers) {
  if (vocab_size < 512 || vocab_size > (1 << 20)) {
    return InvalidArgumentError("synthetic tokenizer: vocab_size must be in [512, 1048576], got " +
                                std::to_string(vocab_size));
  }
  TokenizerData tok;
  std::unordered_set<std::string> seen;
  auto add = [&](const std::string& piece, TokenType type, float score) {
    tok.pieces.push_back(piece);
    tok.types.push_back(type);
    tok.scores.push_back(score);
    seen.insert(piece);
  };
  add("<pad>", TokenType::kControl, 0);
  add("<eos>", TokenType::kControl, 0);
  add("<bos>", TokenType::kControl, 0);
  add("<unk>", TokenType::kUnknown, 0);
  add("<mask>", TokenType::kControl, 0);
  for (int i = 0; tok.pieces.size() < 105; ++i) add("<unused" + std::to_string(i) + ">", TokenType::kControl, 0);
  if (gemma4_markers) {
    const std::pair<size_t, const char*> markers[] = {{50, "<|tool_response>"}, {100, "<|channel>"},
                                                      {101, "<channel|>"},      {102, "<|tool_call>"},
                                                      {103, "<tool_call|>"},    {104, "<|\"|>"}};
    for (const auto& [id, piece] : markers) {
      seen.erase(tok.pieces[id]);
      tok.pieces[id] = piece;
      seen.insert(piece);
    }
  }
  add("<start_of_turn>", TokenType::kControl, 0);
  add("<end_of_turn>", TokenType::kControl, 0);
  add("\n", TokenType::kNormal, 0);
  add("\n\n", TokenType::kNormal, 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name, TokenType::kByte, 0);
  }
  add(kSpace, TokenType::kNormal, 0);
  for (int c = 33; c < 127; ++c) add(std::string(1, static_cast<char>(c)), TokenType::kNormal, 0);
  tok.merges.push_back({"\n", "\n"});

  // Merged pieces: each word (with and without the leading ▁) built left to right, then letter
  // pairs; each new piece scores -rank so SentencePiece-style merging follows the BPE ranks.
  std::vector<std::string> words;
  for (const char* w : kWords) {
    words.push_back(std::string(kSpace) + w);
    words.push_back(w);
  }
  for (char a = 'a'; a <= 'z'; ++a) {
    for (char b = 'a'; b <= 'z'; ++b) words.push_back(std::string{a, b});
  }
  for (const std::string& word : words) {
    std::vector<std::string> parts = Utf8Chars(word);
    while (parts.size() > 1 && static_cast<int64_t>(tok.pieces.size()) < vocab_size) {
      const std::string merged = parts[0] + parts[1];
      if (!seen.count(merged)) {
        tok.merges.push_back({parts[0], parts[1]});
        add(merged, TokenType::kNormal, -static_cast<float>(tok.merges.size()));
      }
      parts.erase(parts.begin());
      parts[0] = merged;
    }
  }
  for (int i = 0; static_cast<int64_t>(tok.pieces.size()) < vocab_size; ++i) {
    add("<unused_extra" + std::to_string(i) + ">", TokenType::kControl, 0);
  }
  tok.chat_template = kSyntheticChatTemplate;
  tok.hf_tokenizer_json = HfTokenizerJson(tok);
  tok.hf_tokenizer_config = HfTokenizerConfig(tok);
  return tok;
}

Result<TokenizerData> LoadGemma3Tokenizer(const std::string& dir) {
  const std::string tj_path = dir + "/tokenizer.json";
  const std::string tc_path = dir + "/tokenizer_config.json";
  GL_ASSIGN_OR_RETURN(std::string tj_text, ReadSmallFile(tj_path, 256u << 20));
  GL_ASSIGN_OR_RETURN(std::string tc_text, ReadSmallFile(tc_path, 64u << 20));
  TokenizerData tok;
  tok.hf_tokenizer_json = json::parse(tj_text, nullptr, false);
  tok.hf_tokenizer_config = json::parse(tc_text, nullptr, false);
  if (tok.hf_tokenizer_json.is_discarded()) return CorruptDataError(tj_path + ": not valid JSON");
  if (tok.hf_tokenizer_config.is_discarded()) return CorruptDataError(tc_path + ": not valid JSON");
  const json& model = tok.hf_tokenizer_json["model"];
  if (!model.is_object() || !model["vocab"].is_object() || !model["merges"].is_array()) {
    return CorruptDataError(tj_path + ": model.vocab / model.merges missing");
  }
  const json& vocab = model["vocab"];
  tok.pieces.assign(vocab.size(), "");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size())) return CorruptDataError(tj_path + ": vocab id out of range");
    tok.pieces[id] = it.key();
  }
  tok.types.assign(tok.pieces.size(), TokenType::kNormal);
  tok.scores.assign(tok.pieces.size(), 0.0f);
  for (size_t i = 0; i < tok.pieces.size(); ++i) {
    const std::string& p = tok.pieces[i];
    if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p.back() == '>') tok.types[i] = TokenType::kByte;
  }
  for (const json& added : tok.hf_tokenizer_json["added_tokens"]) {
    const int64_t id = added["id"].get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(tok.pieces.size())) continue;  // e.g. the image token
    const std::string content = added["content"].get<std::string>();
    if (content == "<unk>") {
      tok.types[id] = TokenType::kUnknown;
    } else {
      tok.types[id] = added["special"].get<bool>() ? TokenType::kControl : TokenType::kUserDefined;
    }
  }
  std::unordered_map<std::string, int64_t> id_of;
  for (size_t i = 0; i < tok.pieces.size(); ++i) id_of.emplace(tok.pieces[i], static_cast<int64_t>(i));
  int64_t rank = 0;
  for (const json& m : model["merges"]) {
    std::string a, b;
    if (m.is_array() && m.size() == 2) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) continue;
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    }
    ++rank;
    auto it = id_of.find(a + b);
    if (it != id_of.end() && tok.scores[it->second] == 0.0f) tok.scores[it->second] = -static_cast<float>(rank);
    tok.merges.push_back({std::move(a), std::move(b)});
  }
  if (tok.hf_tokenizer_config.contains("chat_template") && tok.hf_tokenizer_config["chat_template"].is_string()) {
    tok.chat_template = tok.hf_tokenizer_config["chat_template"].get<std::string>();
  }
  return tok;
}

void WriteGgufTokenizer(const TokenizerData& tok, gguf::GgufWriter& w) {
  using gguf::Value;
  w.Set("tokenizer.ggml.model", Value::String("llama"));
  w.Set("tokenizer.ggml.pre", Value::String("default"));
  w.Set("tokenizer.ggml.tokens", Value::StringArray(tok.pieces));
  w.Set("tokenizer.ggml.scores", Value::F32Array(tok.scores));
  std::vector<int32_t> types;
  for (TokenType t : tok.types) types.push_back(static_cast<int32_t>(t));
  w.Set("tokenizer.ggml.token_type", Value::I32Array(types));
  w.Set("tokenizer.ggml.bos_token_id", Value::U32(2));
  w.Set("tokenizer.ggml.eos_token_id", Value::U32(1));
  w.Set("tokenizer.ggml.unknown_token_id", Value::U32(3));
  w.Set("tokenizer.ggml.padding_token_id", Value::U32(0));
  w.Set("tokenizer.ggml.add_bos_token", Value::Bool(true));
  w.Set("tokenizer.ggml.add_eos_token", Value::Bool(false));
  w.Set("tokenizer.ggml.add_space_prefix", Value::Bool(false));
  if (!tok.chat_template.empty()) w.Set("tokenizer.chat_template", Value::String(tok.chat_template));
}

}  // namespace gemma_local::testgen
