// Jinja2 filters and tests (jinja2/filters.py, jinja2/tests.py semantics) plus shared helpers.
// Generators in Jinja2 (map, select, reverse, ...) are materialised as lists here; they print
// differently only when a template prints the generator object itself, which is never meaningful.
#include "text/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/jinja/lexer.h"
#include "text/jinja/strings.h"

namespace gemma_local::jinja {

Value Args::Get(size_t index, const std::string& name, Value fallback) const {
  if (index < pos.size()) return pos[index];
  for (const auto& [k, v] : kw) {
    if (k == name) return v;
  }
  return fallback;
}

bool Args::Has(size_t index, const std::string& name) const {
  if (index < pos.size()) return true;
  for (const auto& kv : kw) {
    if (kv.first == name) return true;
  }
  return false;
}

Status Args::Check(const std::string& fn, size_t max_pos,
                   std::initializer_list<const char*> names) const {
  if (pos.size() > max_pos) {
    return InvalidArgumentError(fn + "() takes at most " + std::to_string(max_pos) +
                                " positional argument(s), got " + std::to_string(pos.size()));
  }
  for (const auto& kv : kw) {
    bool ok = false;
    for (const char* n : names) ok = ok || kv.first == n;
    if (!ok)
      return InvalidArgumentError(fn + "() got an unexpected keyword argument '" + kv.first + "'");
  }
  return Status::Ok();
}

Status UndefinedError(const Value& v) {
  return InvalidArgumentError(v.undefined_hint().empty() ? "value is undefined"
                                                         : v.undefined_hint());
}

std::vector<std::string> CodePoints(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + len > s.size()) len = 1;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

Result<ValueList> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return ValueList{};
    case Value::Kind::kList:
      return v.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& kv : v.as_dict()) keys.push_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (auto& cp : CodePoints(v.as_string())) chars.push_back(Value::String(std::move(cp)));
      return chars;
    }
    default:
      return InvalidArgumentError("'" + v.TypeName() + "' object is not iterable");
  }
}

Result<int64_t> Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kList:
      return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.as_dict().size());
    case Value::Kind::kString: {
      // Code points = bytes that are not UTF-8 continuation bytes.
      const std::string& str = v.as_string();
      return static_cast<int64_t>(std::count_if(str.begin(), str.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
      }));
    }
    default:
      return InvalidArgumentError("object of type '" + v.TypeName() + "' has no len()");
  }
}

namespace {

// Jinja's environment.getitem-based attribute getter: "a.b.0" walks dicts and lists.
Value GetPath(const Value& obj, const Value& attribute) {
  if (!attribute.is_string()) {
    if (obj.is_list() && attribute.is_int()) {
      int64_t i = attribute.as_int();
      const int64_t n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.as_list()[static_cast<size_t>(i)];
    }
    if (const Value* v = obj.Find(attribute)) return *v;
    return Value::Undefined("no attribute " + attribute.Repr());
  }
  Value cur = obj;
  const std::string& path = attribute.as_string();
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    Value next =
        Value::Undefined("'" + cur.TypeName() + " object' has no attribute '" + part + "'");
    if (const Value* v = cur.Find(part)) {
      next = *v;
    } else if (cur.is_list() && !part.empty() &&
               std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
               part.size() < 10) {
      const size_t i = std::stoul(part);
      if (i < cur.as_list().size()) next = cur.as_list()[i];
    }
    cur = next;
    if (dot == std::string::npos || cur.is_undefined()) return cur;
    start = dot + 1;
  }
}

// Case folding used by sort/dictsort/unique/min/max when case_sensitive is false.
Value IgnoreCase(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is_string()) return v;
  return Value::String(AsciiLower(v.as_string()));
}

Status SortValues(std::vector<std::pair<Value, Value>>& keyed, bool reverse) {
  Status err;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    Result<bool> lt = reverse ? Less(b.first, a.first) : Less(a.first, b.first);
    if (!lt.ok()) {
      if (err.ok()) err = lt.status();
      return false;
    }
    return *lt;
  });
  return err;
}

Result<Value> SelectOrReject(const BuiltinContext& ctx, const Value& seq, const Args& args,
                             bool select, bool by_attr) {
  GL_ASSIGN_OR_RETURN(ValueList items, Iterate(seq));
  size_t next = 0;
  Value attr;
  if (by_attr) {
    if (args.pos.empty()) return InvalidArgumentError("Missing parameter for attribute name");
    attr = args.pos[next++];
  }
  std::string test;
  Args test_args;
  if (next < args.pos.size()) {
    if (!args.pos[next].is_string()) return InvalidArgumentError("test name must be a string");
    test = args.pos[next++].as_string();
    test_args.pos.assign(args.pos.begin() + static_cast<long>(next), args.pos.end());
    test_args.kw = args.kw;
  }
  ValueList out;
  for (const Value& item : items) {
    const Value subject = by_attr ? GetPath(item, attr) : item;
    bool ok;
    if (test.empty()) {
      ok = subject.Truthy();
    } else {
      GL_ASSIGN_OR_RETURN(ok, ApplyTest(ctx, test, subject, test_args));
    }
    if (ok == select) out.push_back(item);
  }
  return Value::List(std::move(out));
}

Result<Value> MinMax(const Value& seq, const Args& args, bool want_max) {
  GL_RETURN_IF_ERROR(args.Check(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"}));
  GL_ASSIGN_OR_RETURN(ValueList items, Iterate(seq));
  const bool cs = args.Get(0, "case_sensitive", Value::Bool(false)).Truthy();
  const Value attr = args.Get(1, "attribute", Value::None());
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = IgnoreCase(attr.is_none() ? items[0] : GetPath(items[0], attr), cs);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = IgnoreCase(attr.is_none() ? items[i] : GetPath(items[i], attr), cs);
    GL_ASSIGN_OR_RETURN(bool better, want_max ? Less(best_key, key) : Less(key, best_key));
    if (better) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Result<Value> ToInt(const Value& v, const Value& dflt, int base) {
  if (v.is_int() || v.is_bool()) return Value::Int(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_float()) || std::fabs(v.as_float()) >= 9.2e18) return dflt;
    return Value::Int(static_cast<int64_t>(v.as_float()));
  }
  if (v.is_string()) {
    std::string s = PyStrip(v.as_string());
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty()) {
      errno = 0;
      char* end = nullptr;
      const long long r = std::strtoll(s.c_str(), &end, base);
      if (errno == 0 && end == s.c_str() + s.size()) return Value::Int(r);
      errno = 0;
      const double d = std::strtod(s.c_str(), &end);
      if (errno == 0 && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) {
        return Value::Int(static_cast<int64_t>(d));
      }
    }
  }
  return dflt;
}

Result<Value> ToFloat(const Value& v, const Value& dflt) {
  if (v.is_number()) return Value::Float(v.as_float());
  if (v.is_string()) {
    const std::string s = PyStrip(v.as_string());
    if (!s.empty() && s.find_first_of("xXpP") == std::string::npos) {
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size()) return Value::Float(d);
    }
  }
  return dflt;
}

Result<Value> Round(const Value& v, const Args& args) {
  GL_RETURN_IF_ERROR(args.Check("round", 2, {"precision", "method"}));
  const Value prec = args.Get(0, "precision", Value::Int(0));
  const std::string method = args.Get(1, "method", Value::String("common")).Str();
  if (!v.is_number())
    return InvalidArgumentError("round: a number is required, not " + v.TypeName());
  const int64_t p = prec.as_int();
  if (p < -300 || p > 300) return InvalidArgumentError("round: precision out of range");
  const double x = v.as_float();
  if (method == "common") {
    if (!v.is_float()) return Value::Int(v.as_int());  // round(int, n) stays int for n >= 0
    if (!std::isfinite(x)) return Value::Float(x);
    if (p == 0) return Value::Float(std::nearbyint(x));
    if (p > 0) {
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(p), x);
      return Value::Float(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, static_cast<double>(-p));
    return Value::Float(std::nearbyint(x / scale) * scale);
  }
  const double scale = std::pow(10.0, static_cast<double>(p));
  if (method == "ceil") return Value::Float(std::ceil(x * scale) / scale);
  if (method == "floor") return Value::Float(std::floor(x * scale) / scale);
  return InvalidArgumentError("method must be common, ceil or floor");
}

Result<Value> ToJsonFilter(const Value& v, const Args& args) {
  GL_RETURN_IF_ERROR(
      args.Check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions o;
  o.ensure_ascii = args.Get(0, "ensure_ascii", Value::Bool(false)).Truthy();
  const Value indent = args.Get(1, "indent", Value::None());
  if (indent.is_string()) {
    o.indent_str = indent.as_string();
    o.indent = 0;
    if (o.indent_str.empty()) o.indent = 0;
  } else if (indent.is_int() || indent.is_bool()) {
    o.indent = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
  } else if (!indent.is_none()) {
    return InvalidArgumentError("tojson: indent must be an int or str");
  }
  const Value seps = args.Get(2, "separators", Value::None());
  if (!seps.is_none()) {
    if (!seps.is_list() || seps.as_list().size() != 2) {
      return InvalidArgumentError("tojson: separators must be a (item, key) pair");
    }
    o.has_separators = true;
    o.item_separator = seps.as_list()[0].Str();
    o.key_separator = seps.as_list()[1].Str();
  }
  o.sort_keys = args.Get(3, "sort_keys", Value::Bool(false)).Truthy();
  GL_ASSIGN_OR_RETURN(std::string s, DumpJson(v, o));
  return Value::String(std::move(s));
}

Result<Value> Indent(const Value& v, const Args& args, const RenderOptions& opts) {
  GL_RETURN_IF_ERROR(args.Check("indent", 3, {"width", "first", "blank"}));
  const Value width = args.Get(0, "width", Value::Int(4));
  std::string ind;
  if (width.is_string()) {
    ind = width.as_string();
  } else {
    const int64_t w = width.as_int();
    if (w > 1024) return InvalidArgumentError("indent: width too large");
    ind.assign(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
  }
  const bool first = args.Get(1, "first", Value::Bool(false)).Truthy();
  const bool blank = args.Get(2, "blank", Value::Bool(false)).Truthy();
  std::vector<std::string> lines = SplitLines(v.Str() + "\n");
  if (lines.size() * ind.size() + v.Str().size() > opts.max_output_bytes) {
    return InvalidArgumentError("indent: result too large");
  }
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + ind;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (first) rv = ind + rv;
  return Value::String(std::move(rv));
}

}  // namespace

Result<Value> ApplyFilter(const BuiltinContext& ctx, const std::string& name, const Value& v,
                          const Args& args) {
  const RenderOptions& opts = *ctx.options;
  if (name == "default" || name == "d") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"default_value", "boolean"}));
    const bool boolean = args.Get(1, "boolean", Value::Bool(false)).Truthy();
    if (v.is_undefined() || (boolean && !v.Truthy())) {
      return args.Get(0, "default_value", Value::String(""));
    }
    return v;
  }
  if (name == "safe" || name == "string") {
    GL_RETURN_IF_ERROR(args.Check(name, 0, {}));
    return name == "safe" ? v : Value::String(v.Str());
  }
  if (name == "trim") {
    GL_RETURN_IF_ERROR(args.Check(name, 1, {"chars"}));
    const Value chars = args.Get(0, "chars", Value::None());
    if (chars.is_none()) return Value::String(PyStrip(v.Str()));
    return Value::String(StripChars(v.Str(), chars.Str(), true, true));
  }
  if (name == "upper") return Value::String(AsciiUpper(v.Str()));
  if (name == "lower") return Value::String(AsciiLower(v.Str()));
  if (name == "capitalize") return Value::String(Capitalize(v.Str()));
  if (name == "title") return Value::String(JinjaTitle(v.Str()));
  if (name == "length" || name == "count") {
    GL_ASSIGN_OR_RETURN(int64_t n, Length(v));
    return Value::Int(n);
  }
  if (name == "wordcount") return Value::Int(WordCount(v.Str()));
  if (name == "list") {
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    return Value::List(std::move(items));
  }
  if (name == "first" || name == "last") {
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    if (items.empty())
      return Value::Undefined(std::string("No ") + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<std::string> cps = CodePoints(v.as_string());
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return Value::String(std::move(out));
    }
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "join") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"d", "attribute"}));
    const std::string sep = args.Get(0, "d", Value::String("")).Str();
    const Value attr = args.Get(1, "attribute", Value::None());
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += sep;
      out += (attr.is_none() ? items[i] : GetPath(items[i], attr)).Str();
      if (out.size() > opts.max_output_bytes) return InvalidArgumentError("join: result too large");
    }
    return Value::String(std::move(out));
  }
  if (name == "replace") {
    GL_RETURN_IF_ERROR(args.Check(name, 3, {"old", "new", "count"}));
    const Value count = args.Get(2, "count", Value::None());
    return ReplaceString(v.Str(), args.Get(0, "old").Str(), args.Get(1, "new").Str(),
                         count.is_none() ? -1 : count.as_int(), opts.max_output_bytes);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::List({});
    if (!v.is_dict()) return InvalidArgumentError("Can only get item pairs from a mapping.");
    ValueList out;
    for (const auto& [k, x] : v.as_dict()) out.push_back(Value::List({k, x}, true));
    return Value::List(std::move(out));
  }
  if (name == "dictsort") {
    GL_RETURN_IF_ERROR(args.Check(name, 3, {"case_sensitive", "by", "reverse"}));
    if (!v.is_dict())
      return InvalidArgumentError("dictsort: a mapping is required, got " + v.TypeName());
    const bool cs = args.Get(0, "case_sensitive", Value::Bool(false)).Truthy();
    const std::string by = args.Get(1, "by", Value::String("key")).Str();
    if (by != "key" && by != "value")
      return InvalidArgumentError("You can only sort by either \"key\" or \"value\"");
    std::vector<std::pair<Value, Value>> keyed;
    for (const auto& [k, x] : v.as_dict()) {
      keyed.emplace_back(IgnoreCase(by == "key" ? k : x, cs), Value::List({k, x}, true));
    }
    GL_RETURN_IF_ERROR(SortValues(keyed, args.Get(2, "reverse", Value::Bool(false)).Truthy()));
    ValueList out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::List(std::move(out));
  }
  if (name == "sort") {
    GL_RETURN_IF_ERROR(args.Check(name, 3, {"reverse", "case_sensitive", "attribute"}));
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    const bool cs = args.Get(1, "case_sensitive", Value::Bool(false)).Truthy();
    const Value attr = args.Get(2, "attribute", Value::None());
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value& x : items)
      keyed.emplace_back(IgnoreCase(attr.is_none() ? x : GetPath(x, attr), cs), x);
    GL_RETURN_IF_ERROR(SortValues(keyed, args.Get(0, "reverse", Value::Bool(false)).Truthy()));
    ValueList out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::List(std::move(out));
  }
  if (name == "unique") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"case_sensitive", "attribute"}));
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    const bool cs = args.Get(0, "case_sensitive", Value::Bool(false)).Truthy();
    const Value attr = args.Get(1, "attribute", Value::None());
    ValueList out, seen;
    for (const Value& x : items) {
      Value key = IgnoreCase(attr.is_none() ? x : GetPath(x, attr), cs);
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, key); })) {
        seen.push_back(key);
        out.push_back(x);
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "min" || name == "max") return MinMax(v, args, name == "max");
  if (name == "sum") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"attribute", "start"}));
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    const Value attr = args.Get(0, "attribute", Value::None());
    Value acc = args.Get(1, "start", Value::Int(0));
    for (const Value& x : items) {
      const Value y = attr.is_none() ? x : GetPath(x, attr);
      if (!acc.is_number() || !y.is_number()) {
        return InvalidArgumentError("unsupported operand type(s) for +: '" + acc.TypeName() +
                                    "' and '" + y.TypeName() + "'");
      }
      if (acc.is_float() || y.is_float()) {
        acc = Value::Float(acc.as_float() + y.as_float());
      } else {
        int64_t r;
        if (__builtin_add_overflow(acc.as_int(), y.as_int(), &r))
          return InvalidArgumentError("integer overflow");
        acc = Value::Int(r);
      }
    }
    return acc;
  }
  if (name == "abs") {
    if (v.is_float()) return Value::Float(std::fabs(v.as_float()));
    if (v.is_int() || v.is_bool()) {
      if (v.as_int() == INT64_MIN) return InvalidArgumentError("integer overflow");
      return Value::Int(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    return InvalidArgumentError("bad operand type for abs(): '" + v.TypeName() + "'");
  }
  if (name == "round") return Round(v, args);
  if (name == "int") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"default", "base"}));
    const int64_t base = args.Get(1, "base", Value::Int(10)).as_int();
    if (base < 2 || base > 36) return InvalidArgumentError("int: base must be 2..36");
    return ToInt(v, args.Get(0, "default", Value::Int(0)), static_cast<int>(base));
  }
  if (name == "float") {
    GL_RETURN_IF_ERROR(args.Check(name, 1, {"default"}));
    return ToFloat(v, args.Get(0, "default", Value::Float(0.0)));
  }
  if (name == "tojson") return ToJsonFilter(v, args);
  if (name == "indent") return Indent(v, args, opts);
  if (name == "escape" || name == "e") return Value::String(HtmlEscape(v.Str()));
  if (name == "format") {
    if (!args.pos.empty() && !args.kw.empty()) {
      return InvalidArgumentError("can't handle positional and keyword arguments at the same time");
    }
    ValueDict kw;
    for (const auto& [k, x] : args.kw) kw.emplace_back(Value::String(k), x);
    const Value fmt_args =
        args.kw.empty() ? Value::List(args.pos, /*is_tuple=*/true) : Value::Dict(kw);
    GL_ASSIGN_OR_RETURN(std::string s, PercentFormat(v.Str(), fmt_args, opts.max_output_bytes));
    return Value::String(std::move(s));
  }
  if (name == "center") {
    GL_RETURN_IF_ERROR(args.Check(name, 1, {"width"}));
    const int64_t width = args.Get(0, "width", Value::Int(80)).as_int();
    if (width > 1 << 20) return InvalidArgumentError("center: width too large");
    return Value::String(Center(v.Str(), width));
  }
  if (name == "batch") {
    GL_RETURN_IF_ERROR(args.Check(name, 2, {"linecount", "fill_with"}));
    const int64_t n = args.Get(0, "linecount", Value::Int(1)).as_int();
    if (n <= 0) return InvalidArgumentError("batch: linecount must be positive");
    const Value fill = args.Get(1, "fill_with", Value::None());
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    ValueList out, cur;
    for (const Value& x : items) {
      cur.push_back(x);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.push_back(Value::List(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (!fill.is_none()) {
        while (static_cast<int64_t>(cur.size()) < n) cur.push_back(fill);
      }
      out.push_back(Value::List(std::move(cur)));
    }
    return Value::List(std::move(out));
  }
  if (name == "map") {
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(v));
    ValueList out;
    if (args.pos.empty()) {
      GL_RETURN_IF_ERROR(args.Check(name, 0, {"attribute", "default"}));
      if (!args.Has(99, "attribute")) return InvalidArgumentError("map requires a filter argument");
      const Value attr = args.Get(99, "attribute");
      const Value dflt = args.Get(99, "default", Value());
      for (const Value& x : items) {
        Value y = GetPath(x, attr);
        if (y.is_undefined() && args.Has(99, "default")) y = dflt;
        out.push_back(std::move(y));
      }
      return Value::List(std::move(out));
    }
    if (!args.pos[0].is_string()) return InvalidArgumentError("map: filter name must be a string");
    Args rest;
    rest.pos.assign(args.pos.begin() + 1, args.pos.end());
    rest.kw = args.kw;
    for (const Value& x : items) {
      GL_ASSIGN_OR_RETURN(Value y, ApplyFilter(ctx, args.pos[0].as_string(), x, rest));
      out.push_back(std::move(y));
    }
    return Value::List(std::move(out));
  }
  if (name == "select" || name == "reject")
    return SelectOrReject(ctx, v, args, name == "select", false);
  if (name == "selectattr" || name == "rejectattr") {
    return SelectOrReject(ctx, v, args, name == "selectattr", true);
  }
  return InvalidArgumentError("No filter named '" + name + "'.");
}

Result<bool> ApplyTest(const BuiltinContext& ctx, const std::string& name, const Value& v,
                       const Args& args) {
  (void)ctx;
  auto arg = [&]() { return args.Get(0, "other", Value()); };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "sequence") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "iterable") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "callable") return v.is_callable();
  if (name == "odd" || name == "even") {
    if (!(v.is_int() || v.is_bool()))
      return InvalidArgumentError("test '" + name + "' requires an int");
    const bool odd = (v.as_int() % 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "divisibleby") {
    const Value n = args.Get(0, "num");
    if (!(v.is_int() || v.is_bool()) || !(n.is_int() || n.is_bool())) {
      return InvalidArgumentError("divisibleby requires integers");
    }
    if (n.as_int() == 0) return InvalidArgumentError("integer division or modulo by zero");
    if (n.as_int() == -1) return true;
    return v.as_int() % n.as_int() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equals(v, arg());
  if (name == "ne" || name == "!=") return !Equals(v, arg());
  if (name == "sameas") {
    const Value o = arg();
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.kind() == o.kind() && Equals(v, o);
    return false;
  }
  if (name == "lt" || name == "lessthan" || name == "<") return Less(v, arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return Less(arg(), v);
  if (name == "le" || name == "<=") {
    GL_ASSIGN_OR_RETURN(bool gt, Less(arg(), v));
    return !gt;
  }
  if (name == "ge" || name == ">=") {
    GL_ASSIGN_OR_RETURN(bool lt, Less(v, arg()));
    return !lt;
  }
  if (name == "in") {
    const Value seq = args.Get(0, "seq");
    if (seq.is_string()) {
      if (!v.is_string())
        return InvalidArgumentError("'in <string>' requires string as left operand");
      return seq.as_string().find(v.as_string()) != std::string::npos;
    }
    if (seq.is_dict()) return seq.Find(v) != nullptr;
    GL_ASSIGN_OR_RETURN(ValueList items, Iterate(seq));
    return std::any_of(items.begin(), items.end(), [&](const Value& x) { return Equals(x, v); });
  }
  if (name == "lower" || name == "upper") {
    const std::string s = v.Str();
    bool cased = false;
    for (unsigned char c : s) {
      if (std::isalpha(c)) {
        cased = true;
        if (name == "lower" ? std::isupper(c) : std::islower(c)) return false;
      }
    }
    return cased;
  }
  if (name == "escaped") return false;
  return InvalidArgumentError("No test named '" + name + "'.");
}

}  // namespace gemma_local::jinja
