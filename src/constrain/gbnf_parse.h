// GBNF text to an expression tree per rule (src/constrain/gbnf.h has the syntax). Internal to
// the GBNF compiler; recursive descent following llama.cpp's grammar parser's layout rules.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "constrain/regex.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain::gbnf {

inline constexpr size_t kMaxRules = 4096;
inline constexpr uint32_t kMaxRepeat = 10000;
inline constexpr int kMaxNesting = 200;
inline constexpr int kMaxPostfix = 4;
inline constexpr size_t kMaxElements = 10000;

struct Expr {
  enum class Kind { kSeq, kAlt, kRepeat, kChars, kRef };
  Kind kind = Kind::kSeq;
  std::vector<Expr> items;  // seq, alt; repeat: items[0]
  uint32_t min = 0, max = 0;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // chars: one code point from these
  int32_t rule = -1;                                  // ref
};

inline Expr Chars(std::vector<std::pair<uint32_t, uint32_t>> ranges) {
  Expr e;
  e.kind = Expr::Kind::kChars;
  e.ranges = std::move(ranges);
  return e;
}

// Recursive descent over the text, following llama.cpp's grammar parser's layout rules.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Status Parse() {
    SkipSpace(true);
    while (pos_ < text_.size()) {
      const size_t at = pos_;
      const std::string name = Name();
      if (name.empty()) return Error(at, "expected a rule name");
      SkipSpace(false);
      if (text_.substr(pos_, 3) != "::=") return Error(pos_, "expected ::= after \"" + name + "\"");
      pos_ += 3;
      SkipSpace(true);
      const int32_t id = RuleId(name, at);
      if (bodies_[static_cast<size_t>(id)].has_value()) {
        return Error(at, "rule \"" + name + "\" is defined twice");
      }
      GL_ASSIGN_OR_RETURN(Expr body, Alternates(/*nested=*/false, 0));
      bodies_[static_cast<size_t>(id)] = std::move(body);
      if (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') {
        return Error(pos_, "expected the end of the line after rule \"" + name + "\"");
      }
      SkipSpace(true);
      if (names_.size() > kMaxRules) return Error(at, "more than 4096 rules");
    }
    for (size_t i = 0; i < names_.size(); ++i) {
      if (!bodies_[i].has_value()) {
        return Error(first_use_[i], "rule \"" + names_[i] + "\" is used but never defined");
      }
    }
    if (ids_.count("root") == 0) return InvalidArgumentError("grammar: no \"root\" rule");
    return Status::Ok();
  }

  const std::vector<std::string>& names() const { return names_; }
  const Expr& body(int32_t rule) const { return *bodies_[static_cast<size_t>(rule)]; }
  int32_t root() const { return ids_.at("root"); }

 private:
  Status Error(size_t at, const std::string& message) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return InvalidArgumentError("grammar line " + std::to_string(line) + ", column " +
                                std::to_string(column) + ": " + message);
  }
  Status Unsupported(size_t at, const std::string& message) const {
    return Status(StatusCode::kUnsupported, Error(at, message).message());
  }

  static bool WordChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  }
  // Spaces, tabs and # comments; newlines too when `newline_ok` (inside parentheses, after |,
  // between rules).
  void SkipSpace(bool newline_ok) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      } else {
        return;
      }
    }
  }
  std::string Name() {
    const size_t begin = pos_;
    while (pos_ < text_.size() && WordChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(begin, pos_ - begin));
  }
  int32_t RuleId(const std::string& name, size_t at) {
    auto [it, inserted] = ids_.try_emplace(name, static_cast<int32_t>(names_.size()));
    if (inserted) {
      names_.push_back(name);
      bodies_.emplace_back();
      first_use_.push_back(at);
    }
    return it->second;
  }

  // One code point of UTF-8 (the text is valid UTF-8, checked up front).
  uint32_t NextCodePoint() {
    const auto b0 = static_cast<unsigned char>(text_[pos_++]);
    if (b0 < 0x80) return b0;
    const size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
    uint32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < len; ++i)
      cp = (cp << 6) | (static_cast<unsigned char>(text_[pos_++]) & 0x3F);
    return cp;
  }
  Result<uint32_t> Hex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      if (pos_ >= text_.size()) return Error(at, "incomplete escape");
      const char c = text_[pos_++];
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<uint32_t>(c - 'A' + 10);
      else
        return Error(pos_ - 1, "expected a hex digit in the escape");
      v = (v << 4) | d;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
      return Error(at, "escape is not a Unicode scalar value");
    }
    return v;
  }
  // A character of a literal or class, escapes decoded.
  Result<uint32_t> Char() {
    const size_t at = pos_;
    if (text_[pos_] != '\\') return NextCodePoint();
    ++pos_;
    if (pos_ >= text_.size()) return Error(at, "incomplete escape");
    const char c = text_[pos_++];
    switch (c) {
      case 'x':
        return Hex(2, at);
      case 'u':
        return Hex(4, at);
      case 'U':
        return Hex(8, at);
      case 't':
        return uint32_t{'\t'};
      case 'r':
        return uint32_t{'\r'};
      case 'n':
        return uint32_t{'\n'};
      case '\\':
      case '"':
      case '[':
      case ']':
      case '-':
      case '^':
      case '/':
        return static_cast<uint32_t>(c);
      default:
        return Error(at, std::string("unknown escape \\") + c);
    }
  }

  Result<Expr> Alternates(bool nested, int depth) {
    if (depth > kMaxNesting) return Error(pos_, "nested more than 200 deep");
    Expr alt;
    alt.kind = Expr::Kind::kAlt;
    GL_ASSIGN_OR_RETURN(Expr first, Sequence(nested, depth));
    alt.items.push_back(std::move(first));
    while (pos_ < text_.size() && text_[pos_] == '|') {
      ++pos_;
      SkipSpace(true);
      GL_ASSIGN_OR_RETURN(Expr next, Sequence(nested, depth));
      alt.items.push_back(std::move(next));
    }
    if (alt.items.size() == 1) return std::move(alt.items[0]);
    return alt;
  }

  Result<Expr> Sequence(bool nested, int depth) {
    Expr seq;
    seq.kind = Expr::Kind::kSeq;
    while (pos_ < text_.size()) {
      const size_t at = pos_;
      const char c = text_[pos_];
      if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
      Expr item;
      if (c == '"') {
        ++pos_;
        item.kind = Expr::Kind::kSeq;
        while (true) {
          if (pos_ >= text_.size() || text_[pos_] == '\n') return Error(at, "unterminated literal");
          if (text_[pos_] == '"') break;
          GL_ASSIGN_OR_RETURN(uint32_t cp, Char());
          item.items.push_back(Chars({{cp, cp}}));
        }
        ++pos_;
      } else if (c == '[') {
        ++pos_;
        bool negated = false;
        if (pos_ < text_.size() && text_[pos_] == '^') {
          negated = true;
          ++pos_;
        }
        std::vector<std::pair<uint32_t, uint32_t>> ranges;
        while (true) {
          if (pos_ >= text_.size() || text_[pos_] == '\n') return Error(at, "unterminated class");
          if (text_[pos_] == ']') break;
          GL_ASSIGN_OR_RETURN(uint32_t lo, Char());
          uint32_t hi = lo;
          if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
            ++pos_;
            GL_ASSIGN_OR_RETURN(hi, Char());
            if (hi < lo) return Error(at, "class range out of order");
          }
          ranges.emplace_back(lo, hi);
        }
        ++pos_;
        if (negated) {
          std::sort(ranges.begin(), ranges.end());
          std::vector<std::pair<uint32_t, uint32_t>> complement;
          uint32_t next = 0;
          for (auto [lo, hi] : ranges) {
            if (lo > next) complement.emplace_back(next, lo - 1);
            next = std::max(next, hi + 1);
          }
          if (next <= 0x10FFFF) complement.emplace_back(next, 0x10FFFF);
          ranges = std::move(complement);
        }
        if (ranges.empty()) return Error(at, "class matches no character");
        item = Chars(std::move(ranges));
      } else if (c == '.') {
        ++pos_;
        item = Chars({{0, 0x10FFFF}});
      } else if (c == '(') {
        ++pos_;
        SkipSpace(true);
        GL_ASSIGN_OR_RETURN(item, Alternates(/*nested=*/true, depth + 1));
        if (pos_ >= text_.size() || text_[pos_] != ')') return Error(at, "unclosed parenthesis");
        ++pos_;
      } else if (c == '<') {
        return Unsupported(at,
                           "token references (<...>) name model tokens, not text: not supported");
      } else if (WordChar(c)) {
        const std::string name = Name();
        item.kind = Expr::Kind::kRef;
        item.rule = RuleId(name, at);
        // A rule definition on this line means a newline is missing before it.
        const size_t save = pos_;
        SkipSpace(false);
        if (text_.substr(pos_, 3) == "::=")
          return Error(at, "expected a newline before rule \"" + name + "\"");
        pos_ = save;
      } else {
        return Error(at, std::string("unexpected character '") + c + "'");
      }
      SkipSpace(nested);
      // Postfix operators (a few per item: each nests the item one level deeper).
      int operators = 0;
      while (pos_ < text_.size() && (text_[pos_] == '*' || text_[pos_] == '+' ||
                                     text_[pos_] == '?' || text_[pos_] == '{')) {
        uint32_t min = 0, max = RegexArena::kUnbounded;
        const size_t op_at = pos_;
        if (++operators > kMaxPostfix) {
          return Error(op_at, "more than 4 repetition operators on one item");
        }
        const char op = text_[pos_++];
        if (op == '+') {
          min = 1;
        } else if (op == '?') {
          max = 1;
        } else if (op == '{') {
          SkipSpace(nested);
          auto number = [&]() -> std::optional<uint32_t> {
            const size_t begin = pos_;
            uint64_t v = 0;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
              v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(text_[pos_] - '0'), 1u << 30);
              ++pos_;
            }
            if (pos_ == begin) return std::nullopt;
            return static_cast<uint32_t>(v);
          };
          std::optional<uint32_t> lo = number();
          SkipSpace(nested);
          std::optional<uint32_t> hi = lo;
          if (pos_ < text_.size() && text_[pos_] == ',') {
            ++pos_;
            SkipSpace(nested);
            hi = number();
            if (!hi.has_value()) hi = RegexArena::kUnbounded;
            SkipSpace(nested);
          }
          if (!lo.has_value() && !(hi.has_value() && *hi != RegexArena::kUnbounded)) {
            return Error(op_at, "expected a count in {...}");
          }
          if (pos_ >= text_.size() || text_[pos_] != '}') return Error(op_at, "expected }");
          ++pos_;
          min = lo.value_or(0);
          max = *hi;
          if (max != RegexArena::kUnbounded && max < min) return Error(op_at, "{m,n} with n < m");
          if (min > kMaxRepeat || (max != RegexArena::kUnbounded && max > kMaxRepeat)) {
            return Error(op_at, "repetition counts above 10000");
          }
        }
        Expr rep;
        rep.kind = Expr::Kind::kRepeat;
        rep.min = min;
        rep.max = max;
        rep.items.push_back(std::move(item));
        item = std::move(rep);
        SkipSpace(nested);
      }
      // Items and operators bound how deep the regexes nest (a run of optional items is a chain
      // that derivatives walk recursively); literal characters do not count (their chain is
      // never nullable).
      if (++elements_ > kMaxElements) return Error(at, "more than 10000 grammar elements");
      elements_ += static_cast<size_t>(operators);
      seq.items.push_back(std::move(item));
    }
    if (seq.items.size() == 1) return std::move(seq.items[0]);
    return seq;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::map<std::string, int32_t> ids_;
  std::vector<std::string> names_;
  std::vector<std::optional<Expr>> bodies_;
  std::vector<size_t> first_use_;
  size_t elements_ = 0;
};

}  // namespace gemma_local::constrain::gbnf
