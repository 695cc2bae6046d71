#include "constrain/json_schema_compiler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "constrain/json_schema_internal.h"
#include "constrain/numeric_range.h"
#include "constrain/regex_parse.h"

namespace gemma_local::constrain {
namespace {

using schema_internal::ojson;
using schema_internal::PointerToken;
using schema_internal::Refuse;
using schema_internal::Unsatisfiable;

constexpr uint32_t kMaxCountedItems = 1024;  // larger maxItems: unbounded in the grammar

// Conservative format grammars: every string they produce passes formats.cc (and ajv-formats).
// The formats other than date, time and date-time (built from DatePattern and TimePattern).
const char* FormatPattern(std::string_view format) {
  if (format == "uuid") return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
  if (format == "email") {
    return "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,32}){0,3}@"
           "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?){1,2}";
  }
  if (format == "uri") {
    return "https?://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?){0,3}"
           "(:[0-9]{1,5})?(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2})*)*"
           "(\\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-F]{2})*)?"
           "(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-F]{2})*)?";
  }
  return nullptr;
}

std::string DatePattern() {
  const std::string year = "[0-9]{4}";
  const std::string leap = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)";
  return "(" + year + "-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|" + year +
         "-(0[469]|11)-(0[1-9]|[12][0-9]|30)|" + year + "-02-(0[1-9]|1[0-9]|2[0-8])|" + leap +
         "-02-29)";
}
std::string TimePattern() {
  return "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5]"
         "[0-9])";
}

std::optional<double> NumberField(const ojson& s, const char* key) {
  auto it = s.find(key);
  if (it == s.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// A count keyword (minItems, maxLength, ...): a non-negative integer, read up to 1e15.
Result<std::optional<double>> CountField(const ojson& s, const char* key, const std::string& ptr) {
  auto it = s.find(key);
  if (it == s.end()) return std::optional<double>();
  const double v = it->is_number() ? it->get<double>() : -1;
  if (!(v >= 0) || std::floor(v) != v) {
    return InvalidArgumentError("JSON Schema at \"" + ptr + "\": \"" + key +
                                "\" must be a non-negative integer");
  }
  return std::optional<double>(std::min(v, 1e15));
}

class Compiler {
 public:
  explicit Compiler(const ojson& root, std::vector<ConstraintIssue>* validated_after)
      : root_(root),
        arena_(std::make_shared<RegexArena>()),
        g_(std::make_shared<Grammar>(arena_)),
        validated_after_(validated_after) {
    auto lit = [&](std::string_view s) {
      return Symbol::Lexeme(g_->AddLexeme(arena_->Literal(s)));
    };
    lbrace_ = lit("{"), rbrace_ = lit("}"), lbracket_ = lit("["), rbracket_ = lit("]");
    comma_ = lit(","), colon_ = lit(":");
    true_ = lit("true"), false_ = lit("false"), null_ = lit("null");
    // One character of a canonical JSON string: raw UTF-8 but for '"', '\' and controls, which
    // have exactly one escape each.
    const std::pair<uint32_t, uint32_t> raw[] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}};
    std::vector<RegexId> chars{arena_->CodePoints(raw)};
    for (int c = 0; c < 0x20; ++c)
      chars.push_back(arena_->Literal(Escape(static_cast<uint8_t>(c))));
    chars.push_back(arena_->Literal("\\\""));
    chars.push_back(arena_->Literal("\\\\"));
    canon_char_ = arena_->Or(chars);
  }

  static std::string Escape(uint8_t c) {
    switch (c) {
      case '"':
        return "\\\"";
      case '\\':
        return "\\\\";
      case '\b':
        return "\\b";
      case '\f':
        return "\\f";
      case '\n':
        return "\\n";
      case '\r':
        return "\\r";
      case '\t':
        return "\\t";
      default: {
        static const char kHex[] = "0123456789abcdef";
        return std::string("\\u00") + kHex[c >> 4] + kHex[c & 15];
      }
    }
  }

  // Maps a regex over raw characters to the canonical JSON encoding of the same strings.
  RegexId JsonEncode(RegexId r) {
    return arena_->Substitute(r, [&](const ByteSet& set) {
      ByteSet plain = set;
      std::vector<RegexId> alternatives;
      for (int c = 0; c < 256; ++c) {
        if ((c < 0x20 || c == '"' || c == '\\') && set[static_cast<size_t>(c)]) {
          plain.reset(static_cast<size_t>(c));
          alternatives.push_back(arena_->Literal(Escape(static_cast<uint8_t>(c))));
        }
      }
      alternatives.push_back(arena_->Bytes(plain));
      return arena_->Or(alternatives);
    });
  }

  Result<std::shared_ptr<const Grammar>> Run() {
    const int32_t start = g_->AddRule("root");
    GL_RETURN_IF_ERROR(Body(root_, "", start, /*addressable=*/true));
    g_->set_start(start);
    Status s = g_->Finalize();
    if (!s.ok()) return Unsatisfiable("", s.message());
    return std::shared_ptr<const Grammar>(g_);
  }

  Symbol AnyValue() {
    if (any_rule_ >= 0) return Symbol::Rule(any_rule_);
    any_rule_ = g_->AddRule("any");
    const Symbol value = Symbol::Rule(any_rule_);
    const Symbol string = StringOf(arena_->Star(canon_char_));
    const Symbol number = Symbol::Lexeme(
        g_->AddLexeme(NumberRange(*arena_, std::nullopt, std::nullopt, kMaxFractionDigits)));
    const int32_t members = g_->AddRule("any_members"), elements = g_->AddRule("any_elements");
    for (Symbol s : {string, number, true_, false_, null_}) g_->AddProduction(any_rule_, {s});
    g_->AddProduction(any_rule_, {lbrace_, rbrace_});
    g_->AddProduction(any_rule_, {lbrace_, Symbol::Rule(members), rbrace_});
    g_->AddProduction(any_rule_, {lbracket_, rbracket_});
    g_->AddProduction(any_rule_, {lbracket_, Symbol::Rule(elements), rbracket_});
    // Left-recursive lists (see Array).
    g_->AddProduction(members, {string, colon_, value});
    g_->AddProduction(members, {Symbol::Rule(members), comma_, string, colon_, value});
    g_->AddProduction(elements, {value});
    g_->AddProduction(elements, {Symbol::Rule(elements), comma_, value});
    return value;
  }

 private:
  Symbol StringOf(RegexId body) {
    const RegexId quote = arena_->Byte('"');
    const RegexId parts[] = {quote, body, quote};
    return Symbol::Lexeme(g_->AddLexeme(arena_->Concat(parts)));
  }

  // The rule for values of schema `s` at `ptr`. Schemas found at a pointer are compiled once (so
  // recursion through $ref is a recursive rule); merged ones are compiled where they occur.
  Result<Symbol> Schema(const ojson& s, const std::string& ptr, bool addressable) {
    if (addressable) {
      if (auto it = by_pointer_.find(ptr); it != by_pointer_.end()) return Symbol::Rule(it->second);
    }
    // A merged schema is compiled where it occurs, without the memo: a schema that recurses
    // through allOf or a $ref with sibling keywords would unfold for ever, so the nesting of
    // such compiles is bounded.
    if (!addressable && inline_depth_ >= kMaxInlineDepth) {
      return Refuse("$ref", ptr,
                    "recursion through allOf or through a $ref with sibling keywords (write the "
                    "recursive part as a plain {\"$ref\": ...})");
    }
    const int32_t rule = g_->AddRule(ptr.empty() ? "#" : ptr);
    if (addressable) by_pointer_[ptr] = rule;
    if (!addressable) ++inline_depth_;
    Status body = Body(s, ptr, rule, addressable);
    if (!addressable) --inline_depth_;
    GL_RETURN_IF_ERROR(body);
    return Symbol::Rule(rule);
  }

  // `addressable`: `s` is the schema found at `ptr` in the root (not a merge).
  Status Body(const ojson& s, const std::string& ptr, int32_t rule, bool addressable) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Unsatisfiable(ptr, "the schema is false");
      g_->AddProduction(rule, {AnyValue()});
      return Status::Ok();
    }
    // A plain reference is a rule of its own (recursion); one with siblings is merged.
    if (auto r = s.find("$ref"); r != s.end()) {
      bool siblings = false;
      for (auto it = s.begin(); it != s.end(); ++it) {
        siblings =
            siblings || (it.key() != "$ref" && schema_internal::Classify(it.key()) !=
                                                   schema_internal::KeywordClass::kAnnotation);
      }
      if (!siblings) {
        GL_ASSIGN_OR_RETURN(auto target,
                            schema_internal::ResolveRef(root_, r->get<std::string>(), ptr));
        GL_ASSIGN_OR_RETURN(Symbol sym, Schema(*target.first, target.second, true));
        g_->AddProduction(rule, {sym});
        return Status::Ok();
      }
    }
    // allOf of one part beside annotations only (pydantic's way of annotating a $ref): an alias,
    // compiled at its pointer so recursion through it is a recursive rule.
    if (auto all = s.find("allOf"); all != s.end() && all->size() == 1 && !s.contains("$ref")) {
      bool siblings = false;
      for (auto it = s.begin(); it != s.end(); ++it) {
        siblings =
            siblings || (it.key() != "allOf" && schema_internal::Classify(it.key()) !=
                                                    schema_internal::KeywordClass::kAnnotation);
      }
      if (!siblings) {
        GL_ASSIGN_OR_RETURN(Symbol sym, Schema((*all)[0], ptr + "/allOf/0", addressable));
        g_->AddProduction(rule, {sym});
        return Status::Ok();
      }
    }
    ojson eff = s;
    if (s.contains("$ref") || s.contains("allOf")) {
      GL_ASSIGN_OR_RETURN(eff, schema_internal::Flatten(root_, s, ptr));
      if (eff.is_boolean()) return Body(eff, ptr, rule, false);
      addressable = false;
    }
    const bool any_of = eff.contains("anyOf"), one_of = eff.contains("oneOf");
    if (any_of && one_of) return Refuse("oneOf", ptr, "anyOf and oneOf in one schema");
    if (any_of || one_of) {
      const char* key = any_of ? "anyOf" : "oneOf";
      const ojson branches = eff[key];
      ojson rest = eff;
      rest.erase(key);
      bool constrained = false;
      for (auto it = rest.begin(); it != rest.end(); ++it) {
        constrained = constrained || schema_internal::Classify(it.key()) ==
                                         schema_internal::KeywordClass::kGrammar;
      }
      if (one_of && branches.size() > 1) {
        validated_after_->push_back(
            {"oneOf", ptr,
             "the grammar allows any branch; that exactly one matches is checked after"});
      }
      bool any_ok = false;
      Status last = Status::Ok();
      for (size_t i = 0; i < branches.size(); ++i) {
        const std::string at = ptr + "/" + key + "/" + std::to_string(i);
        Result<Symbol> sym = Status::Ok();
        if (!constrained && addressable) {
          sym = Schema(branches[i], at, /*addressable=*/true);
        } else {
          Result<ojson> merged = schema_internal::Merge(root_, rest, branches[i], at);
          if (!merged.ok()) {
            if (merged.status().code() == StatusCode::kUnsupported) return merged.status();
            last = merged.status();
            continue;  // an unsatisfiable branch is just not an option
          }
          sym = Schema(*merged, at, false);
        }
        if (!sym.ok()) {
          if (sym.status().code() == StatusCode::kUnsupported) return sym.status();
          last = sym.status();
          continue;
        }
        g_->AddProduction(rule, {*sym});
        any_ok = true;
      }
      if (!any_ok) return last.ok() ? Unsatisfiable(ptr, "no branch is satisfiable") : last;
      return Status::Ok();
    }
    return Types(eff, ptr, rule, addressable);
  }

  Status Types(const ojson& s, const std::string& ptr, int32_t rule, bool addressable) {
    std::set<std::string> types = {"null", "boolean", "object", "array", "string", "number"};
    if (auto t = s.find("type"); t != s.end()) {
      types.clear();
      if (t->is_string()) {
        types.insert(t->get<std::string>());
      } else {
        for (const auto& x : *t) types.insert(x.get<std::string>());
      }
    }
    if (types.count("number") != 0) types.erase("integer");
    if (s.contains("enum") || s.contains("const")) {
      ojson values = s.contains("enum") ? s["enum"] : ojson::array();
      if (s.contains("const")) {  // both (a merge): the const, if the enum has it
        const bool in_enum = !s.contains("enum") ||
                             std::find(values.begin(), values.end(), s["const"]) != values.end();
        values = in_enum ? ojson::array({s["const"]}) : ojson::array();
      }
      // Values that break a sibling string keyword (length, pattern, format) are dropped.
      std::optional<RegexId> string_rule;
      if (s.contains("minLength") || s.contains("maxLength") || s.contains("pattern") ||
          s.contains("format") || s.contains("x-gl-patterns")) {
        GL_ASSIGN_OR_RETURN(RegexId r, StringRegex(s, ptr));
        string_rule = r;
      }
      bool any = false;
      for (const auto& v : values) {
        const bool fits =
            (v.is_null() && types.count("null")) || (v.is_boolean() && types.count("boolean")) ||
            (v.is_object() && types.count("object")) || (v.is_array() && types.count("array")) ||
            (v.is_string() && types.count("string")) ||
            (v.is_number() &&
             (types.count("number") ||
              (types.count("integer") && std::floor(v.get<double>()) == v.get<double>())));
        if (!fits) continue;
        if (v.is_string() && string_rule &&
            !arena_->Matches(*string_rule, CanonicalJsonString(v.get<std::string>()))) {
          continue;
        }
        g_->AddProduction(rule, {Symbol::Lexeme(g_->AddLexeme(arena_->Literal(
                                    v.dump(-1, ' ', false, ojson::error_handler_t::replace))))});
        any = true;
      }
      if (!any) return Unsatisfiable(ptr, "no enum/const value has an allowed type");
      return Status::Ok();
    }
    bool any = false;
    Status last = Status::Ok();
    for (const std::string& type : types) {
      Result<Symbol> sym = Status::Ok();
      if (type == "null") {
        sym = null_;
      } else if (type == "boolean") {
        g_->AddProduction(rule, {true_});
        sym = false_;
      } else if (type == "object") {
        sym = Object(s, ptr, addressable);
      } else if (type == "array") {
        sym = Array(s, ptr, addressable);
      } else if (type == "string") {
        sym = String(s, ptr);
      } else if (type == "number" || type == "integer") {
        sym = Number(s, ptr, type == "integer");
      } else {
        return InvalidArgumentError("JSON Schema at \"" + ptr + "\": unknown type \"" + type +
                                    "\"");
      }
      if (!sym.ok()) {
        if (sym.status().code() == StatusCode::kUnsupported) return sym.status();
        last = sym.status();
        continue;
      }
      g_->AddProduction(rule, {*sym});
      any = true;
    }
    if (!any) return last.ok() ? Unsatisfiable(ptr, "no type allowed") : last;
    return Status::Ok();
  }

  Result<Symbol> Object(const ojson& s, const std::string& ptr, bool addressable);
  Result<Symbol> Array(const ojson& s, const std::string& ptr, bool addressable);
  Result<Symbol> String(const ojson& s, const std::string& ptr);
  // The lexeme of a string of schema `s`, quotes included.
  Result<RegexId> StringRegex(const ojson& s, const std::string& ptr);
  Result<Symbol> Number(const ojson& s, const std::string& ptr, bool integer);

  const ojson& root_;
  std::shared_ptr<RegexArena> arena_;
  std::shared_ptr<Grammar> g_;
  std::vector<ConstraintIssue>* validated_after_;
  std::map<std::string, int32_t> by_pointer_;
  Symbol lbrace_, rbrace_, lbracket_, rbracket_, comma_, colon_, true_, false_, null_;
  RegexId canon_char_ = RegexArena::kNothing;
  int32_t any_rule_ = -1;
  static constexpr int kMaxInlineDepth = 24;
  int inline_depth_ = 0;
};

Result<Symbol> Compiler::Object(const ojson& s, const std::string& ptr, bool addressable) {
  struct Property {
    std::string name;
    Symbol key, value;
  };
  std::vector<Property> props;
  std::set<std::string> required;
  if (auto r = s.find("required"); r != s.end()) {
    for (const auto& x : *r) required.insert(x.get<std::string>());
  }
  std::set<std::string> declared;
  if (auto p = s.find("properties"); p != s.end()) {
    for (auto it = p->begin(); it != p->end(); ++it) {
      const std::string at = ptr + "/properties/" + PointerToken(it.key());
      if (it.value() == false) {
        if (required.count(it.key())) return Unsatisfiable(at, "a required property is false");
        declared.insert(it.key());
        continue;
      }
      GL_ASSIGN_OR_RETURN(Symbol value, Schema(it.value(), at, addressable));
      props.push_back(
          {it.key(), Symbol::Lexeme(g_->AddLexeme(arena_->Literal(CanonicalJsonString(it.key())))),
           value});
      declared.insert(it.key());
    }
  }
  const ojson additional =
      s.contains("additionalProperties") ? s["additionalProperties"] : ojson(false);
  for (const std::string& name : required) {
    if (declared.count(name)) continue;
    if (additional == false && s.contains("additionalProperties")) {
      return Unsatisfiable(
          ptr, "required property \"" + name + "\" is not allowed by additionalProperties false");
    }
    Symbol value = AnyValue();
    if (additional.is_object()) {
      GL_ASSIGN_OR_RETURN(value, Schema(additional, ptr + "/additionalProperties", addressable));
    }
    props.push_back(
        {name, Symbol::Lexeme(g_->AddLexeme(arena_->Literal(CanonicalJsonString(name)))), value});
    declared.insert(name);
  }
  std::optional<std::pair<Symbol, Symbol>> extra;  // (key lexeme, value) for additional keys
  if (additional != false) {
    std::vector<RegexId> names;
    for (const std::string& name : declared)
      names.push_back(arena_->Literal(CanonicalJsonString(name)));
    const RegexId quote = arena_->Byte('"');
    const RegexId parts[] = {quote, arena_->Star(canon_char_), quote};
    const RegexId key = arena_->And(arena_->Concat(parts), arena_->Not(arena_->Or(names)));
    Symbol value = AnyValue();
    if (additional.is_object()) {
      GL_ASSIGN_OR_RETURN(value, Schema(additional, ptr + "/additionalProperties", addressable));
    }
    extra = std::make_pair(Symbol::Lexeme(g_->AddLexeme(key)), value);
  }
  GL_ASSIGN_OR_RETURN(std::optional<double> min_p_d, CountField(s, "minProperties", ptr));
  GL_ASSIGN_OR_RETURN(std::optional<double> max_p_field, CountField(s, "maxProperties", ptr));
  const auto min_p = static_cast<int64_t>(min_p_d.value_or(0));
  const double max_p_d = max_p_field.value_or(1e18);
  const int64_t max_p = max_p_d > 1e17 ? INT64_MAX : static_cast<int64_t>(max_p_d);
  const int64_t cap = std::max<int64_t>({min_p, max_p == INT64_MAX ? 0 : max_p, 1});
  if (cap > 4096) return Refuse("maxProperties", ptr, "counts above 4096");
  // members(i, c) rules: bounded so a schema cannot ask for millions of them.
  if (static_cast<int64_t>(props.size() + 1) * (cap + 1) > 100000) {
    return Refuse(min_p > 0 ? "minProperties" : "maxProperties", ptr,
                  "counting over more than 100,000 (property, count) pairs");
  }
  // Members from property i on with c members written so far (c saturates at cap).
  std::map<std::pair<size_t, int64_t>, int32_t> rules;
  const size_t n = props.size();
  std::function<int32_t(size_t, int64_t)> members = [&](size_t i, int64_t c) -> int32_t {
    if (auto it = rules.find({i, c}); it != rules.end()) return it->second;
    const int32_t rule = g_->AddRule(ptr + "#members");
    rules[{i, c}] = rule;
    const int64_t next = std::min(c + 1, cap);
    auto member = [&](Symbol key, Symbol value, int32_t then) {
      std::vector<Symbol> rhs;
      if (c > 0) rhs.push_back(comma_);
      rhs.insert(rhs.end(), {key, colon_, value, Symbol::Rule(then)});
      g_->AddProduction(rule, rhs);
    };
    if (i < n) {
      if (c + 1 <= max_p) member(props[i].key, props[i].value, members(i + 1, next));
      if (required.count(props[i].name) == 0) {
        g_->AddProduction(rule, {Symbol::Rule(members(i + 1, c))});
      }
    } else if (extra && max_p == INT64_MAX && next == c) {
      // Any number of extra keys from here (c >= 1, so each after a comma): left-recursive.
      const int32_t more = g_->AddRule(ptr + "#more");
      g_->AddProduction(more, {comma_, extra->first, colon_, extra->second});
      g_->AddProduction(more, {Symbol::Rule(more), comma_, extra->first, colon_, extra->second});
      g_->AddProduction(rule, {Symbol::Rule(more)});
      if (c >= min_p) g_->AddProduction(rule, {});
    } else {
      if (extra && c + 1 <= max_p) member(extra->first, extra->second, members(n, next));
      if (c >= min_p) g_->AddProduction(rule, {});
    }
    return rule;
  };
  const int32_t object = g_->AddRule(ptr + "#object");
  g_->AddProduction(object, {lbrace_, Symbol::Rule(members(0, 0)), rbrace_});
  return Symbol::Rule(object);
}

Result<Symbol> Compiler::Array(const ojson& s, const std::string& ptr, bool addressable) {
  std::vector<Symbol> prefix;
  if (auto p = s.find("prefixItems"); p != s.end()) {
    for (size_t i = 0; i < p->size(); ++i) {
      if ((*p)[i] == false) break;  // no element can be here, so none after it either
      GL_ASSIGN_OR_RETURN(Symbol sym,
                          Schema((*p)[i], ptr + "/prefixItems/" + std::to_string(i), addressable));
      prefix.push_back(sym);
    }
  }
  GL_ASSIGN_OR_RETURN(std::optional<double> min_items_d, CountField(s, "minItems", ptr));
  GL_ASSIGN_OR_RETURN(std::optional<double> max_items_d, CountField(s, "maxItems", ptr));
  const auto min_items = static_cast<uint64_t>(min_items_d.value_or(0));
  double max_d = max_items_d.value_or(1e18);
  std::optional<Symbol> items;
  const ojson item_schema = s.contains("items") ? s["items"] : ojson(true);
  if (item_schema != false) {
    GL_ASSIGN_OR_RETURN(items,
                        Schema(item_schema, ptr + "/items", addressable && s.contains("items")));
  } else {
    max_d = std::min<double>(max_d, static_cast<double>(prefix.size()));
  }
  bool unbounded = max_d > kMaxCountedItems;
  if (unbounded && max_d < 1e17) {
    validated_after_->push_back(
        {"maxItems", ptr, "counts above 1024 are checked after generation"});
  }
  const uint64_t max_items = unbounded ? UINT64_MAX : static_cast<uint64_t>(max_d);
  if (min_items > kMaxCountedItems) return Refuse("minItems", ptr, "counts above 1024");
  if (min_items > max_items) return Unsatisfiable(ptr, "minItems exceeds maxItems");
  if (!items && min_items > prefix.size())
    return Unsatisfiable(ptr, "minItems exceeds the items allowed");
  // A(k): elements from index k on. Past the prefix and the minimum, an unbounded array loops.
  const uint64_t loop = std::max<uint64_t>({min_items, prefix.size(), 1});
  std::map<uint64_t, int32_t> rules;
  std::function<int32_t(uint64_t)> rest = [&](uint64_t k) -> int32_t {
    if (auto it = rules.find(k); it != rules.end()) return it->second;
    const int32_t rule = g_->AddRule(ptr + "#elements");
    rules[k] = rule;
    if (k >= min_items) g_->AddProduction(rule, {});
    const bool have_element = k < prefix.size() || items.has_value();
    if (!have_element || k >= max_items) return rule;
    const Symbol element = k < prefix.size() ? prefix[k] : *items;
    if (unbounded && k >= loop) {
      // More elements: left-recursive, so each one costs the parser O(1) (a right-recursive
      // loop makes every element complete the whole chain before it).
      const int32_t more = g_->AddRule(ptr + "#more");
      g_->AddProduction(more, {comma_, element});
      g_->AddProduction(more, {Symbol::Rule(more), comma_, element});
      g_->AddProduction(rule, {Symbol::Rule(more)});
      return rule;
    }
    std::vector<Symbol> rhs;
    if (k > 0) rhs.push_back(comma_);
    rhs.push_back(element);
    rhs.push_back(Symbol::Rule(rest(k + 1)));
    g_->AddProduction(rule, rhs);
    return rule;
  };
  const int32_t array = g_->AddRule(ptr + "#array");
  g_->AddProduction(array, {lbracket_, Symbol::Rule(rest(0)), rbracket_});
  return Symbol::Rule(array);
}

Result<Symbol> Compiler::String(const ojson& s, const std::string& ptr) {
  GL_ASSIGN_OR_RETURN(RegexId lexeme, StringRegex(s, ptr));
  return Symbol::Lexeme(g_->AddLexeme(lexeme));
}

Result<RegexId> Compiler::StringRegex(const ojson& s, const std::string& ptr) {
  GL_ASSIGN_OR_RETURN(std::optional<double> min_len_d, CountField(s, "minLength", ptr));
  GL_ASSIGN_OR_RETURN(std::optional<double> max_len_d, CountField(s, "maxLength", ptr));
  const auto min_len = static_cast<uint32_t>(std::min(min_len_d.value_or(0), 1e9));
  const double max_d = max_len_d.value_or(-1);
  const uint32_t max_len =
      max_d < 0 || max_d > 1e9 ? RegexArena::kUnbounded : static_cast<uint32_t>(max_d);
  if (min_len > 100000 || (max_len != RegexArena::kUnbounded && max_len > 100000)) {
    return Refuse(min_len > 100000 ? "minLength" : "maxLength", ptr, "lengths above 100000");
  }
  RegexId body = arena_->Repeat(canon_char_, min_len, max_len);
  std::vector<std::pair<std::string, std::string>> patterns;  // (pattern, keyword pointer)
  if (auto p = s.find("pattern"); p != s.end())
    patterns.emplace_back(p->get<std::string>(), ptr + "/pattern");
  if (auto p = s.find("x-gl-patterns"); p != s.end()) {
    for (const auto& x : *p) patterns.emplace_back(x.get<std::string>(), ptr + "/pattern");
  }
  for (const auto& [pattern, at] : patterns) {
    Result<RegexId> r = ParseEcmaRegex(*arena_, pattern, RegexMode::kSearch);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kUnsupported)
        return Refuse("pattern", ptr, r.status().message());
      return InvalidArgumentError("JSON Schema at \"" + at + "\": " + r.status().message());
    }
    body = arena_->And(body, JsonEncode(*r));
  }
  if (auto f = s.find("format"); f != s.end()) {
    const std::string format = f->get<std::string>();
    std::string pattern;
    if (format == "date") {
      pattern = DatePattern();
    } else if (format == "time") {
      pattern = TimePattern();
    } else if (format == "date-time") {
      pattern = DatePattern() + "T" + TimePattern();
    } else if (const char* p = FormatPattern(format)) {
      pattern = p;
    } else {
      return Refuse("format", ptr, "format \"" + format + "\"");
    }
    GL_ASSIGN_OR_RETURN(RegexId r, ParseEcmaRegex(*arena_, pattern, RegexMode::kFullMatch));
    body = arena_->And(body, JsonEncode(r));
  }
  const RegexId quote = arena_->Byte('"');
  const RegexId parts[] = {quote, body, quote};
  const RegexId lexeme = arena_->Concat(parts);
  Result<bool> empty = arena_->IsEmpty(lexeme);
  if (!empty.ok()) return Refuse("pattern", ptr, empty.status().message());
  if (*empty)
    return Unsatisfiable(ptr, "no string satisfies its length, pattern and format together");
  return lexeme;
}

Result<Symbol> Compiler::Number(const ojson& s, const std::string& ptr, bool integer) {
  std::optional<Bound> lower, upper;
  auto tighten = [&](const char* key, bool is_lower, bool inclusive) {
    std::optional<double> v = NumberField(s, key);
    if (!v) return;
    double x = *v;
    bool incl = inclusive;
    if (std::floor(x) != x) {
      if (integer) {  // exact: the nearest integer inside
        x = is_lower ? std::ceil(x) : std::floor(x);
        incl = true;
      } else {  // relaxed to the integer outside; the validator decides
        x = is_lower ? std::floor(x) : std::ceil(x);
        incl = true;
        validated_after_->push_back({key, ptr, "non-integer bounds are checked after generation"});
      }
    }
    x = std::clamp(x, -1e16, 1e16);
    Bound b{static_cast<int64_t>(x), incl};
    std::optional<Bound>& side = is_lower ? lower : upper;
    const bool tighter =
        !side || (is_lower ? (b.value > side->value || (b.value == side->value && !b.inclusive))
                           : (b.value < side->value || (b.value == side->value && !b.inclusive)));
    if (tighter) side = b;
  };
  tighten("minimum", true, true);
  tighten("exclusiveMinimum", true, false);
  tighten("maximum", false, true);
  tighten("exclusiveMaximum", false, false);
  int fraction = integer ? 0 : kMaxFractionDigits;
  if (std::optional<double> m = NumberField(s, "multipleOf")) {
    int digits = -1;
    for (int k = 0; k <= kMaxFractionDigits && digits < 0; ++k) {
      if (std::abs(*m - std::pow(10.0, -k)) < 1e-12 * std::pow(10.0, -k)) digits = k;
    }
    if (digits >= 0) {
      fraction = std::min(fraction, digits);
    } else {
      validated_after_->push_back({"multipleOf", ptr, "checked after generation"});
    }
  }
  const RegexId r = NumberRange(*arena_, lower, upper, fraction);
  GL_ASSIGN_OR_RETURN(bool empty, arena_->IsEmpty(r));
  if (empty) return Unsatisfiable(ptr, "no number within its bounds");
  return Symbol::Lexeme(g_->AddLexeme(r));
}

}  // namespace

static Result<CompiledSchema> CompileNormalized(const nlohmann::ordered_json& schema,
                                                const SchemaCompileOptions& options);

std::string CanonicalJsonString(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<CompiledSchema> CompileJsonSchema(const nlohmann::ordered_json& schema,
                                         const SchemaCompileOptions& options) {
  // A malformed schema ({"type": 5}, {"required": [1]}) can make a json accessor throw: an
  // error, never an exception out of the library.
  try {
    return CompileNormalized(schema, options);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("malformed JSON Schema: ") + e.what());
  }
}

static Result<CompiledSchema> CompileNormalized(const nlohmann::ordered_json& schema,
                                                const SchemaCompileOptions& options) {
  CompiledSchema out;
  schema_internal::NormalizeReport report;
  GL_ASSIGN_OR_RETURN(ojson normalized,
                      schema_internal::Normalize(schema, "", options.best_effort, &report));
  out.not_enforced = std::move(report.not_enforced);
  out.validated_after = std::move(report.validated_after);
  // The grammar first: its refusals name the keyword and pointer in the API's words.
  Compiler compiler(normalized, &out.validated_after);
  GL_ASSIGN_OR_RETURN(out.grammar, compiler.Run());
  ValidatorOptions vo;
  vo.assert_format = true;
  GL_ASSIGN_OR_RETURN(SchemaValidator validator,
                      SchemaValidator::Compile(nlohmann::json::parse(normalized.dump()), vo));
  out.validator = std::make_shared<const SchemaValidator>(std::move(validator));
  return out;
}

std::shared_ptr<const Grammar> AnyJsonGrammar() {
  const ojson root = true;
  std::vector<ConstraintIssue> unused;
  Compiler compiler(root, &unused);
  Result<std::shared_ptr<const Grammar>> g = compiler.Run();
  return g.ok() ? *g : nullptr;
}

}  // namespace gemma_local::constrain
