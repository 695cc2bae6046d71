#include "text/jinja/lexer.h"

#include "core/utf8.h"

#include <cstdio>

namespace gemma_local::jinja {

bool IsPythonSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

namespace {

// Decodes the code point starting at s[i]; sets len to its byte length (1 for invalid bytes).
uint32_t CodePointAt(std::string_view s, size_t i, size_t& len) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + len > s.size()) len = 1;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) {
      len = 1;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3f);
  }
  return cp;
}

// Length of the code point that ends at s[end-1] (walks back over continuation bytes).
size_t LastCodePointStart(std::string_view s, size_t end) {
  size_t i = end - 1;
  int back = 0;
  while (i > 0 && back < 3 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) {
    --i;
    ++back;
  }
  return i;
}

// Bytes of Python whitespace starting at `pos`.
size_t SkipSpace(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t len;
    if (!IsPythonSpace(CodePointAt(s, pos, len))) break;
    pos += len;
  }
  return pos;
}

bool AllSpace(std::string_view s) { return SkipSpace(s, 0) == s.size(); }

std::string NormalizeNewlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out += src[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's unicode-escape decoding of a string literal body.
Result<std::string> DecodeStringLiteral(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 >= body.size()) {
      out += body[i];
      continue;
    }
    const char e = body[++i];
    switch (e) {
      case '\n':
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 0; k < n; ++k) {
          const int h = i + 1 + k < body.size() ? HexDigit(body[i + 1 + k]) : -1;
          if (h < 0) return InvalidArgumentError("truncated \\" + std::string(1, e) + " escape");
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10ffff) return InvalidArgumentError("illegal Unicode character in escape");
        i += n;
        AppendUtf8(cp, out);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k) {
            cp = cp * 8 + static_cast<uint32_t>(body[++i] - '0');
          }
          AppendUtf8(cp, out);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  Result<std::vector<Token>> Run() {
    bool line_starting = true;
    size_t pos = 0;
    while (pos < src_.size()) {
      // Earliest "{{", "{%" or "{#".
      size_t open = pos;
      while (true) {
        open = src_.find('{', open);
        if (open == std::string::npos || open + 1 >= src_.size()) {
          open = std::string::npos;
          break;
        }
        const char c = src_[open + 1];
        if (c == '{' || c == '%' || c == '#') break;
        ++open;
      }
      if (open == std::string::npos) {
        Emit(Token::Type::kData, src_.substr(pos), pos);
        break;
      }
      const char kind = src_[open + 1];
      size_t after = open + 2;
      char sign = 0;
      if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      std::string text = src_.substr(pos, open - pos);
      const bool is_raw = kind == '%' && MatchRawBegin(after);
      if (sign == '-') {
        text = PyStrip(text, false, true);
      } else if (sign != '+' && kind != '{') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && AllSpace(std::string_view(text).substr(l_pos))) {
          text.resize(l_pos);
        }
      }
      Emit(Token::Type::kData, text, pos);
      if (kind == '#') {
        GL_ASSIGN_OR_RETURN(pos, LexComment(open, after));
      } else if (is_raw) {
        GL_ASSIGN_OR_RETURN(pos, LexRaw(open, after));
      } else {
        GL_ASSIGN_OR_RETURN(pos, LexTag(open, kind, after));
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    Token eof;
    eof.type = Token::Type::kEof;
    Locate(src_.size(), eof);
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  void Locate(size_t offset, Token& t) {
    // Incremental line/column tracking; offsets are visited in increasing order.
    if (offset < loc_offset_) {
      loc_offset_ = 0;
      loc_line_ = 1;
      loc_line_start_ = 0;
    }
    for (; loc_offset_ < offset && loc_offset_ < src_.size(); ++loc_offset_) {
      if (src_[loc_offset_] == '\n') {
        ++loc_line_;
        loc_line_start_ = loc_offset_ + 1;
      }
    }
    t.line = loc_line_;
    t.column = static_cast<int>(offset - loc_line_start_) + 1;
  }

  void Emit(Token::Type type, std::string text, size_t offset) {
    if (type == Token::Type::kData && text.empty()) return;
    Token t;
    t.type = type;
    t.text = std::move(text);
    Locate(offset, t);
    tokens_.push_back(std::move(t));
  }

  Status ErrorAt(size_t offset, const std::string& msg) {
    Token t;
    Locate(offset, t);
    return InvalidArgumentError("template syntax error at line " + std::to_string(t.line) +
                                ", column " + std::to_string(t.column) + ": " + msg);
  }

  // `{%[-+]?\s*raw\s*(-%}|%})` starting after the sign.
  bool MatchRawBegin(size_t after) {
    size_t p = SkipSpace(src_, after);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p = SkipSpace(src_, p + 3);
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  Result<size_t> LexComment(size_t open, size_t after) {
    const size_t close = src_.find("#}", after);
    if (close == std::string::npos) return ErrorAt(open, "missing end of comment tag");
    size_t pos = close + 2;
    if (close > after && src_[close - 1] == '-') {
      pos = SkipSpace(src_, pos);
    } else if (!(close > after && src_[close - 1] == '+') && pos < src_.size() &&
               src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  Result<size_t> LexRaw(size_t open, size_t after) {
    size_t p = SkipSpace(src_, after);
    p = SkipSpace(src_, p + 3);
    if (src_[p] == '-')
      p = SkipSpace(src_, p + 3);
    else
      p += 2;
    // Find `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
    size_t search = p;
    while (true) {
      const size_t b = src_.find("{%", search);
      if (b == std::string::npos) return ErrorAt(open, "missing end of raw directive");
      size_t q = b + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = SkipSpace(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) {
        search = b + 2;
        continue;
      }
      q = SkipSpace(src_, q + 6);
      size_t end;
      if (src_.compare(q, 3, "+%}") == 0) {
        end = q + 3;
      } else if (src_.compare(q, 3, "-%}") == 0) {
        end = SkipSpace(src_, q + 3);
      } else if (src_.compare(q, 2, "%}") == 0) {
        end = q + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        search = b + 2;
        continue;
      }
      std::string text = src_.substr(p, b - p);
      if (sign == '-') {
        text = PyStrip(text, false, true);
      } else if (sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 && AllSpace(std::string_view(text).substr(l_pos))) text.resize(l_pos);
      }
      Emit(Token::Type::kData, text, p);
      return end;
    }
  }

  // Lexes the inside of a {{ }} or {% %} tag starting at `pos`; returns the offset after it.
  Result<size_t> LexTag(size_t open, char kind, size_t pos) {
    const bool block = kind == '%';
    Emit(block ? Token::Type::kBlockBegin : Token::Type::kVarBegin, "", open);
    tokens_.back().text = block ? "{%" : "{{";
    int balance = 0;
    while (true) {
      if (pos >= src_.size()) {
        return ErrorAt(open, std::string("unexpected end of template, expected '") +
                                 (block ? "%}" : "}}") + "'");
      }
      if (balance == 0) {
        if (block) {
          if (src_.compare(pos, 3, "+%}") == 0) {
            Emit(Token::Type::kBlockEnd, "%}", pos);
            return pos + 3;
          }
          if (src_.compare(pos, 3, "-%}") == 0) {
            Emit(Token::Type::kBlockEnd, "%}", pos);
            return SkipSpace(src_, pos + 3);
          }
          if (src_.compare(pos, 2, "%}") == 0) {
            Emit(Token::Type::kBlockEnd, "%}", pos);
            pos += 2;
            if (pos < src_.size() && src_[pos] == '\n') ++pos;  // trim_blocks
            return pos;
          }
        } else {
          if (src_.compare(pos, 3, "-}}") == 0) {
            Emit(Token::Type::kVarEnd, "}}", pos);
            return SkipSpace(src_, pos + 3);
          }
          if (src_.compare(pos, 2, "}}") == 0) {
            Emit(Token::Type::kVarEnd, "}}", pos);
            return pos + 2;
          }
        }
      }
      const size_t sp = SkipSpace(src_, pos);
      if (sp != pos) {
        pos = sp;
        continue;
      }
      const char c = src_[pos];
      if (c >= '0' && c <= '9') {
        GL_ASSIGN_OR_RETURN(pos, LexNumber(pos));
        continue;
      }
      if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        size_t e = pos;
        while (e < src_.size() &&
               (src_[e] == '_' || std::isalnum(static_cast<unsigned char>(src_[e])))) {
          ++e;
        }
        Emit(Token::Type::kName, src_.substr(pos, e - pos), pos);
        pos = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t e = pos + 1;
        while (e < src_.size() && src_[e] != c) e += src_[e] == '\\' ? 2 : 1;
        if (e >= src_.size()) return ErrorAt(pos, "unterminated string literal");
        Result<std::string> decoded =
            DecodeStringLiteral(std::string_view(src_).substr(pos + 1, e - pos - 1));
        if (!decoded.ok()) return ErrorAt(pos, decoded.status().message());
        Emit(Token::Type::kString, *decoded, pos);
        pos = e + 1;
        continue;
      }
      static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                   "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                   ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
      bool matched = false;
      for (const char* op : kOps) {
        const size_t n = std::char_traits<char>::length(op);
        if (src_.compare(pos, n, op) == 0) {
          if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++balance;
          if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && balance > 0) --balance;
          Emit(Token::Type::kOp, op, pos);
          pos += n;
          matched = true;
          break;
        }
      }
      if (!matched) {
        return ErrorAt(pos, "unexpected char '" + std::string(1, c) + "'");
      }
    }
  }

  Result<size_t> LexNumber(size_t pos) {
    size_t e = pos;
    auto digits = [&](size_t p) {
      size_t q = p;
      while (q < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                                 (src_[q] == '_' && q > p && q + 1 < src_.size() &&
                                  std::isdigit(static_cast<unsigned char>(src_[q + 1]))))) {
        ++q;
      }
      return q;
    };
    e = digits(pos);
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      e = digits(e + 1);
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        is_float = true;
        e = digits(q);
      }
    }
    std::string text;
    for (size_t i = pos; i < e; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    Token t;
    Locate(pos, t);
    if (is_float) {
      t.type = Token::Type::kFloat;
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = Token::Type::kInt;
      errno = 0;
      const long long v = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return ErrorAt(pos, "integer literal too large");
      t.int_value = v;
    }
    t.text = text;
    tokens_.push_back(std::move(t));
    return e;
  }

  std::string src_;
  std::vector<Token> tokens_;
  size_t loc_offset_ = 0;
  int loc_line_ = 1;
  size_t loc_line_start_ = 0;
};

}  // namespace

std::string PyStrip(std::string_view s, bool left, bool right) {
  size_t b = 0;
  size_t e = s.size();
  if (left) b = SkipSpace(s, 0);
  if (right) {
    while (e > b) {
      const size_t start = LastCodePointStart(s, e);
      size_t len;
      const uint32_t cp = CodePointAt(s, start, len);
      if (start + len != e || !IsPythonSpace(cp)) break;
      e = start;
    }
  }
  return std::string(s.substr(b, e - b));
}

Result<std::vector<Token>> Tokenize(std::string_view source) {
  Lexer lexer(NormalizeNewlines(source));
  return lexer.Run();
}

}  // namespace gemma_local::jinja
