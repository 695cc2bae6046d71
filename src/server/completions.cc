#include "server/completions.h"

#include <utility>

#include "server/token_text.h"

namespace gemma_local::server {
namespace {

bool TokenIds(const nlohmann::ordered_json& array, std::vector<int32_t>* ids) {
  for (const auto& x : array) {
    if (!x.is_number_integer()) return false;
    const int64_t v = x.get<int64_t>();
    if (v < 0 || v > INT32_MAX) return false;
    ids->push_back(static_cast<int32_t>(v));
  }
  return true;
}

// Legacy logprobs for `lps`, whose texts start at character `offset` of the choice's text.
nlohmann::json LegacyLogprobs(const std::vector<TokenLogprob>& lps, const Tokenizer* tokenizer,
                              int64_t* offset) {
  nlohmann::json tokens = nlohmann::json::array(), token_logprobs = nlohmann::json::array(),
                 top = nlohmann::json::array(), offsets = nlohmann::json::array();
  for (const TokenLogprob& t : lps) {
    const std::string text = TokenBytes(tokenizer, t.id);
    tokens.push_back(text);
    token_logprobs.push_back(t.logprob);
    nlohmann::json alternatives = nlohmann::json::object();
    for (const auto& [id, lp] : t.top) alternatives[ValidUtf8(TokenBytes(tokenizer, id))] = lp;
    top.push_back(std::move(alternatives));
    offsets.push_back(*offset);
    // Special tokens are not part of the returned text (it is decoded without them).
    const bool shown = tokenizer == nullptr || !tokenizer->IsSpecial(t.id);
    if (shown) *offset += static_cast<int64_t>(text.size());
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_logprobs},
          {"top_logprobs", top},
          {"text_offset", offsets}};
}

// `base` with `more`'s lists appended.
nlohmann::json Concat(nlohmann::json base, const nlohmann::json& more) {
  if (base.is_null()) return more;
  if (more.is_null()) return base;
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
    for (const auto& x : more[key]) base[key].push_back(x);
  }
  return base;
}

}  // namespace

nlohmann::json PromptLogprobs(const ScoreResult& scored, const Tokenizer* tokenizer, int top) {
  nlohmann::json tokens = nlohmann::json::array(), token_logprobs = nlohmann::json::array(),
                 tops = nlohmann::json::array(), offsets = nlohmann::json::array();
  int64_t offset = 0;
  for (size_t i = 0; i < scored.tokens.size(); ++i) {
    const std::string text = TokenBytes(tokenizer, scored.tokens[i]);
    tokens.push_back(text);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(text.size());
    if (i == 0 || i > scored.positions.size()) {
      token_logprobs.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    const PositionScores& p = scored.positions[i - 1];
    token_logprobs.push_back(p.next_logprob);
    nlohmann::json alternatives = nlohmann::json::object();
    for (int k = 0; k < top && k < static_cast<int>(p.top.size()); ++k) {
      alternatives[ValidUtf8(TokenBytes(tokenizer, p.top[k].first))] = p.top[k].second;
    }
    tops.push_back(std::move(alternatives));
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_logprobs},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

bool ParseCompletionRequest(const nlohmann::ordered_json& body, int max_n, CompletionRequest* out,
                            ApiError* error) {
  if (!body.is_object()) {
    *error = BadField("body", "expected a JSON object", "invalid_request");
    return false;
  }
  auto prompt = body.find("prompt");
  if (prompt == body.end() || prompt->is_null()) {
    *error = BadField("prompt", "required: a string or an array of token ids");
    return false;
  }
  nlohmann::ordered_json p = *prompt;
  if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) p = p[0];
  std::vector<int32_t> ids;
  if (p.is_string()) {
    if (p.get_ref<const std::string&>().empty()) {
      *error = BadField("prompt", "is empty");
      return false;
    }
    out->common.request.input = RequestInput::Text(p.get<std::string>());
  } else if (p.is_array() && !p.empty() && TokenIds(p, &ids)) {
    out->common.request.input = RequestInput::Tokens(std::move(ids));
  } else if (p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array())) {
    *error = BadField("prompt", "one prompt per request (send several requests)", "unsupported");
    return false;
  } else {
    *error = BadField("prompt", "expected a string or a non-empty array of token ids");
    return false;
  }
  if (!ReadCommonFields(body, max_n, &out->common, error)) return false;
  if (!ReadBool(body, "echo", &out->echo, error)) return false;
  int64_t logprobs = -1;
  if (!ReadInt(body, "logprobs", 0, 20, &logprobs, error)) return false;
  out->logprobs = static_cast<int>(logprobs);
  out->common.request.logprobs = out->logprobs;
  if (auto suffix = body.find("suffix"); suffix != body.end() && !suffix->is_null()) {
    if (!suffix->is_string() || !suffix->get_ref<const std::string&>().empty()) {
      *error = BadField("suffix", "insertion is not supported", "unsupported");
      return false;
    }
  }
  int64_t best_of = out->common.n;
  if (!ReadInt(body, "best_of", 1, max_n, &best_of, error)) return false;
  if (best_of != out->common.n) {
    *error = BadField("best_of", "only best_of == n is supported", "unsupported");
    return false;
  }
  out->common.request.parse_reply = ReplyParsing::kOff;
  return true;
}

std::vector<nlohmann::json> CompletionChunks(const Event& e, int index, const ResponseHeader& h,
                                             CompletionChoiceStream* state,
                                             const Tokenizer* tokenizer, int logprobs,
                                             const Echo& echo) {
  std::string text = e.Content();
  nlohmann::json lp = nullptr;
  if (!state->echoed) {
    state->echoed = true;
    text = echo.text + text;
    lp = echo.logprobs;
    state->offset += static_cast<int64_t>(echo.text.size());
  }
  if (logprobs >= 0 && !e.logprobs.empty()) {
    lp = Concat(std::move(lp), LegacyLogprobs(e.logprobs, tokenizer, &state->offset));
  } else {
    state->offset += static_cast<int64_t>(e.Content().size());  // the text actually sent
  }
  if (text.empty() && lp.is_null() && !e.final) return {};
  nlohmann::json choice = {{"text", std::move(text)},
                           {"index", index},
                           {"logprobs", std::move(lp)},
                           {"finish_reason", e.final ? nlohmann::json(e.finish_reason) : nullptr}};
  return {{{"id", h.id},
           {"object", "text_completion"},
           {"created", h.created},
           {"model", h.model},
           {"choices", {std::move(choice)}}}};
}

nlohmann::json CompletionBody(const std::vector<Completion>& completions, const ResponseHeader& h,
                              const Tokenizer* tokenizer, int logprobs, const Echo& echo) {
  nlohmann::json choices = nlohmann::json::array();
  std::vector<Usage> usages;
  for (size_t i = 0; i < completions.size(); ++i) {
    const Completion& c = completions[i];
    int64_t offset = static_cast<int64_t>(echo.text.size());
    choices.push_back(
        {{"text", echo.text + c.text},
         {"index", i},
         {"logprobs", logprobs >= 0 ? Concat(echo.logprobs,
                                             LegacyLogprobs(c.logprobs, tokenizer, &offset))
                                    : nullptr},
         {"finish_reason", c.finish_reason}});
    usages.push_back(c.usage);
  }
  return {{"id", h.id},           {"object", "text_completion"},
          {"created", h.created}, {"model", h.model},
          {"choices", choices},   {"usage", UsageJson(SumUsage(usages))}};
}

bool Tokenize(const nlohmann::ordered_json& body, const Tokenizer& tokenizer, nlohmann::json* out,
              ApiError* error) {
  if (!body.is_object() || !body.contains("content") || !body["content"].is_string()) {
    *error = BadField("content", "required: the text to tokenize");
    return false;
  }
  bool add_special = false, parse_special = true, with_pieces = false;
  if (!ReadBool(body, "add_special", &add_special, error) ||
      !ReadBool(body, "parse_special", &parse_special, error) ||
      !ReadBool(body, "with_pieces", &with_pieces, error)) {
    return false;
  }
  EncodeOptions options;
  options.add_bos = add_special;
  options.parse_special = parse_special;
  Result<std::vector<int32_t>> ids =
      tokenizer.Encode(body["content"].get_ref<const std::string&>(), options);
  if (!ids.ok()) {
    *error = BadField("content", ids.status().message());
    return false;
  }
  nlohmann::json tokens = nlohmann::json::array();
  for (int32_t id : *ids) {
    if (with_pieces) {
      tokens.push_back({{"id", id}, {"piece", TokenBytes(&tokenizer, id)}});
    } else {
      tokens.push_back(id);
    }
  }
  *out = {{"tokens", std::move(tokens)}};
  return true;
}

bool Detokenize(const nlohmann::ordered_json& body, const Tokenizer& tokenizer, nlohmann::json* out,
                ApiError* error) {
  std::vector<int32_t> ids;
  if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array() ||
      !TokenIds(body["tokens"], &ids)) {
    *error = BadField("tokens", "required: an array of token ids");
    return false;
  }
  Result<std::string> text = tokenizer.Decode(ids);
  if (!text.ok()) {
    *error = BadField("tokens", text.status().message());
    return false;
  }
  *out = {{"content", *text}};
  return true;
}

}  // namespace gemma_local::server
