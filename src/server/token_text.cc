#include "server/token_text.h"

namespace gemma_local::server {
namespace {

nlohmann::json Entry(const Tokenizer* tokenizer, int32_t id, float logprob) {
  const std::string bytes = TokenBytes(tokenizer, id);
  nlohmann::json b = nlohmann::json::array();
  for (unsigned char c : bytes) b.push_back(static_cast<int>(c));
  return {{"token", bytes}, {"logprob", logprob}, {"bytes", b}};
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string TokenBytes(const Tokenizer* tokenizer, int32_t id) {
  if (tokenizer == nullptr) return "";
  Result<std::string> piece = tokenizer->IdToPiece(id);
  if (!piece.ok()) return "";
  const std::string& p = *piece;
  if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && HexDigit(p[3]) >= 0 &&
      HexDigit(p[4]) >= 0) {
    return std::string(1, static_cast<char>(HexDigit(p[3]) * 16 + HexDigit(p[4])));
  }
  if (tokenizer->IsSpecial(id)) return p;
  std::string out;
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁"
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

std::string ValidUtf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) ok = (s[i + k] >> 6) == 2;
    if (ok && len > 1) {
      // Overlong forms, surrogates and code points above U+10FFFF are not valid either.
      uint32_t cp = c & (0x7F >> len);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

nlohmann::json ChatLogprobs(const std::vector<TokenLogprob>& logprobs,
                            const Tokenizer* tokenizer) {
  nlohmann::json content = nlohmann::json::array();
  for (const TokenLogprob& t : logprobs) {
    nlohmann::json e = Entry(tokenizer, t.id, t.logprob);
    e["top_logprobs"] = nlohmann::json::array();
    for (const auto& [id, lp] : t.top) e["top_logprobs"].push_back(Entry(tokenizer, id, lp));
    content.push_back(std::move(e));
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

}  // namespace gemma_local::server
