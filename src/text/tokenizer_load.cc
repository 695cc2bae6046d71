// Loaders: Hugging Face tokenizer.json (+ tokenizer_config.json) and GGUF tokenizer.ggml.* keys
// -> VocabSpec. Only the shapes Gemma checkpoints use are accepted; anything else is an explicit
// kUnsupported error naming the field, never a silently different tokenizer.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/json_access.h"
#include "formats/gguf.h"
#include "text/tokenizer.h"
#include "text/tokenizer_json.h"

namespace gemma_local::text {
namespace {

using nlohmann::json;

constexpr const char* kSpaceMarker = "\xE2\x96\x81";

bool IsBytePiece(std::string_view p) {
  return p.size() == 6 && p.substr(0, 3) == "<0x" && p[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(p[3])) &&
         std::isxdigit(static_cast<unsigned char>(p[4]));
}

// A tokenizer_config.json token entry: a string or {"content": ...} (AddedToken form). Any other
// shape reads as no token, as before (the config is advisory here).
std::string TokenName(const json& config, const char* key) {
  const json* v = JsonFind(config, key);
  if (v == nullptr) return {};
  if (v->is_string()) return v->get_ref<const std::string&>();
  const json* content = JsonFind(*v, "content");
  return content != nullptr && content->is_string() ? content->get_ref<const std::string&>()
                                                    : std::string();
}

// True when obj[key] is the string `s` (false for any other type, or when obj is no object).
bool StringMemberIs(const json* obj, const char* key, std::string_view s) {
  const json* v = obj != nullptr ? JsonFind(*obj, key) : nullptr;
  return v != nullptr && v->is_string() && v->get_ref<const std::string&>() == s;
}

// True when obj[key] is {"String": s}.
bool IsStringPattern(const json* obj, const char* key, std::string_view s) {
  return StringMemberIs(obj != nullptr ? JsonFind(*obj, key) : nullptr, "String", s);
}

}  // namespace

Result<VocabSpec> VocabSpecFromHfJson(std::string_view tokenizer_json, std::string_view config_json,
                                      const std::string& source) {
  // nlohmann stops at a NUL byte as if the input ended there; JSON text never contains one.
  if (tokenizer_json.find('\0') != std::string_view::npos) {
    return CorruptDataError(source + ": contains a NUL byte");
  }
  // model.vocab and model.merges are scanned into views; the rest is an ordinary json document.
  HfTokenizerJson parsed;
  GL_RETURN_IF_ERROR(ParseHfTokenizerJson(tokenizer_json, source, parsed));
  const json& j = parsed.doc;
  json config = json::object();
  if (!config_json.empty()) {
    if (config_json.find('\0') != std::string_view::npos) {
      return CorruptDataError(source + ": tokenizer_config.json contains a NUL byte");
    }
    config = json::parse(config_json, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      return CorruptDataError(source + ": tokenizer_config.json is not a JSON object");
    }
  }

  // Every member is read through core/json_access: a wrong type is an error naming the field,
  // never an exception, and nothing untrusted is copied (copies recurse per nesting level).
  const std::string root = source + ":";
  const json* model = JsonFind(j, "model");
  if (!model || !model->is_object()) return CorruptDataError(source + ": no \"model\" object");
  const std::string mpath = JsonPathKey(root, "model");
  GL_ASSIGN_OR_RETURN(const std::string type,
                      JsonOptionalField<std::string>(*model, "type", "", mpath));
  if (type != "BPE") {
    return UnsupportedError(source + ": model.type \"" + type + "\" (only BPE is supported)");
  }
  GL_ASSIGN_OR_RETURN(const bool byte_fallback,
                      JsonOptionalField<bool>(*model, "byte_fallback", false, mpath));
  if (!byte_fallback) {
    return UnsupportedError(source + ": model.byte_fallback is false (Gemma's BPE needs it)");
  }
  GL_ASSIGN_OR_RETURN(const bool ignore_merges,
                      JsonOptionalField<bool>(*model, "ignore_merges", false, mpath));
  if (ignore_merges) {
    return UnsupportedError(source + ": model.ignore_merges = true is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = JsonFind(*model, key);
    if (v != nullptr && !v->is_null() &&
        !(v->is_string() && v->get_ref<const std::string&>().empty())) {
      return UnsupportedError(source + ": model." + key + " is not supported");
    }
  }
  const json* dropout = JsonFind(*model, "dropout");
  if (dropout != nullptr && !dropout->is_null()) {
    return UnsupportedError(source + ": model.dropout is not supported (encoding must be exact)");
  }
  // Normalizer: exactly Replace(" " -> "▁"), Gemma's. The Split-on-" " pre-tokenizer that follows
  // it can never fire (no ' ' is left after the normalizer), so it is accepted as a no-op.
  const json* norm = JsonFind(j, "normalizer");
  if (!(StringMemberIs(norm, "type", "Replace") && IsStringPattern(norm, "pattern", " ") &&
        StringMemberIs(norm, "content", kSpaceMarker))) {
    return UnsupportedError(source + ": normalizer must be Replace(\" \" -> \"\\u2581\"), got " +
                            (norm != nullptr ? JsonSnippet(*norm) : "null"));
  }
  const json* pre = JsonFind(j, "pre_tokenizer");
  if (pre != nullptr && !pre->is_null()) {
    const json* invert = JsonFind(*pre, "invert");
    if (!(StringMemberIs(pre, "type", "Split") && IsStringPattern(pre, "pattern", " ") &&
          (invert == nullptr || invert->is_null() || *invert == false))) {
      return UnsupportedError(source + ": pre_tokenizer must be null or Split(\" \"), got " +
                              JsonSnippet(*pre));
    }
  }

  if (!parsed.has_vocab) return CorruptDataError(source + ": no model.vocab object");
  static const json kNoAddedTokens = json::array();
  const json* added_tokens = JsonFind(j, "added_tokens");
  const json& added = added_tokens != nullptr ? *added_tokens : kNoAddedTokens;
  if (!added.is_array()) return CorruptDataError(source + ": added_tokens is not an array");
  const std::string added_path = JsonPathKey(root, "added_tokens");

  // The id space covers the vocabulary and the added tokens (Gemma 3's <image_soft_token> is
  // 262144, one past the 262,144 BPE pieces).
  if (!parsed.vocab_not_integer.empty()) {
    // The first offender in key order, as iterating the JSON object would find it.
    const std::string_view key =
        *std::min_element(parsed.vocab_not_integer.begin(), parsed.vocab_not_integer.end());
    return CorruptDataError(source + ": model.vocab[" + std::string(key) + "] is not an integer");
  }
  int64_t max_id = -1;
  for (const auto& [key, id] : parsed.vocab) max_id = std::max(max_id, id);
  for (size_t k = 0; k < added.size(); ++k) {
    const Result<int64_t> id = JsonField<int64_t>(added[k], "id", JsonPathIndex(added_path, k));
    if (!id.ok() || !JsonField<std::string>(added[k], "content", added_path).ok()) {
      return CorruptDataError(source + ": an added_tokens entry lacks an integer id or content");
    }
    max_id = std::max(max_id, *id);
  }
  if (max_id < 0 || max_id >= (1 << 30)) {
    return CorruptDataError(source + ": vocabulary ids out of range (max " +
                            std::to_string(max_id) + ")");
  }
  // Every id needs a piece, so ids beyond the number of entries leave a gap: say so before
  // allocating tables for them (a 30-byte file could otherwise ask for 2^30 entries).
  const uint64_t entries = parsed.vocab.size() + added.size();
  if (static_cast<uint64_t>(max_id) >= entries) {
    return CorruptDataError(source + ": vocabulary ids go up to " + std::to_string(max_id) +
                            " but only " + std::to_string(entries) +
                            " entries define pieces (ids must be dense)");
  }
  VocabSpec spec;
  spec.source = source;
  spec.algorithm = Algorithm::kBpeMerges;
  const size_t n = static_cast<size_t>(max_id) + 1;
  spec.pieces.resize(n);
  spec.kinds.assign(n, PieceKind::kNormal);
  spec.distinct.assign(n, 0);
  std::vector<uint8_t> have(n, 0);
  for (const auto& [key, id] : parsed.vocab) {
    if (id < 0) return CorruptDataError(source + ": negative id for " + std::string(key));
    if (have[static_cast<size_t>(id)]) {
      return CorruptDataError(source + ": id " + std::to_string(id) + " used twice in model.vocab");
    }
    have[static_cast<size_t>(id)] = 1;
    spec.distinct[static_cast<size_t>(id)] = 1;
    spec.pieces[static_cast<size_t>(id)] = key;
    if (IsBytePiece(key)) spec.kinds[static_cast<size_t>(id)] = PieceKind::kByte;
  }
  GL_ASSIGN_OR_RETURN(const std::string unk_name,
                      JsonOptionalField<std::string>(*model, "unk_token", "", mpath));
  for (size_t k = 0; k < added.size(); ++k) {
    // Shape checked above: an object with an int64 "id" and a string "content".
    const json& a = added[k];
    const std::string at = JsonPathIndex(added_path, k);
    const int64_t id = *JsonField<int64_t>(a, "id", at);
    if (id < 0) return CorruptDataError(source + ": negative added token id");
    const std::string& content = JsonFind(a, "content")->get_ref<const std::string&>();
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      GL_ASSIGN_OR_RETURN(const bool set, JsonOptionalField<bool>(a, flag, false, at));
      if (set) {
        return UnsupportedError(source + ": added token \"" + content + "\" has " + flag +
                                " = true");
      }
    }
    GL_ASSIGN_OR_RETURN(const bool normalized, JsonOptionalField<bool>(a, "normalized", false, at));
    if (normalized && (content.find(' ') != std::string::npos ||
                       content.find(kSpaceMarker) != std::string::npos)) {
      return UnsupportedError(source + ": normalized added token \"" + content +
                              "\" contains whitespace");
    }
    const size_t i = static_cast<size_t>(id);
    if (have[i] && spec.pieces[i] != content) {
      return CorruptDataError(source + ": added token " + std::to_string(id) + " \"" + content +
                              "\" contradicts model.vocab \"" + std::string(spec.pieces[i]) + "\"");
    }
    if (!have[i]) spec.pieces[i] = parsed.owned.emplace_back(content);
    have[i] = 1;
    GL_ASSIGN_OR_RETURN(const bool special, JsonOptionalField<bool>(a, "special", false, at));
    spec.kinds[i] = content == unk_name ? PieceKind::kUnknown
                    : special           ? PieceKind::kControl
                                        : PieceKind::kUserDefined;
    spec.added.emplace_back(static_cast<int32_t>(id), special);
    if (special) spec.special_ids.push_back(static_cast<int32_t>(id));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!have[i]) return CorruptDataError(source + ": no piece for id " + std::to_string(i));
  }

  if (!parsed.has_merges) return CorruptDataError(source + ": no model.merges array");
  spec.merges.reserve(parsed.merges.size());
  for (const HfJsonMerge& m : parsed.merges) {
    if (m.kind == HfJsonMerge::kPair) {
      spec.merges.push_back({m.a, m.b});
    } else if (m.kind == HfJsonMerge::kJoined) {
      const std::string_view s = m.a;
      const size_t sp = s.find(' ');
      if (sp == std::string_view::npos || s.find(' ', sp + 1) != std::string_view::npos) {
        return CorruptDataError(source + ": merge \"" + std::string(s) +
                                "\" is not two space-separated parts");
      }
      spec.merges.push_back({s.substr(0, sp), s.substr(sp + 1)});
    } else {
      return CorruptDataError(source + ": a merge is neither [a, b] nor \"a b\"");
    }
  }
  spec.owned = std::move(parsed.owned);

  auto find_id = [&](std::string_view name) -> int32_t {
    if (name.empty()) return -1;
    for (size_t i = 0; i < n; ++i) {
      if (spec.pieces[i] == name) return static_cast<int32_t>(i);
    }
    return -1;
  };
  std::string bos = TokenName(config, "bos_token");
  std::string eos = TokenName(config, "eos_token");
  // The post-processor names the token it prepends; without a config that decides add_bos.
  bool post_adds_bos = false;
  const json* post = JsonFind(j, "post_processor");
  const json* single = post != nullptr ? JsonFind(*post, "single") : nullptr;
  if (StringMemberIs(post, "type", "TemplateProcessing") && single != nullptr &&
      single->is_array() && !single->empty()) {
    const json* special = JsonFind((*single)[0], "SpecialToken");
    if (special != nullptr && special->is_object()) {
      post_adds_bos = true;
      if (bos.empty()) {
        GL_ASSIGN_OR_RETURN(bos, JsonOptionalField<std::string>(
                                     *special, "id", "",
                                     JsonPathKey(root, "post_processor.single[0].SpecialToken")));
      }
    }
  }
  spec.bos_id = find_id(bos.empty() ? "<bos>" : bos);
  spec.eos_id = find_id(eos.empty() ? "<eos>" : eos);
  spec.unk_id = find_id(unk_name);
  spec.pad_id = find_id(TokenName(config, "pad_token"));
  // add_bos_token / add_eos_token of another type are ignored, as before (advisory config).
  const json* add_bos = JsonFind(config, "add_bos_token");
  spec.add_bos = add_bos != nullptr && add_bos->is_boolean() ? add_bos->get<bool>() : post_adds_bos;
  const json* add_eos = JsonFind(config, "add_eos_token");
  if (add_eos != nullptr && add_eos->is_boolean()) spec.add_eos = add_eos->get<bool>();
  if (spec.add_bos && spec.bos_id < 0) return CorruptDataError(source + ": BOS token not found");
  if (spec.add_eos && spec.eos_id < 0) return CorruptDataError(source + ": EOS token not found");
  return spec;
}

Result<VocabSpec> VocabSpecFromGguf(const gguf::GgufFile& file) {
  const std::string& src = file.path();
  GL_ASSIGN_OR_RETURN(std::string model, file.GetString("tokenizer.ggml.model"));
  VocabSpec spec;
  spec.source = src;
  if (model == "llama") {
    spec.algorithm = Algorithm::kSpmScores;
  } else if (model == "gemma4") {
    spec.algorithm = Algorithm::kBpeMerges;
    spec.split_newline_runs = true;
  } else {
    return UnsupportedError(src + ": tokenizer.ggml.model \"" + model +
                            "\" (supported: \"llama\", \"gemma4\")");
  }
  GL_ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                      file.GetStringArray("tokenizer.ggml.tokens"));
  const std::vector<std::string>& owned_tokens = spec.owned_lists.emplace_back(std::move(tokens));
  spec.pieces.assign(owned_tokens.begin(), owned_tokens.end());
  const size_t n = spec.pieces.size();
  if (file.Find("tokenizer.ggml.scores")) {
    GL_ASSIGN_OR_RETURN(std::vector<double> scores, file.GetFloatArray("tokenizer.ggml.scores"));
    if (scores.size() != n) {
      return CorruptDataError(src + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                              " entries, expected " + std::to_string(n));
    }
    spec.scores.assign(scores.begin(), scores.end());
  }
  spec.kinds.assign(n, PieceKind::kNormal);
  if (file.Find("tokenizer.ggml.token_type")) {
    GL_ASSIGN_OR_RETURN(std::vector<int64_t> types, file.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return CorruptDataError(src + ": tokenizer.ggml.token_type has " +
                              std::to_string(types.size()) + " entries, expected " +
                              std::to_string(n));
    }
    for (size_t i = 0; i < n; ++i) {
      // llama.cpp: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
      if (types[i] < 1 || types[i] > 6) {
        return CorruptDataError(src + ": tokenizer.ggml.token_type[" + std::to_string(i) +
                                "] = " + std::to_string(types[i]) + ", expected 1..6");
      }
      spec.kinds[i] = static_cast<PieceKind>(types[i] - 1);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const PieceKind k = spec.kinds[i];
    const auto id = static_cast<int32_t>(i);
    // llama.cpp cuts CONTROL, USER_DEFINED and UNKNOWN pieces out of raw text first; with
    // parse_special off only USER_DEFINED ones.
    if (k == PieceKind::kControl || k == PieceKind::kUnknown) {
      spec.added.emplace_back(id, true);
      spec.special_ids.push_back(id);
    } else if (k == PieceKind::kUserDefined) {
      spec.added.emplace_back(id, false);
    }
  }
  if (spec.algorithm == Algorithm::kBpeMerges) {
    GL_ASSIGN_OR_RETURN(std::vector<std::string> merge_list,
                        file.GetStringArray("tokenizer.ggml.merges"));
    const std::vector<std::string>& merges = spec.owned_lists.emplace_back(std::move(merge_list));
    spec.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      // llama.cpp splits at the first space after position 0 (a part may itself be " ").
      const std::string_view m = merges[r];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string_view::npos) {
        return CorruptDataError(src + ": tokenizer.ggml.merges[" + std::to_string(r) +
                                "] has no separating space");
      }
      spec.merges.push_back({m.substr(0, sp), m.substr(sp + 1)});
    }
  }
  auto get_id = [&](const char* key, int32_t& out) -> Status {
    if (!file.Find(key)) return Status::Ok();
    GL_ASSIGN_OR_RETURN(int64_t v, file.GetInt(key));
    if (v < 0 || v >= static_cast<int64_t>(n)) {
      return CorruptDataError(src + ": " + key + " = " + std::to_string(v) +
                              " outside the vocabulary of " + std::to_string(n));
    }
    out = static_cast<int32_t>(v);
    return Status::Ok();
  };
  GL_RETURN_IF_ERROR(get_id("tokenizer.ggml.bos_token_id", spec.bos_id));
  GL_RETURN_IF_ERROR(get_id("tokenizer.ggml.eos_token_id", spec.eos_id));
  GL_RETURN_IF_ERROR(get_id("tokenizer.ggml.unknown_token_id", spec.unk_id));
  GL_RETURN_IF_ERROR(get_id("tokenizer.ggml.padding_token_id", spec.pad_id));
  // Defaults as llama.cpp: SPM adds BOS unless told otherwise; Gemma 4 always adds it (raw text
  // without BOS degrades the model badly, llama.cpp #21500).
  spec.add_bos = true;
  if (file.Find("tokenizer.ggml.add_bos_token")) {
    GL_ASSIGN_OR_RETURN(spec.add_bos, file.GetBool("tokenizer.ggml.add_bos_token"));
  }
  if (spec.split_newline_runs) spec.add_bos = true;
  if (file.Find("tokenizer.ggml.add_eos_token")) {
    GL_ASSIGN_OR_RETURN(spec.add_eos, file.GetBool("tokenizer.ggml.add_eos_token"));
  }
  bool space_prefix = spec.algorithm == Algorithm::kSpmScores;  // llama.cpp's SPM default
  if (file.Find("tokenizer.ggml.add_space_prefix")) {
    GL_ASSIGN_OR_RETURN(space_prefix, file.GetBool("tokenizer.ggml.add_space_prefix"));
  }
  if (space_prefix) {
    return UnsupportedError(src +
                            ": tokenizer.ggml.add_space_prefix is true or absent (Gemma "
                            "vocabularies have no dummy prefix; set it to false)");
  }
  return spec;
}

}  // namespace gemma_local::text
