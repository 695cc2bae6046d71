// Loaders: Hugging Face tokenizer.json (+ tokenizer_config.json) and GGUF tokenizer.ggml.* keys
// -> VocabSpec. Only the shapes Gemma checkpoints use are accepted; anything else is an explicit
// kUnsupported error naming the field, never a silently different tokenizer.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

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

// A tokenizer_config.json token entry: a string or {"content": ...} (AddedToken form).
std::string TokenName(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return {};
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return {};
}

bool IsStringPattern(const json& pattern, const std::string& s) {
  return pattern.is_object() && pattern.contains("String") && pattern["String"].is_string() &&
         pattern["String"].get<std::string>() == s;
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

  const json* model = j.contains("model") ? &j["model"] : nullptr;
  if (!model || !model->is_object()) return CorruptDataError(source + ": no \"model\" object");
  const std::string type = model->value("type", std::string());
  if (type != "BPE") {
    return UnsupportedError(source + ": model.type \"" + type + "\" (only BPE is supported)");
  }
  if (!model->value("byte_fallback", false)) {
    return UnsupportedError(source + ": model.byte_fallback is false (Gemma's BPE needs it)");
  }
  if (model->value("ignore_merges", false)) {
    return UnsupportedError(source + ": model.ignore_merges = true is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model->contains(key) && !(*model)[key].is_null() &&
        !((*model)[key].is_string() && (*model)[key].get<std::string>().empty())) {
      return UnsupportedError(source + ": model." + key + " is not supported");
    }
  }
  if (model->contains("dropout") && !(*model)["dropout"].is_null()) {
    return UnsupportedError(source + ": model.dropout is not supported (encoding must be exact)");
  }
  // Normalizer: exactly Replace(" " -> "▁"), Gemma's. The Split-on-" " pre-tokenizer that follows
  // it can never fire (no ' ' is left after the normalizer), so it is accepted as a no-op.
  const json& norm = j.contains("normalizer") ? j["normalizer"] : json();
  if (!(norm.is_object() && norm.value("type", "") == "Replace" && norm.contains("pattern") &&
        IsStringPattern(norm["pattern"], " ") && norm.value("content", "") == kSpaceMarker)) {
    return UnsupportedError(source + ": normalizer must be Replace(\" \" -> \"\\u2581\"), got " +
                            norm.dump().substr(0, 200));
  }
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  if (!pre.is_null() &&
      !(pre.is_object() && pre.value("type", "") == "Split" && pre.contains("pattern") &&
        IsStringPattern(pre["pattern"], " ") && !pre.value("invert", false))) {
    return UnsupportedError(source + ": pre_tokenizer must be null or Split(\" \"), got " +
                            pre.dump().substr(0, 200));
  }

  if (!parsed.has_vocab) return CorruptDataError(source + ": no model.vocab object");
  const json& added = j.contains("added_tokens") ? j["added_tokens"] : json::array();
  if (!added.is_array()) return CorruptDataError(source + ": added_tokens is not an array");

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
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string()) {
      return CorruptDataError(source + ": an added_tokens entry lacks an integer id or content");
    }
    max_id = std::max(max_id, a["id"].get<int64_t>());
  }
  if (max_id < 0 || max_id >= (1 << 30)) {
    return CorruptDataError(source + ": vocabulary ids out of range (max " +
                            std::to_string(max_id) + ")");
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
  const std::string unk_name = model->contains("unk_token") && (*model)["unk_token"].is_string()
                                   ? (*model)["unk_token"].get<std::string>()
                                   : std::string();
  for (const json& a : added) {
    const int64_t id = a["id"].get<int64_t>();
    if (id < 0) return CorruptDataError(source + ": negative added token id");
    const std::string& content = a["content"].get_ref<const std::string&>();
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (a.value(flag, false)) {
        return UnsupportedError(source + ": added token \"" + content + "\" has " + flag +
                                " = true");
      }
    }
    if (a.value("normalized", false) && (content.find(' ') != std::string::npos ||
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
    const bool special = a.value("special", false);
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
  const json& post = j.contains("post_processor") ? j["post_processor"] : json();
  if (post.is_object() && post.value("type", "") == "TemplateProcessing" &&
      post.contains("single") && post["single"].is_array() && !post["single"].empty()) {
    const json& first = post["single"][0];
    if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object()) {
      post_adds_bos = true;
      if (bos.empty()) bos = first["SpecialToken"].value("id", "");
    }
  }
  spec.bos_id = find_id(bos.empty() ? "<bos>" : bos);
  spec.eos_id = find_id(eos.empty() ? "<eos>" : eos);
  spec.unk_id = find_id(unk_name);
  spec.pad_id = find_id(TokenName(config, "pad_token"));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    spec.add_bos = config["add_bos_token"].get<bool>();
  } else {
    spec.add_bos = post_adds_bos;
  }
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
    spec.add_eos = config["add_eos_token"].get<bool>();
  }
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
