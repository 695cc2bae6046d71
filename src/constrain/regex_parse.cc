#include "constrain/regex_parse.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace gemma_local::constrain {
namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kMaxRepeat = 10000;  // larger counts are refused, not silently capped
constexpr int kMaxNesting = 200;

Ranges Complement(Ranges in) {
  std::sort(in.begin(), in.end());
  Ranges out;
  uint32_t next = 0;
  for (auto [lo, hi] : in) {
    if (lo > next) out.emplace_back(next, lo - 1);
    if (hi + 1 > next) next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return out;
}

const Ranges& Digits() {
  static const Ranges r{{'0', '9'}};
  return r;
}
const Ranges& Word() {
  static const Ranges r{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  return r;
}
// ECMA-262 WhiteSpace and LineTerminator.
const Ranges& Space() {
  static const Ranges r{{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680},
                        {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                        {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  return r;
}

class Parser {
 public:
  Parser(RegexArena& arena, std::string_view pattern) : arena_(arena), p_(pattern) {}

  Result<RegexId> Parse(RegexMode mode) {
    std::vector<RegexId> alternatives;
    while (true) {
      bool anchored_start = false, anchored_end = false;
      if (Peek('^')) {
        ++pos_;
        anchored_start = true;
      }
      GL_ASSIGN_OR_RETURN(RegexId seq, Sequence(/*top=*/true, &anchored_end));
      if (mode == RegexMode::kSearch) {
        const RegexId any = arena_.Star(arena_.AnyChar());
        if (!anchored_start) seq = arena_.Concat(any, seq);
        if (!anchored_end) seq = arena_.Concat(seq, any);
      }
      alternatives.push_back(seq);
      if (pos_ >= p_.size()) break;
      if (p_[pos_] == '|') {
        ++pos_;
        continue;
      }
      return Error("unbalanced ')'");
    }
    return arena_.Or(alternatives);
  }

 private:
  bool Peek(char c) const { return pos_ < p_.size() && p_[pos_] == c; }

  Status Error(const std::string& what) const {
    return InvalidArgumentError("pattern \"" + std::string(p_) + "\": " + what + " at offset " +
                                std::to_string(pos_));
  }
  Status Unsupported(const std::string& what, size_t at) const {
    return UnsupportedError("pattern \"" + std::string(p_) + "\": " + what + " at offset " +
                            std::to_string(at) + " is not supported");
  }

  // Alternatives inside a group.
  Result<RegexId> Alternation() {
    std::vector<RegexId> alternatives;
    while (true) {
      GL_ASSIGN_OR_RETURN(RegexId seq, Sequence(/*top=*/false, nullptr));
      alternatives.push_back(seq);
      if (!Peek('|')) break;
      ++pos_;
    }
    return arena_.Or(alternatives);
  }

  // Atoms with quantifiers up to '|', ')' or the end. At top level a '$' may end it.
  Result<RegexId> Sequence(bool top, bool* anchored_end) {
    std::vector<RegexId> parts;
    while (pos_ < p_.size() && p_[pos_] != '|' && p_[pos_] != ')') {
      if (p_[pos_] == '$') {
        const size_t at = pos_++;
        const bool at_end = pos_ >= p_.size() || p_[pos_] == '|' || (!top && p_[pos_] == ')');
        if (!top || !at_end) return Unsupported("'$' anywhere but the end", at);
        *anchored_end = true;
        break;
      }
      if (p_[pos_] == '^') return Unsupported("'^' anywhere but the start", pos_);
      GL_ASSIGN_OR_RETURN(RegexId atom, Atom());
      GL_ASSIGN_OR_RETURN(atom, Quantified(atom));
      parts.push_back(atom);
    }
    return arena_.Concat(parts);
  }

  Result<uint32_t> Number() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (pos_ < p_.size() && p_[pos_] >= '0' && p_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(p_[pos_] - '0');
      if (v > kMaxRepeat) return Unsupported("a repetition count over 10000", start);
      ++pos_;
    }
    if (pos_ == start) return Error("expected a number");
    return static_cast<uint32_t>(v);
  }

  Result<RegexId> Quantified(RegexId atom) {
    while (pos_ < p_.size()) {
      uint32_t min = 0, max = RegexArena::kUnbounded;
      const char c = p_[pos_];
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        min = 1;
        ++pos_;
      } else if (c == '?') {
        max = 1;
        ++pos_;
      } else if (c == '{') {
        // "{" not followed by a valid quantifier is an error (the `u`-mode rule, which JSON
        // Schema's pattern dialect follows).
        ++pos_;
        GL_ASSIGN_OR_RETURN(min, Number());
        max = min;
        if (Peek(',')) {
          ++pos_;
          if (Peek('}')) {
            max = RegexArena::kUnbounded;
          } else {
            GL_ASSIGN_OR_RETURN(max, Number());
          }
        }
        if (!Peek('}')) return Error("expected '}'");
        ++pos_;
        if (max < min) return Error("numbers out of order in {} quantifier");
      } else {
        return atom;
      }
      if (Peek('?')) ++pos_;  // lazy: the same language
      atom = arena_.Repeat(atom, min, max);
      if (pos_ < p_.size() &&
          (p_[pos_] == '*' || p_[pos_] == '+' || p_[pos_] == '?' || p_[pos_] == '{')) {
        return Error("nothing to repeat");
      }
    }
    return atom;
  }

  Result<RegexId> Atom() {
    const size_t at = pos_;
    const char c = p_[pos_];
    switch (c) {
      case '(': {
        ++pos_;
        if (Peek('?')) {
          ++pos_;
          if (Peek(':')) {
            ++pos_;
          } else if (Peek('=') || Peek('!')) {
            return Unsupported("lookahead", at);
          } else if (Peek('<') && pos_ + 1 < p_.size() &&
                     (p_[pos_ + 1] == '=' || p_[pos_ + 1] == '!')) {
            return Unsupported("lookbehind", at);
          } else if (Peek('<')) {
            const size_t close = p_.find('>', pos_);
            if (close == std::string_view::npos) return Error("unterminated group name");
            pos_ = close + 1;
          } else {
            return Error("invalid group");
          }
        }
        if (++nesting_ > kMaxNesting) return Unsupported("nesting deeper than 200 groups", at);
        GL_ASSIGN_OR_RETURN(RegexId inner, Alternation());
        --nesting_;
        if (!Peek(')')) return Error("missing ')'");
        ++pos_;
        return inner;
      }
      case '[':
        return Class();
      case '.':
        ++pos_;
        return arena_.CodePoints(Complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      case '*':
      case '+':
      case '?':
        return Error("nothing to repeat");
      case '{':
      case '}':
      case ']':
        return Error(std::string("lone '") + c + "'");
      case '\\': {
        Ranges ranges;
        GL_ASSIGN_OR_RETURN(bool is_class, Escape(/*in_class=*/false, ranges));
        (void)is_class;
        return arena_.CodePoints(ranges);
      }
      default: {
        GL_ASSIGN_OR_RETURN(uint32_t cp, Utf8Char());
        return arena_.CodePointRange(cp, cp);
      }
    }
  }

  Result<uint32_t> Utf8Char() {
    const auto b0 = static_cast<uint8_t>(p_[pos_]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > p_.size()) return Error("invalid UTF-8");
    uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int i = 1; i < len; ++i) {
      const auto b = static_cast<uint8_t>(p_[pos_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) return Error("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  Result<uint32_t> Hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= p_.size() || !std::isxdigit(static_cast<unsigned char>(p_[pos_]))) {
        return Error("expected a hex digit");
      }
      const char h = p_[pos_++];
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
  }

  // After '\'. Appends the escape's code points; true when it is a class escape (\d, \w, ...),
  // which cannot be a range end point.
  Result<bool> Escape(bool in_class, Ranges& out) {
    const size_t at = pos_;
    ++pos_;
    if (pos_ >= p_.size()) return Error("'\\' at the end of the pattern");
    const char c = p_[pos_++];
    auto add = [&](const Ranges& r) {
      out.insert(out.end(), r.begin(), r.end());
      return true;
    };
    auto single = [&](uint32_t cp) {
      out.emplace_back(cp, cp);
      return false;
    };
    switch (c) {
      case 'd':
        return add(Digits());
      case 'D':
        return add(Complement(Digits()));
      case 'w':
        return add(Word());
      case 'W':
        return add(Complement(Word()));
      case 's':
        return add(Space());
      case 'S':
        return add(Complement(Space()));
      case 't':
        return single('\t');
      case 'n':
        return single('\n');
      case 'r':
        return single('\r');
      case 'f':
        return single('\f');
      case 'v':
        return single('\v');
      case 'b':
        if (in_class) return single('\b');
        return Unsupported("word boundary \\b", at);
      case 'B':
        return Unsupported("word boundary \\B", at);
      case 'p':
      case 'P':
        return Unsupported("Unicode property escape", at);
      case 'k':
        return Unsupported("named backreference", at);
      case '0':
        if (pos_ < p_.size() && p_[pos_] >= '0' && p_[pos_] <= '9') {
          return Unsupported("octal escape", at);
        }
        return single(0);
      case 'c': {
        if (pos_ >= p_.size() || !std::isalpha(static_cast<unsigned char>(p_[pos_]))) {
          return Error("invalid \\c escape");
        }
        return single(static_cast<uint32_t>(p_[pos_++]) % 32);
      }
      case 'x': {
        GL_ASSIGN_OR_RETURN(uint32_t v, Hex(2));
        return single(v);
      }
      case 'u': {
        if (Peek('{')) {
          ++pos_;
          uint32_t v = 0;
          int n = 0;
          while (pos_ < p_.size() && p_[pos_] != '}') {
            GL_ASSIGN_OR_RETURN(uint32_t d, Hex(1));
            v = v * 16 + d;
            if (++n > 6 || v > kMaxCodePoint) return Error("code point out of range");
          }
          if (!Peek('}') || n == 0) return Error("invalid \\u{...} escape");
          ++pos_;
          if (v >= 0xD800 && v <= 0xDFFF) return Unsupported("a lone surrogate", at);
          return single(v);
        }
        GL_ASSIGN_OR_RETURN(uint32_t v, Hex(4));
        if (v >= 0xD800 && v <= 0xDBFF && pos_ + 6 <= p_.size() && p_[pos_] == '\\' &&
            p_[pos_ + 1] == 'u') {
          const size_t save = pos_;
          pos_ += 2;
          GL_ASSIGN_OR_RETURN(uint32_t low, Hex(4));
          if (low >= 0xDC00 && low <= 0xDFFF) {
            return single(0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00));
          }
          pos_ = save;
        }
        if (v >= 0xD800 && v <= 0xDFFF) return Unsupported("a lone surrogate", at);
        return single(v);
      }
      default:
        if (c >= '1' && c <= '9') return Unsupported("backreference", at);
        if (in_class && c == '-') return single('-');
        if (std::string_view("^$\\.*+?()[]{}|/").find(c) != std::string_view::npos) {
          return single(static_cast<uint8_t>(c));
        }
        return Error(std::string("invalid escape '\\") + c + "'");
    }
  }

  Result<RegexId> Class() {
    ++pos_;  // '['
    bool negated = false;
    if (Peek('^')) {
      negated = true;
      ++pos_;
    }
    Ranges ranges;
    while (true) {
      if (pos_ >= p_.size()) return Error("missing ']'");
      if (p_[pos_] == ']') {
        ++pos_;
        break;
      }
      // One class atom, then maybe "-atom".
      Ranges first;
      bool first_is_class = false;
      if (p_[pos_] == '\\') {
        GL_ASSIGN_OR_RETURN(first_is_class, Escape(/*in_class=*/true, first));
      } else {
        GL_ASSIGN_OR_RETURN(uint32_t cp, Utf8Char());
        first.emplace_back(cp, cp);
      }
      if (Peek('-') && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        const size_t dash = pos_;
        ++pos_;
        Ranges second;
        bool second_is_class = false;
        if (p_[pos_] == '\\') {
          GL_ASSIGN_OR_RETURN(second_is_class, Escape(/*in_class=*/true, second));
        } else {
          GL_ASSIGN_OR_RETURN(uint32_t cp, Utf8Char());
          second.emplace_back(cp, cp);
        }
        if (first_is_class || second_is_class) {
          pos_ = dash;
          return Error("a class escape cannot bound a range");
        }
        if (first[0].first > second[0].first) {
          pos_ = dash;
          return Error("range out of order in character class");
        }
        ranges.emplace_back(first[0].first, second[0].first);
        continue;
      }
      ranges.insert(ranges.end(), first.begin(), first.end());
    }
    if (negated) ranges = Complement(std::move(ranges));
    return arena_.CodePoints(ranges);
  }

  RegexArena& arena_;
  std::string_view p_;
  size_t pos_ = 0;
  int nesting_ = 0;
};

}  // namespace

Result<RegexId> ParseEcmaRegex(RegexArena& arena, std::string_view pattern, RegexMode mode) {
  // Regex construction recurses along a pattern's concatenations: bound the length.
  constexpr size_t kMaxPatternBytes = 4096;
  if (pattern.size() > kMaxPatternBytes) {
    return UnsupportedError("a pattern of " + std::to_string(pattern.size()) +
                            " bytes is not supported (at most 4096)");
  }
  Parser parser(arena, pattern);
  return parser.Parse(mode);
}

}  // namespace gemma_local::constrain
