#include "constrain/gbnf.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/utf8.h"

namespace gemma_local::constrain {
namespace {

constexpr size_t kMaxTextBytes = size_t{1} << 20;
constexpr size_t kMaxRules = 4096;
constexpr uint32_t kMaxRepeat = 10000;
constexpr size_t kMaxGrammarSymbols = 200000;  // the expanded grammar (repetitions unrolled)
constexpr int kMaxNesting = 200;

struct Expr {
  enum class Kind { kSeq, kAlt, kRepeat, kChars, kRef };
  Kind kind = Kind::kSeq;
  std::vector<Expr> items;  // seq, alt; repeat: items[0]
  uint32_t min = 0, max = 0;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // chars: one code point from these
  int32_t rule = -1;                                  // ref
};

Expr Chars(std::vector<std::pair<uint32_t, uint32_t>> ranges) {
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
      // Postfix operators.
      while (pos_ < text_.size() && (text_[pos_] == '*' || text_[pos_] == '+' ||
                                     text_[pos_] == '?' || text_[pos_] == '{')) {
        uint32_t min = 0, max = RegexArena::kUnbounded;
        const size_t op_at = pos_;
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
};

void CollectRefs(const Expr& e, std::vector<int32_t>& out) {
  if (e.kind == Expr::Kind::kRef) out.push_back(e.rule);
  for (const Expr& c : e.items) CollectRefs(c, out);
}

// Turns the parsed rules into a Grammar: regular parts into regexes, recursion into rules.
class Builder {
 public:
  // Where a lexeme came from: an expression (kWhole, kWhole) or the run [begin, end) of a
  // sequence's items.
  static constexpr size_t kWhole = SIZE_MAX;
  using Source = std::tuple<const Expr*, size_t, size_t>;

  Builder(const Parser& parser, std::shared_ptr<RegexArena> arena)
      : p_(parser), arena_(std::move(arena)) {
    const size_t n = p_.names().size();
    refs_.resize(n);
    for (size_t r = 0; r < n; ++r) CollectRefs(p_.body(static_cast<int32_t>(r)), refs_[r]);
    FindRecursive();
    reaches_.assign(n, -1);
  }

  bool recursive(int32_t rule) const { return recursive_[static_cast<size_t>(rule)] != 0; }
  // Whether a recursive rule is reachable from `rule` (itself included). Rules outside cycles
  // form a DAG, so the memoised recursion ends.
  bool ReachesRecursion(int32_t rule) {
    int8_t& memo = reaches_[static_cast<size_t>(rule)];
    if (memo >= 0) return memo != 0;
    bool reaches = recursive(rule);
    for (int32_t c : refs_[static_cast<size_t>(rule)]) {
      if (reaches) break;
      reaches = ReachesRecursion(c);
    }
    memo = reaches ? 1 : 0;
    return reaches;
  }

  // The regex of a rule or expression that reaches no recursion.
  RegexId Regex(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kChars:
        return arena_->CodePoints(e.ranges);
      case Expr::Kind::kRef: {
        auto it = rule_regex_.find(e.rule);
        if (it != rule_regex_.end()) return it->second;
        const RegexId r = Regex(p_.body(e.rule));
        rule_regex_.emplace(e.rule, r);
        return r;
      }
      case Expr::Kind::kRepeat:
        return arena_->Repeat(Regex(e.items[0]), e.min, e.max);
      case Expr::Kind::kSeq:
      case Expr::Kind::kAlt: {
        std::vector<RegexId> parts;
        for (const Expr& c : e.items) parts.push_back(Regex(c));
        return e.kind == Expr::Kind::kSeq ? arena_->Concat(parts) : arena_->Or(parts);
      }
    }
    return RegexArena::kNothing;
  }

  // A grammar for a recursive root: recursive rules stay rules; every regular piece that has not
  // been exploded (Explode) is one lexeme; with `all_chars`, every character class is one.
  Result<std::shared_ptr<Grammar>> Cfg(bool all_chars) {
    g_ = std::make_shared<Grammar>(arena_);
    all_chars_ = all_chars;
    symbols_ = 0;
    rule_ids_.assign(p_.names().size(), -1);
    lexemes_.clear();
    sources_.clear();
    const int32_t root = RuleSymbol(p_.root()).index();
    // Rules are defined on first use (RuleSymbol queues them).
    while (!pending_.empty()) {
      const int32_t r = pending_.back();
      pending_.pop_back();
      const Expr& body = p_.body(r);
      const int32_t id = rule_ids_[static_cast<size_t>(r)];
      std::vector<Symbol> rhs;
      if (body.kind != Expr::Kind::kAlt || Whole(body)) {
        GL_RETURN_IF_ERROR(Append(body, rhs));
        g_->AddProduction(id, std::move(rhs));
      } else {
        GL_RETURN_IF_ERROR(AddAlternatives(id, body, {}));
      }
    }
    g_->set_start(root);
    return g_;
  }

  // The lexemes whose maximal munch could lose a string: X can end at w, some lexeme Z has a
  // word starting w·b, and b can start a lexeme that follows X in the grammar. Then the lexer,
  // which continues Z, would miss the split after X. Z is returned (splitting it removes the
  // run-on; Z == X when a lexeme runs into what follows it, as `[a-z]+ ws` before "\n" with ws
  // taking newlines).
  // None means maximal munch is exact. Undecidable checks (state budget) count as offences.
  std::vector<RegexId> Offenders() {
    const Grammar& g = *g_;
    const size_t nr = g.rule_count(), nl = g.lexeme_count();
    if (nl == 0) return {};
    using Set = std::vector<uint64_t>;  // over lexeme indices
    const size_t words = (nl + 63) / 64;
    auto add = [](Set& into, const Set& from) {
      bool changed = false;
      for (size_t i = 0; i < into.size(); ++i) {
        const uint64_t before = into[i];
        into[i] |= from[i];
        changed |= into[i] != before;
      }
      return changed;
    };
    std::vector<uint8_t> nullable(nr, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (const Grammar::Production& p : g.productions()) {
        if (nullable[static_cast<size_t>(p.lhs)]) continue;
        const auto rhs = g.rhs(p);
        if (std::all_of(rhs.begin(), rhs.end(), [&](Symbol x) {
              return !x.is_lexeme() && nullable[static_cast<size_t>(x.index())];
            })) {
          nullable[static_cast<size_t>(p.lhs)] = 1;
          changed = true;
        }
      }
    }
    std::vector<Set> first(nr, Set(words, 0)), lexeme_set(nl, Set(words, 0));
    for (size_t i = 0; i < nl; ++i) lexeme_set[i][i / 64] |= uint64_t{1} << (i % 64);
    auto first_of = [&](Symbol x) -> const Set& {
      return x.is_lexeme() ? lexeme_set[static_cast<size_t>(x.index())]
                           : first[static_cast<size_t>(x.index())];
    };
    auto is_nullable = [&](Symbol x) {
      return !x.is_lexeme() && nullable[static_cast<size_t>(x.index())];
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (const Grammar::Production& p : g.productions()) {
        for (Symbol x : g.rhs(p)) {
          changed |= add(first[static_cast<size_t>(p.lhs)], first_of(x));
          if (!is_nullable(x)) break;
        }
      }
    }
    std::vector<Set> follow_rule(nr, Set(words, 0)), follow_lexeme(nl, Set(words, 0));
    for (bool changed = true; changed;) {
      changed = false;
      for (const Grammar::Production& p : g.productions()) {
        const auto rhs = g.rhs(p);
        Set trailer = follow_rule[static_cast<size_t>(p.lhs)];
        for (size_t i = rhs.size(); i-- > 0;) {
          const Symbol x = rhs[i];
          Set& f = x.is_lexeme() ? follow_lexeme[static_cast<size_t>(x.index())]
                                 : follow_rule[static_cast<size_t>(x.index())];
          changed |= add(f, trailer);
          if (!is_nullable(x)) trailer.assign(words, 0);
          add(trailer, first_of(x));
        }
      }
    }
    // The bytes each lexeme can start with.
    std::vector<ByteSet> first_bytes(nl);
    for (size_t i = 0; i < nl; ++i) {
      for (int b = 0; b < 256; ++b) {
        const RegexId d =
            arena_->Derivative(g.lexeme(static_cast<int32_t>(i)), static_cast<uint8_t>(b));
        if (d == RegexArena::kNothing) continue;
        Result<bool> empty = arena_->IsEmpty(d);
        if (!empty.ok() || !*empty) first_bytes[i].set(static_cast<size_t>(b));
      }
    }
    std::vector<RegexId> all;
    for (size_t i = 0; i < nl; ++i) all.push_back(g.lexeme(static_cast<int32_t>(i)));
    const RegexId any_lexeme = arena_->Or(all);
    std::set<RegexId> out;
    for (size_t x = 0; x < nl; ++x) {
      ByteSet next;
      for (size_t y = 0; y < nl; ++y) {
        if ((follow_lexeme[x][y / 64] >> (y % 64)) & 1) next |= first_bytes[y];
      }
      if (next.none()) continue;
      const RegexId runs_on =
          arena_->Concat(all[x], arena_->Concat(arena_->Bytes(next), arena_->Everything()));
      Result<bool> empty = arena_->IsEmpty(arena_->And(runs_on, any_lexeme));
      if (empty.ok() && *empty) continue;
      for (size_t z = 0; z < nl; ++z) {
        Result<bool> e = arena_->IsEmpty(arena_->And(runs_on, all[z]));
        if (!e.ok() || !*e) out.insert(all[z]);
      }
    }
    return std::vector<RegexId>(out.begin(), out.end());
  }

  // Builds the offending lexemes' sources as structure next time (a sequence's run item by item,
  // a rule reference as the rule, an alternation as alternatives, a repetition as rules over its
  // item). False when none can be split further.
  bool Explode(const std::vector<RegexId>& offenders) {
    bool progress = false;
    for (RegexId y : offenders) {
      for (const Source& source : sources_[y]) {
        if (std::get<0>(source)->kind == Expr::Kind::kChars) continue;
        progress |= exploded_.insert(source).second;
      }
    }
    return progress;
  }

  const std::vector<RegexId>& lexemes() const { return lexemes_; }

 private:
  // Tarjan's strongly connected components: a rule is recursive when its component has a cycle.
  void FindRecursive() {
    const size_t n = refs_.size();
    recursive_.assign(n, 0);
    std::vector<int32_t> index(n, -1), low(n, 0), stack;
    std::vector<uint8_t> on_stack(n, 0);
    int32_t counter = 0;
    std::function<void(int32_t)> visit = [&](int32_t v) {
      index[static_cast<size_t>(v)] = low[static_cast<size_t>(v)] = counter++;
      stack.push_back(v);
      on_stack[static_cast<size_t>(v)] = 1;
      for (int32_t w : refs_[static_cast<size_t>(v)]) {
        if (index[static_cast<size_t>(w)] < 0) {
          visit(w);
          low[static_cast<size_t>(v)] =
              std::min(low[static_cast<size_t>(v)], low[static_cast<size_t>(w)]);
        } else if (on_stack[static_cast<size_t>(w)]) {
          low[static_cast<size_t>(v)] =
              std::min(low[static_cast<size_t>(v)], index[static_cast<size_t>(w)]);
        }
      }
      if (low[static_cast<size_t>(v)] != index[static_cast<size_t>(v)]) return;
      std::vector<int32_t> component;
      int32_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[static_cast<size_t>(w)] = 0;
        component.push_back(w);
      } while (w != v);
      const auto& own = refs_[static_cast<size_t>(v)];
      const bool cyclic = component.size() > 1 || std::find(own.begin(), own.end(), v) != own.end();
      if (cyclic) {
        for (int32_t c : component) recursive_[static_cast<size_t>(c)] = 1;
      }
    };
    for (size_t v = 0; v < n; ++v) {
      if (index[v] < 0) visit(static_cast<int32_t>(v));
    }
  }

  // Whether `e` is built as one lexeme: regular and not exploded.
  bool Whole(const Expr& e) {
    return !all_chars_ && !ReachesRecursion(e) && exploded_.count({&e, kWhole, kWhole}) == 0;
  }

  // Whether `e` reaches a recursive rule.
  bool ReachesRecursion(const Expr& e) {
    if (e.kind == Expr::Kind::kRef) return ReachesRecursion(e.rule);
    return std::any_of(e.items.begin(), e.items.end(),
                       [&](const Expr& c) { return ReachesRecursion(c); });
  }

  Symbol RuleSymbol(int32_t rule) {
    int32_t& id = rule_ids_[static_cast<size_t>(rule)];
    if (id < 0) {
      id = g_->AddRule(p_.names()[static_cast<size_t>(rule)]);
      pending_.push_back(rule);
    }
    return Symbol::Rule(id);
  }

  // A helper rule with the given alternatives.
  Symbol Helper(const char* name, std::vector<std::vector<Symbol>> alternatives) {
    const int32_t id = g_->AddRule(name);
    for (auto& alt : alternatives) g_->AddProduction(id, std::move(alt));
    return Symbol::Rule(id);
  }

  // Appends a regular piece from `source`: a lexeme for its non-empty strings, optional when it
  // matches "".
  Status AppendRegular(RegexId r, const Source& source, std::vector<Symbol>& out) {
    const RegexId non_empty = arena_->And(r, arena_->Not(RegexArena::kEmpty));
    GL_ASSIGN_OR_RETURN(bool empty, arena_->IsEmpty(non_empty));
    std::vector<std::vector<Symbol>> alternatives;
    if (!empty) {
      const int32_t lexeme = g_->AddLexeme(non_empty);
      if (std::find(lexemes_.begin(), lexemes_.end(), non_empty) == lexemes_.end()) {
        lexemes_.push_back(non_empty);
      }
      sources_[non_empty].push_back(source);
      alternatives.push_back({Symbol::Lexeme(lexeme)});
    }
    if (arena_->Nullable(r)) {
      if (alternatives.empty()) return Status::Ok();  // matches only "": nothing to append
      alternatives.push_back({});
    }
    if (alternatives.size() == 1) {
      out.push_back(alternatives[0][0]);
    } else {
      out.push_back(Helper("gbnf-optional", std::move(alternatives)));  // derives nothing if none
    }
    return Status::Ok();
  }

  Status Append(const Expr& e, std::vector<Symbol>& out) {
    if (++symbols_ > kMaxGrammarSymbols) {
      return InvalidArgumentError("grammar: too large once repetitions are expanded");
    }
    if (e.kind != Expr::Kind::kSeq && Whole(e)) {
      return AppendRegular(Regex(e), {&e, kWhole, kWhole}, out);
    }
    switch (e.kind) {
      case Expr::Kind::kChars:
        return AppendRegular(arena_->CodePoints(e.ranges), {&e, kWhole, kWhole}, out);
      case Expr::Kind::kRef:
        out.push_back(RuleSymbol(e.rule));
        return Status::Ok();
      case Expr::Kind::kSeq: {
        // Runs of regular items are one lexeme ("true", or "{" then a class) until exploded.
        size_t start = 0;
        for (size_t i = 0; i < e.items.size(); ++i) {
          if (!all_chars_ && !ReachesRecursion(e.items[i])) continue;
          GL_RETURN_IF_ERROR(AppendRun(e, start, i, out));
          GL_RETURN_IF_ERROR(Append(e.items[i], out));
          start = i + 1;
        }
        return AppendRun(e, start, e.items.size(), out);
      }
      case Expr::Kind::kAlt: {
        const int32_t id = g_->AddRule("gbnf-alternatives");
        GL_RETURN_IF_ERROR(AddAlternatives(id, e, {}));
        out.push_back(Symbol::Rule(id));
        return Status::Ok();
      }
      case Expr::Kind::kRepeat: {
        std::vector<Symbol> once;
        GL_RETURN_IF_ERROR(Append(e.items[0], once));
        const Symbol item = Helper("gbnf-item", {once});
        for (uint32_t i = 0; i < e.min; ++i) {
          if (++symbols_ > kMaxGrammarSymbols) {
            return InvalidArgumentError("grammar: too large once repetitions are expanded");
          }
          out.push_back(item);
        }
        if (e.max == RegexArena::kUnbounded) {
          const int32_t star = g_->AddRule("gbnf-star");
          g_->AddProduction(star, {});
          g_->AddProduction(star, {item, Symbol::Rule(star)});
          out.push_back(Symbol::Rule(star));
        } else if (e.max > e.min) {
          // tail_k: up to k more items, nested (item (item ...)?)?.
          int32_t tail = g_->AddRule("gbnf-tail");
          g_->AddProduction(tail, {});
          g_->AddProduction(tail, {item});
          for (uint32_t k = 2; k <= e.max - e.min; ++k) {
            if (++symbols_ > kMaxGrammarSymbols) {
              return InvalidArgumentError("grammar: too large once repetitions are expanded");
            }
            const int32_t next = g_->AddRule("gbnf-tail");
            g_->AddProduction(next, {});
            g_->AddProduction(next, {item, Symbol::Rule(tail)});
            tail = next;
          }
          out.push_back(Symbol::Rule(tail));
        }
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  // The run of regular items [begin, end) of `seq`: one lexeme, or once exploded the run without
  // its last item and then that item (a run most often offends by its end, as "[a-z]+ ws").
  Status AppendRun(const Expr& seq, size_t begin, size_t end, std::vector<Symbol>& out) {
    if (end == begin) return Status::Ok();
    if (end - begin == 1) return Append(seq.items[begin], out);
    if (exploded_.count({&seq, begin, end}) != 0) {
      GL_RETURN_IF_ERROR(AppendRun(seq, begin, end - 1, out));
      return Append(seq.items[end - 1], out);
    }
    std::vector<RegexId> run;
    for (size_t i = begin; i < end; ++i) run.push_back(Regex(seq.items[i]));
    return AppendRegular(arena_->Concat(run), {&seq, begin, end}, out);
  }

  // Productions of `id` for the top-level alternatives of `e` (`first` is e's appended form when
  // e is not an alternation and the caller already built it).
  Status AddAlternatives(int32_t id, const Expr& e, std::vector<Symbol> first) {
    if (e.kind != Expr::Kind::kAlt) {
      g_->AddProduction(id, std::move(first));
      return Status::Ok();
    }
    for (const Expr& c : e.items) {
      std::vector<Symbol> rhs;
      GL_RETURN_IF_ERROR(Append(c, rhs));
      g_->AddProduction(id, std::move(rhs));
    }
    return Status::Ok();
  }

  const Parser& p_;
  std::shared_ptr<RegexArena> arena_;
  std::vector<std::vector<int32_t>> refs_;
  std::vector<uint8_t> recursive_;
  std::vector<int8_t> reaches_;  // -1 unknown
  std::map<int32_t, RegexId> rule_regex_;
  std::shared_ptr<Grammar> g_;
  bool all_chars_ = false;
  std::set<Source> exploded_;                       // built as structure, not as one lexeme
  std::map<RegexId, std::vector<Source>> sources_;  // where each lexeme came from
  size_t symbols_ = 0;
  std::vector<int32_t> rule_ids_;
  std::vector<int32_t> pending_;
  std::vector<RegexId> lexemes_;
};

}  // namespace

Result<std::shared_ptr<const Grammar>> RegularGrammar(std::shared_ptr<RegexArena> arena,
                                                      RegexId r) {
  auto g = std::make_shared<Grammar>(arena);
  const int32_t root = g->AddRule("root");
  const bool nullable = arena->Nullable(r);
  const RegexId non_empty = arena->And(r, arena->Not(RegexArena::kEmpty));
  GL_ASSIGN_OR_RETURN(bool empty, arena->IsEmpty(non_empty));
  if (!empty) g->AddProduction(root, {Symbol::Lexeme(g->AddLexeme(non_empty))});
  if (nullable) g->AddProduction(root, {});
  g->set_start(root);
  Status s = g->Finalize();
  if (!s.ok()) return InvalidArgumentError("the constraint allows no output: " + s.message());
  return std::shared_ptr<const Grammar>(g);
}

Result<std::shared_ptr<const Grammar>> CompileGbnf(std::string_view text,
                                                   const GbnfOptions& options) {
  if (text.size() > kMaxTextBytes) return InvalidArgumentError("grammar: larger than 1 MiB");
  if (!IsValidUtf8(text)) {
    return InvalidArgumentError("grammar: invalid UTF-8 at byte " +
                                std::to_string(FirstInvalidUtf8Offset(text)));
  }
  Parser parser(text);
  GL_RETURN_IF_ERROR(parser.Parse());
  auto arena = std::make_shared<RegexArena>();
  Builder builder(parser, arena);
  const int32_t root = parser.root();
  if (!builder.ReachesRecursion(root)) {
    Expr ref;
    ref.kind = Expr::Kind::kRef;
    ref.rule = root;
    Result<std::shared_ptr<const Grammar>> g = RegularGrammar(arena, builder.Regex(ref));
    if (!g.ok()) return InvalidArgumentError("grammar: " + g.status().message());
    return g;
  }
  // Lexemes are exact under maximal munch when no lexeme can run on into a byte that could start
  // what follows it (Builder::Offenders). Start with every regular piece whole and split the
  // offenders a level at a time; single characters never offend (a lexeme word is whole
  // characters), so this ends, at worst with a lexeme per character class.
  std::shared_ptr<Grammar> g;
  bool exact = false;
  for (int round = 0; round < 256 && !exact && !options.per_character; ++round) {
    GL_ASSIGN_OR_RETURN(g, builder.Cfg(/*all_chars=*/false));
    const std::vector<RegexId> offenders = builder.Offenders();
    exact = offenders.empty();
    if (!exact && !builder.Explode(offenders)) break;
  }
  if (!exact) {
    GL_ASSIGN_OR_RETURN(g, builder.Cfg(/*all_chars=*/true));
  }
  Status s = g->Finalize();
  if (!s.ok()) return InvalidArgumentError("grammar: " + s.message());
  return std::shared_ptr<const Grammar>(g);
}

}  // namespace gemma_local::constrain
