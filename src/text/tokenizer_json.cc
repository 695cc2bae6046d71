#include "text/tokenizer_json.h"

#include <cstring>

#include "core/json_access.h"
#include "core/utf8.h"

namespace gemma_local::text {
namespace {

using nlohmann::json;

inline bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Recursive descent over the structure this file needs; any other value is delimited here and
// parsed (and so validated) by nlohmann. Every method returns false on a syntax error.
class Scanner {
 public:
  Scanner(std::string_view text, HfTokenizerJson& out) : t_(text), out_(out) {}

  bool Document() {
    if (t_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // nlohmann skips a UTF-8 BOM
    Ws();
    if (!Peek('{')) return false;
    out_.doc = json::object();
    const bool ok = Object([&](std::string_view key) {
      if (key == "model" && Peek('{')) {
        ResetModel();
        json rest = json::object();
        if (!Model(rest)) return false;
        out_.doc["model"] = std::move(rest);
        return true;
      }
      json v;
      if (!Generic(v)) return false;
      if (key == "model") ResetModel();
      out_.doc[std::string(key)] = std::move(v);
      return true;
    });
    if (!ok) return false;
    Ws();
    return pos_ == t_.size();
  }

 private:
  void ResetModel() {
    out_.has_vocab = out_.has_merges = false;
    out_.vocab.clear();
    out_.vocab_not_integer.clear();
    out_.merges.clear();
  }

  bool Model(json& rest) {
    return Object([&](std::string_view key) {
      if (key == "vocab" && Peek('{')) {
        rest.erase("vocab");
        out_.vocab.clear();
        out_.vocab_not_integer.clear();
        out_.has_vocab = true;
        return Vocab();
      }
      if (key == "merges" && Peek('[')) {
        rest.erase("merges");
        out_.merges.clear();
        out_.has_merges = true;
        return Merges();
      }
      json v;
      if (!Generic(v)) return false;
      if (key == "vocab") {
        out_.has_vocab = false;
        out_.vocab.clear();
        out_.vocab_not_integer.clear();
      } else if (key == "merges") {
        out_.has_merges = false;
        out_.merges.clear();
      }
      rest[std::string(key)] = std::move(v);
      return true;
    });
  }

  bool Vocab() {
    out_.vocab.reserve(t_.size() / 64);
    return Object([&](std::string_view key) {
      int64_t id;
      if (FastInteger(id)) {
        out_.vocab.emplace_back(key, id);
        return true;
      }
      json v;
      if (!Generic(v)) return false;
      // An integer beyond int64 (or any other value) is reported, never wrapped around.
      if (const Result<int64_t> id = JsonGet<int64_t>(v, ""); id.ok()) {
        out_.vocab.emplace_back(key, *id);
      } else {
        out_.vocab_not_integer.push_back(key);
      }
      return true;
    });
  }

  bool Merges() {
    out_.merges.reserve(t_.size() / 64);
    return Array([&] {
      HfJsonMerge m;
      if (Peek('"')) {
        if (!String(m.a)) return false;
        m.kind = HfJsonMerge::kJoined;
      } else if (Peek('[') && FastPair(m)) {
        m.kind = HfJsonMerge::kPair;
      } else {
        json v;
        if (!Generic(v)) return false;
        if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
          m.a = out_.owned.emplace_back(v[0].get_ref<const std::string&>());
          m.b = out_.owned.emplace_back(v[1].get_ref<const std::string&>());
          m.kind = HfJsonMerge::kPair;
        }
      }
      out_.merges.push_back(m);
      return true;
    });
  }

  // ["a", "b"] with any whitespace; on any other shape the position is restored (the caller
  // then parses the element generically).
  bool FastPair(HfJsonMerge& m) {
    const size_t start = pos_;
    ++pos_;
    Ws();
    if (Peek('"') && String(m.a)) {
      Ws();
      if (Peek(',')) {
        ++pos_;
        Ws();
        if (Peek('"') && String(m.b)) {
          Ws();
          if (Peek(']')) {
            ++pos_;
            return true;
          }
        }
      }
    }
    pos_ = start;
    return false;
  }

  // Calls member(key) with the position at the value; the object starts at '{'.
  template <typename F>
  bool Object(F&& member) {
    ++pos_;
    Ws();
    if (Peek('}')) {
      ++pos_;
      return true;
    }
    for (;;) {
      std::string_view key;
      if (!Peek('"') || !String(key)) return false;
      Ws();
      if (!Peek(':')) return false;
      ++pos_;
      Ws();
      if (!member(key)) return false;
      Ws();
      if (Peek(',')) {
        ++pos_;
        Ws();
        continue;
      }
      if (!Peek('}')) return false;
      ++pos_;
      return true;
    }
  }

  template <typename F>
  bool Array(F&& element) {
    ++pos_;
    Ws();
    if (Peek(']')) {
      ++pos_;
      return true;
    }
    for (;;) {
      if (!element()) return false;
      Ws();
      if (Peek(',')) {
        ++pos_;
        Ws();
        continue;
      }
      if (!Peek(']')) return false;
      ++pos_;
      return true;
    }
  }

  // A string at '"'. The common case (no escapes) is a view into the text. Strings are the only
  // place JSON allows non-ASCII bytes (the structure around them is ASCII, checked here, and
  // values handed to nlohmann are checked by it), so they are where UTF-8 validity is enforced.
  bool String(std::string_view& out) {
    const size_t start = ++pos_;
    const char* p = t_.data();
    const size_t n = t_.size();
    size_t i = start;
    bool ascii = true;
    while (i < n) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c == '"') {
        out = t_.substr(start, i - start);
        pos_ = i + 1;
        return ascii || IsValidUtf8(out);
      }
      if (c == '\\') break;
      if (c < 0x20) return false;
      ascii &= c < 0x80;
      ++i;
    }
    if (i >= n) return false;
    std::string s(t_.substr(start, i - start));
    while (i < n) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c == '"') {
        // Escapes are ASCII, so the raw text is valid UTF-8 exactly when the result is.
        if (!IsValidUtf8(t_.substr(start, i - start))) return false;
        out = out_.owned.emplace_back(std::move(s));
        pos_ = i + 1;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        s.push_back(static_cast<char>(c));
        ++i;
        continue;
      }
      if (i + 1 >= n) return false;
      const char e = p[i + 1];
      i += 2;
      switch (e) {
        case '"':
          s.push_back('"');
          break;
        case '\\':
          s.push_back('\\');
          break;
        case '/':
          s.push_back('/');
          break;
        case 'b':
          s.push_back('\b');
          break;
        case 'f':
          s.push_back('\f');
          break;
        case 'n':
          s.push_back('\n');
          break;
        case 'r':
          s.push_back('\r');
          break;
        case 't':
          s.push_back('\t');
          break;
        case 'u': {
          int32_t cp = Hex4(i);
          if (cp < 0) return false;
          i += 4;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // lone low surrogate
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 1 >= n || p[i] != '\\' || p[i + 1] != 'u') return false;
            const int32_t lo = Hex4(i + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(static_cast<uint32_t>(cp), s);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  int32_t Hex4(size_t i) const {
    if (i + 4 > t_.size()) return -1;
    int32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int h = HexValue(t_[i + k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  }

  // An integer of at most 18 digits followed by a delimiter; anything else (fractions,
  // exponents, longer numbers, leading zeros, non-numbers) leaves the position unchanged.
  bool FastInteger(int64_t& out) {
    size_t i = pos_;
    const bool neg = i < t_.size() && t_[i] == '-';
    if (neg) ++i;
    const size_t digits_start = i;
    int64_t v = 0;
    // At most 18 digits are accumulated (< 10^18: no overflow); a 19th digit is then no
    // delimiter, so the check below sends longer numbers to the generic path.
    while (i < t_.size() && t_[i] >= '0' && t_[i] <= '9' && i - digits_start < 18) {
      v = v * 10 + (t_[i] - '0');
      ++i;
    }
    const size_t nd = i - digits_start;
    if (nd == 0 || (nd > 1 && t_[digits_start] == '0')) return false;
    if (i < t_.size() && !IsWs(t_[i]) && t_[i] != ',' && t_[i] != '}' && t_[i] != ']') {
      return false;
    }
    out = neg ? -v : v;
    pos_ = i;
    return true;
  }

  // Any value: its extent is found here (strings and brackets), nlohmann parses and validates it.
  bool Generic(json& out) {
    const size_t start = pos_;
    const size_t n = t_.size();
    if (pos_ >= n) return false;
    if (t_[pos_] == '"') {
      std::string_view ignored;
      if (!String(ignored)) return false;
      if (ignored.data() < t_.data() || ignored.data() >= t_.data() + n) out_.owned.pop_back();
    } else if (t_[pos_] == '{' || t_[pos_] == '[') {
      size_t depth = 0;
      size_t i = pos_;
      for (; i < n; ++i) {
        const char c = t_[i];
        if (c == '"') {
          for (++i; i < n && t_[i] != '"'; ++i) {
            if (t_[i] == '\\') ++i;
          }
          if (i >= n) return false;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if (c == '}' || c == ']') {
          if (--depth == 0) break;
        }
      }
      if (i >= n) return false;
      pos_ = i + 1;
    } else {
      while (pos_ < n && !IsWs(t_[pos_]) && t_[pos_] != ',' && t_[pos_] != '}' && t_[pos_] != ']') {
        ++pos_;
      }
    }
    out = json::parse(t_.substr(start, pos_ - start), nullptr, /*allow_exceptions=*/false);
    return !out.is_discarded();
  }

  void Ws() {
    while (pos_ < t_.size() && IsWs(t_[pos_])) ++pos_;
  }
  bool Peek(char c) const { return pos_ < t_.size() && t_[pos_] == c; }

  std::string_view t_;
  HfTokenizerJson& out_;
  size_t pos_ = 0;
};

}  // namespace

Status ParseHfTokenizerJson(std::string_view text, const std::string& source,
                            HfTokenizerJson& out) {
  out = HfTokenizerJson();
  Scanner scanner(text, out);
  if (!scanner.Document()) return CorruptDataError(source + ": not a JSON object");
  return Status::Ok();
}

}  // namespace gemma_local::text
