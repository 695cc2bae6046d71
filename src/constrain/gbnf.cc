#include "constrain/gbnf.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "constrain/gbnf_parse.h"
#include "core/utf8.h"

namespace gemma_local::constrain {
namespace {

using gbnf::Expr;
using gbnf::Parser;

constexpr size_t kMaxTextBytes = size_t{1} << 20;
constexpr size_t kMaxGrammarSymbols = 200000;  // the expanded grammar (repetitions unrolled)

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
      const RegexId lexeme = g.lexeme(static_cast<int32_t>(i));
      if (auto it = first_bytes_.find(lexeme); it != first_bytes_.end()) {
        first_bytes[i] = it->second;
        continue;
      }
      for (int b = 0; b < 256; ++b) {
        const RegexId d = arena_->Derivative(lexeme, static_cast<uint8_t>(b));
        if (d == RegexArena::kNothing) continue;
        Result<bool> empty = Empty(d);
        if (!empty.ok() || !*empty) first_bytes[i].set(static_cast<size_t>(b));
      }
      first_bytes_.emplace(lexeme, first_bytes[i]);
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
      Result<bool> empty = Empty(arena_->And(runs_on, any_lexeme));
      if (empty.ok() && *empty) continue;
      for (size_t z = 0; z < nl; ++z) {
        Result<bool> e = Empty(arena_->And(runs_on, all[z]));
        if (!e.ok() || !*e) out.insert(all[z]);
      }
    }
    return std::vector<RegexId>(out.begin(), out.end());
  }

  // Whether the analysis ran out of its budget (then only the per-character form is safe).
  bool exhausted() const { return checks_ > kMaxChecks; }

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

  // Emptiness checks of the munch analysis, budgeted (a count and 2 s of wall time): a hostile
  // grammar must not turn compilation into minutes of derivative searches. Past the budget every
  // check reports "not empty", so everything offends and the caller falls back to the
  // per-character form: the same language, only slower masks.
  static constexpr size_t kMaxChecks = 50000;
  Result<bool> Empty(RegexId r) {
    const auto now = std::chrono::steady_clock::now();
    if (checks_ == 0) deadline_ = now + std::chrono::seconds(2);
    if (++checks_ > kMaxChecks || now > deadline_) {
      checks_ = kMaxChecks + 1;
      return false;
    }
    return arena_->IsEmpty(r);
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
  std::vector<int8_t> reaches_;             // -1 unknown
  std::map<RegexId, ByteSet> first_bytes_;  // each lexeme's possible first bytes
  size_t checks_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  std::map<int32_t, RegexId> rule_regex_;
  std::shared_ptr<Grammar> g_;
  bool all_chars_ = false;
  std::set<Source> exploded_;                       // built as structure, not as one lexeme
  std::map<RegexId, std::vector<Source>> sources_;  // where each lexeme came from
  size_t symbols_ = 0;
  std::vector<int32_t> rule_ids_;
  std::vector<int32_t> pending_;
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
    exact = offenders.empty() && !builder.exhausted();
    if (!exact && (builder.exhausted() || !builder.Explode(offenders))) break;
  }
  if (!exact) {
    GL_ASSIGN_OR_RETURN(g, builder.Cfg(/*all_chars=*/true));
  }
  Status s = g->Finalize();
  if (!s.ok()) return InvalidArgumentError("grammar: " + s.message());
  return std::shared_ptr<const Grammar>(g);
}

}  // namespace gemma_local::constrain
