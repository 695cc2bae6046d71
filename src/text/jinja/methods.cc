// Python methods reachable from templates (str, dict, list) and the template globals. Mutating
// methods exist but fail, as in Jinja2's ImmutableSandboxedEnvironment.
#include <algorithm>
#include <ctime>

#include "text/jinja/builtins.h"
#include "text/jinja/lexer.h"
#include "text/jinja/strings.h"

namespace gemma_local::jinja {

namespace {

constexpr const char* kStrMethods[] = {
    "strip",   "lstrip",  "rstrip",     "split",        "startswith",  "endswith",
    "replace", "upper",   "lower",      "title",        "capitalize",  "find",
    "count",   "join",    "isdigit",    "isalpha",      "isalnum",     "isspace",
    "isupper", "islower", "splitlines", "removeprefix", "removesuffix"};
constexpr const char* kDictMethods[] = {"get", "items", "keys", "values", "copy"};
constexpr const char* kDictUnsafe[] = {"pop", "popitem", "update", "setdefault", "clear"};
constexpr const char* kListMethods[] = {"index", "count", "copy"};
constexpr const char* kListUnsafe[] = {"append", "extend", "insert", "pop",
                                       "remove", "clear",  "sort",   "reverse"};

template <size_t N>
bool In(const char* const (&table)[N], const std::string& name) {
  return std::any_of(std::begin(table), std::end(table), [&](const char* m) { return name == m; });
}

bool AllChars(const std::string& s, int (*pred)(int)) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return static_cast<unsigned char>(c) < 0x80 && pred(static_cast<unsigned char>(c)) != 0;
  });
}

Result<bool> AffixTest(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) -> Result<bool> {
    if (!a.is_string())
      return InvalidArgumentError("startswith/endswith arg must be str or a tuple of str");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0
                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list()) {
      GL_ASSIGN_OR_RETURN(bool hit, one(a));
      if (hit) return true;
    }
    return false;
  }
  return one(affix);
}

Result<Value> StrMethod(const BuiltinContext& ctx, const std::string& s, const std::string& name,
                        const Args& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    GL_RETURN_IF_ERROR(a.Check(name, 1, {}));
    const Value chars = a.Get(0, "chars", Value::None());
    const bool left = name != "rstrip", right = name != "lstrip";
    if (chars.is_none()) return Value::String(PyStrip(s, left, right));
    if (!chars.is_string()) return InvalidArgumentError(name + " arg must be None or str");
    return Value::String(StripChars(s, chars.as_string(), left, right));
  }
  if (name == "split") {
    GL_RETURN_IF_ERROR(a.Check(name, 2, {"sep", "maxsplit"}));
    return PySplit(s, a.Get(0, "sep", Value::None()),
                   a.Get(1, "maxsplit", Value::Int(-1)).as_int());
  }
  if (name == "startswith" || name == "endswith") {
    GL_RETURN_IF_ERROR(a.Check(name, 1, {}));
    if (a.pos.empty()) return InvalidArgumentError(name + "() takes at least 1 argument");
    GL_ASSIGN_OR_RETURN(bool r, AffixTest(s, a.pos[0], name == "startswith"));
    return Value::Bool(r);
  }
  if (name == "replace") {
    GL_RETURN_IF_ERROR(a.Check(name, 3, {"count"}));
    if (a.pos.size() < 2 || !a.pos[0].is_string() || !a.pos[1].is_string()) {
      return InvalidArgumentError("replace() needs two str arguments");
    }
    return ReplaceString(s, a.pos[0].as_string(), a.pos[1].as_string(),
                         a.Get(2, "count", Value::Int(-1)).as_int(), ctx.options->max_output_bytes);
  }
  GL_RETURN_IF_ERROR(a.Check(name,
                             name == "find" || name == "count" || name == "join" ||
                                     name == "removeprefix" || name == "removesuffix"
                                 ? 1
                                 : 0,
                             {}));
  if (name == "upper") return Value::String(AsciiUpper(s));
  if (name == "lower") return Value::String(AsciiLower(s));
  if (name == "title") return Value::String(PyTitle(s));
  if (name == "capitalize") return Value::String(Capitalize(s));
  if (name == "isdigit") return Value::Bool(AllChars(s, isdigit));
  if (name == "isalpha") return Value::Bool(AllChars(s, isalpha));
  if (name == "isalnum") return Value::Bool(AllChars(s, isalnum));
  if (name == "isspace") return Value::Bool(!s.empty() && PyStrip(s).empty());
  if (name == "isupper" || name == "islower") {
    bool cased = false;
    for (unsigned char c : s) {
      if (!std::isalpha(c)) continue;
      cased = true;
      if (name == "isupper" ? std::islower(c) : std::isupper(c)) return Value::Bool(false);
    }
    return Value::Bool(cased);
  }
  if (name == "splitlines") {
    ValueList out;
    for (auto& l : SplitLines(s)) out.push_back(Value::String(std::move(l)));
    return Value::List(std::move(out));
  }
  const Value arg = a.Get(0, "", Value());
  if (!arg.is_string() && name != "join")
    return InvalidArgumentError(name + "() argument must be str");
  if (name == "find" || name == "count") {
    const std::string& x = arg.as_string();
    if (name == "find") {
      const size_t hit = s.find(x);
      if (hit == std::string::npos) return Value::Int(-1);
      return Value::Int(static_cast<int64_t>(CodePoints(s.substr(0, hit)).size()));
    }
    if (x.empty()) return Value::Int(static_cast<int64_t>(CodePoints(s).size()) + 1);
    int64_t n = 0;
    for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
    return Value::Int(n);
  }
  if (name == "removeprefix") {
    const std::string& x = arg.as_string();
    return Value::String(s.compare(0, x.size(), x) == 0 ? s.substr(x.size()) : s);
  }
  if (name == "removesuffix") {
    const std::string& x = arg.as_string();
    const bool has = x.size() <= s.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    return Value::String(has && !x.empty() ? s.substr(0, s.size() - x.size()) : s);
  }
  // join
  GL_ASSIGN_OR_RETURN(ValueList items, Iterate(arg));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      return InvalidArgumentError("sequence item " + std::to_string(i) +
                                  ": expected str instance, " + items[i].TypeName() + " found");
    }
    if (i > 0) out += s;
    out += items[i].as_string();
    if (out.size() > ctx.options->max_output_bytes)
      return InvalidArgumentError("join: result too large");
  }
  return Value::String(std::move(out));
}

}  // namespace

bool HasMethod(const Value& self, const std::string& name) {
  if (self.is_string()) return In(kStrMethods, name);
  if (self.is_dict()) return In(kDictMethods, name) || In(kDictUnsafe, name);
  if (self.is_list()) return In(kListMethods, name) || In(kListUnsafe, name);
  return false;
}

Result<Value> CallMethod(const BuiltinContext& ctx, const Value& self, const std::string& name,
                         const Args& a) {
  if ((self.is_dict() && In(kDictUnsafe, name)) || (self.is_list() && In(kListUnsafe, name))) {
    return InvalidArgumentError("access to attribute '" + name + "' of '" + self.TypeName() +
                                "' object is unsafe");
  }
  if (self.is_string()) return StrMethod(ctx, self.as_string(), name, a);
  if (self.is_dict()) {
    if (name == "get") {
      GL_RETURN_IF_ERROR(a.Check(name, 2, {}));
      if (a.pos.empty()) return InvalidArgumentError("get expected at least 1 argument, got 0");
      if (const Value* v = self.Find(a.pos[0])) return *v;
      return a.pos.size() > 1 ? a.pos[1] : Value::None();
    }
    GL_RETURN_IF_ERROR(a.Check(name, 0, {}));
    if (name == "copy") return self;
    ValueList out;
    for (const auto& [k, v] : self.as_dict()) {
      if (name == "items")
        out.push_back(Value::List({k, v}, true));
      else
        out.push_back(name == "keys" ? k : v);
    }
    return Value::List(std::move(out));
  }
  if (self.is_list()) {
    if (name == "copy") return Value::List(self.as_list());
    GL_RETURN_IF_ERROR(a.Check(name, 1, {}));
    if (a.pos.empty()) return InvalidArgumentError(name + "() takes exactly one argument");
    const ValueList& items = self.as_list();
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!Equals(items[i], a.pos[0])) continue;
      if (name == "index") return Value::Int(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") return InvalidArgumentError(a.pos[0].Repr() + " is not in list");
    return Value::Int(n);
  }
  return InvalidArgumentError("'" + self.TypeName() + "' object has no attribute '" + name + "'");
}

bool IsGlobalFunction(const std::string& name) {
  return name == "range" || name == "namespace" || name == "dict" || name == "raise_exception" ||
         name == "strftime_now";
}

Result<Value> CallGlobal(const BuiltinContext& ctx, const std::string& name, const Args& a) {
  if (name == "raise_exception") {
    return InvalidArgumentError(a.pos.empty() ? std::string("raise_exception() called")
                                              : a.pos[0].Str());
  }
  if (name == "range") {
    if (!a.kw.empty()) return InvalidArgumentError("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3)
      return InvalidArgumentError("range expected 1 to 3 arguments");
    for (const Value& v : a.pos) {
      if (!(v.is_int() || v.is_bool())) {
        return InvalidArgumentError("'" + v.TypeName() +
                                    "' object cannot be interpreted as an integer");
      }
    }
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = a.pos[0].as_int();
    } else {
      start = a.pos[0].as_int();
      stop = a.pos[1].as_int();
      if (a.pos.size() == 3) step = a.pos[2].as_int();
    }
    if (step == 0) return InvalidArgumentError("range() arg 3 must not be zero");
    // Jinja's sandbox refuses ranges longer than MAX_RANGE (100000).
    const long double count = step > 0
                                  ? (static_cast<long double>(stop) - start + step - 1) / step
                                  : (static_cast<long double>(start) - stop - step - 1) / -step;
    if (count > 100000) {
      return InvalidArgumentError(
          "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    ValueList out;
    // Generate by count (at most MAX_RANGE) so that start + k * step never overflows.
    const int64_t n =
        count > 0 ? static_cast<int64_t>(std::ceil(static_cast<double>(count) - 1e-9)) : 0;
    for (int64_t k = 0; k < n; ++k) {
      int64_t offset, i;
      if (__builtin_mul_overflow(k, step, &offset) || __builtin_add_overflow(start, offset, &i)) {
        break;
      }
      if (step > 0 ? i >= stop : i <= stop) break;
      out.push_back(Value::Int(i));
    }
    return Value::List(std::move(out));
  }
  if (name == "namespace" || name == "dict") {
    ValueDict attrs;
    if (a.pos.size() > 1)
      return InvalidArgumentError(name + "() takes at most 1 positional argument");
    auto put = [&](const Value& k, const Value& v) {
      for (auto& kv : attrs) {
        if (Equals(kv.first, k)) {
          kv.second = v;
          return;
        }
      }
      attrs.emplace_back(k, v);
    };
    if (!a.pos.empty()) {
      if (!a.pos[0].is_dict()) return InvalidArgumentError(name + "() argument must be a mapping");
      for (const auto& [k, v] : a.pos[0].as_dict()) put(k, v);
    }
    for (const auto& [k, v] : a.kw) put(Value::String(k), v);
    return name == "dict" ? Value::Dict(std::move(attrs)) : Value::Namespace(std::move(attrs));
  }
  if (name == "strftime_now") {
    if (a.pos.size() != 1 || !a.pos[0].is_string()) {
      return InvalidArgumentError("strftime_now() takes one str argument");
    }
    const std::time_t now = ctx.options->now.value_or(std::time(nullptr));
    std::tm tm{};
    localtime_r(&now, &tm);
    const std::string& fmt = a.pos[0].as_string();
    if (fmt.size() > 1024) return InvalidArgumentError("strftime_now: format too long");
    std::string buf(fmt.size() * 16 + 64, '\0');
    const size_t n = fmt.empty() ? 0 : std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    buf.resize(n);
    return Value::String(std::move(buf));
  }
  return InvalidArgumentError("'" + name + "' is not callable");
}

}  // namespace gemma_local::jinja
