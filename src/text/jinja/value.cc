#include "text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace gemma_local::jinja {

namespace {
constexpr int kMaxJsonDepth = 200;

Result<Value> FromJsonImpl(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxJsonDepth) return InvalidArgumentError("JSON input nested too deeply");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& e : j) {
        GL_ASSIGN_OR_RETURN(Value v, FromJsonImpl(e, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        GL_ASSIGN_OR_RETURN(Value v, FromJsonImpl(it.value(), depth + 1));
        items.emplace_back(Value::String(it.key()), std::move(v));
      }
      return Value::Dict(std::move(items));
    }
    default:
      return InvalidArgumentError("unsupported JSON value (binary or discarded)");
  }
}

void AppendHex(std::string& out, const char* prefix, unsigned v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%s%0*x", prefix, digits, v);
  out += buf;
}

// Decodes one UTF-8 code point at s[i] (input is assumed valid; invalid bytes decode as
// themselves) and advances i.
uint32_t DecodeUtf8(const std::string& s, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + len > s.size()) len = 1;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  i += len;
  return cp;
}

// Characters Python's str.isprintable() rejects that plausibly occur in chat data (controls,
// separators, a few format characters); repr escapes them.
bool ReprEscapes(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
         (cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff ||
         (cp >= 0xd800 && cp <= 0xdfff);
}

void DumpJsonString(const std::string& s, std::string& out, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const unsigned char c = static_cast<unsigned char>(ch);
    if (ensure_ascii && c >= 0x80) {
      uint32_t cp = DecodeUtf8(s, i);
      --i;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        AppendHex(out, "\\u", 0xd800 + (cp >> 10), 4);
        AppendHex(out, "\\u", 0xdc00 + (cp & 0x3ff), 4);
      } else {
        AppendHex(out, "\\u", cp, 4);
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          AppendHex(out, "\\u", c, 4);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

Status DumpJsonImpl(const Value& v, const JsonDumpOptions& o, int level, std::string& out) {
  if (level > kMaxJsonDepth) return InvalidArgumentError("tojson: value nested too deeply");
  const bool pretty = o.indent >= 0 || !o.indent_str.empty();
  const std::string item_sep =
      o.has_separators ? o.item_separator : (pretty ? std::string(",") : std::string(", "));
  const std::string& key_sep = o.key_separator;
  auto newline = [&](int lvl) {
    out += '\n';
    for (int k = 0; k < lvl; ++k) {
      if (!o.indent_str.empty()) {
        out += o.indent_str;
      } else {
        out.append(static_cast<size_t>(o.indent), ' ');
      }
    }
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return Status::Ok();
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return Status::Ok();
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return Status::Ok();
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      if (std::isnan(d))
        out += "NaN";
      else if (std::isinf(d))
        out += d > 0 ? "Infinity" : "-Infinity";
      else
        out += FormatFloat(d);
      return Status::Ok();
    }
    case Value::Kind::kString:
      DumpJsonString(v.as_string(), out, o.ensure_ascii);
      return Status::Ok();
    case Value::Kind::kList: {
      const ValueList& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return Status::Ok();
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += item_sep;
        if (pretty) newline(level + 1);
        GL_RETURN_IF_ERROR(DumpJsonImpl(items[i], o, level + 1, out));
      }
      if (pretty) newline(level);
      out += ']';
      return Status::Ok();
    }
    case Value::Kind::kDict: {
      const ValueDict& items = v.as_dict();
      if (items.empty()) {
        out += "{}";
        return Status::Ok();
      }
      std::vector<const std::pair<Value, Value>*> order;
      for (const auto& kv : items) {
        const Value& k = kv.first;
        if (!(k.is_string() || k.is_number() || k.is_none())) {
          return InvalidArgumentError("tojson: keys must be str, int, float, bool or None, not " +
                                      k.TypeName());
        }
        order.push_back(&kv);
      }
      if (o.sort_keys) {
        Status err;
        std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
          Result<bool> lt = Less(a->first, b->first);
          if (!lt.ok()) {
            err = lt.status();
            return false;
          }
          return *lt;
        });
        if (!err.ok()) return err.WithContext("tojson sort_keys");
      }
      out += '{';
      bool first = true;
      for (const auto* kv : order) {
        if (!first) out += item_sep;
        first = false;
        if (pretty) newline(level + 1);
        const Value& k = kv->first;
        if (k.is_string())
          DumpJsonString(k.as_string(), out, o.ensure_ascii);
        else if (k.is_none())
          out += "\"null\"";
        else if (k.is_bool())
          out += k.as_bool() ? "\"true\"" : "\"false\"";
        else
          out += "\"" + k.Str() + "\"";
        out += key_sep;
        GL_RETURN_IF_ERROR(DumpJsonImpl(kv->second, o, level + 1, out));
      }
      if (pretty) newline(level);
      out += '}';
      return Status::Ok();
    }
    default:
      return InvalidArgumentError("tojson: Object of type " + v.TypeName() +
                                  " is not JSON serializable");
  }
}
}  // namespace

const std::shared_ptr<const std::string>& Value::EmptyString() {
  static const auto* empty =
      new std::shared_ptr<const std::string>(std::make_shared<const std::string>());
  return *empty;
}

Value Value::Undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}
Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.d_ = d;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::List(ValueList items, bool is_tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.is_tuple_ = is_tuple;
  for (const Value& x : items) v.depth_ = std::max(v.depth_, x.depth_);
  ++v.depth_;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}
Value Value::Dict(ValueDict items) {
  Value v;
  v.kind_ = Kind::kDict;
  for (const auto& kv : items) v.depth_ = std::max({v.depth_, kv.first.depth_, kv.second.depth_});
  ++v.depth_;
  v.dict_ = std::make_shared<const ValueDict>(std::move(items));
  return v;
}
Value Value::Callable(CallableData data) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.call_ = std::make_shared<const CallableData>(std::move(data));
  return v;
}
Value Value::Namespace(ValueDict attrs) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.ns_ = std::make_shared<ValueDict>(std::move(attrs));
  return v;
}
Result<Value> Value::FromJson(const nlohmann::ordered_json& json) { return FromJsonImpl(json, 0); }

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return d_ != 0.0;
    case Kind::kString:
      return !s_->empty();
    case Kind::kList:
      return !list_->empty();
    case Kind::kDict:
      return !dict_->empty();
    default:
      return true;
  }
}

std::string Value::Str() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return *s_;
    default:
      return Repr();
  }
}

std::string Value::ReprNested(int nesting) const {
  constexpr int kMaxReprNesting = 500;
  if (nesting > kMaxReprNesting) return "...";
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return b_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(i_);
    case Kind::kFloat:
      return FormatFloat(d_);
    case Kind::kString:
      return ReprString(*s_);
    case Kind::kList: {
      std::string out = is_tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i > 0) out += ", ";
        out += (*list_)[i].ReprNested(nesting + 1);
      }
      if (is_tuple_ && list_->size() == 1) out += ",";
      out += is_tuple_ ? ")" : "]";
      return out;
    }
    case Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : *dict_) {
        if (!first) out += ", ";
        first = false;
        out += k.ReprNested(nesting + 1) + ": " + v.ReprNested(nesting + 1);
      }
      return out + "}";
    }
    case Kind::kNamespace: {
      std::string out = "<Namespace {";
      bool first = true;
      for (const auto& [k, v] : *ns_) {
        if (!first) out += ", ";
        first = false;
        out += k.ReprNested(nesting + 1) + ": " + v.ReprNested(nesting + 1);
      }
      return out + "}>";
    }
    case Kind::kCallable:
      return "<function " + call_->name + ">";
  }
  return "";
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return is_tuple_ ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

const Value* Value::Find(const Value& key) const {
  const ValueDict* d = is_dict() ? dict_.get() : is_namespace() ? ns_.get() : nullptr;
  if (d == nullptr) return nullptr;
  for (const auto& kv : *d) {
    if (Equals(kv.first, key)) return &kv.second;
  }
  return nullptr;
}

const Value* Value::Find(const std::string& key) const {
  const ValueDict* d = is_dict() ? dict_.get() : is_namespace() ? ns_.get() : nullptr;
  if (d == nullptr) return nullptr;
  for (const auto& kv : *d) {
    if (kv.first.is_string() && kv.first.as_string() == key) return &kv.second;
  }
  return nullptr;
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.as_dict();
      const auto& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = b.Find(k);
        if (other == nullptr || !Equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace:
      return &a.namespace_attrs() == &b.namespace_attrs();
    default:
      return false;
  }
}

Result<bool> Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i])) continue;
      return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return InvalidArgumentError("'<' not supported between instances of '" + a.TypeName() +
                              "' and '" + b.TypeName() + "'");
}

std::string FormatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-d.dddde+XX"
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e_pos + 1));
  // Python repr switches to exponent notation when the decimal exponent is < -4 or >= 16.
  if (exp < -4 || exp >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out + eb;
  }
  std::string out;
  if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
          digits.substr(static_cast<size_t>(exp) + 1);
  }
  return sign + out;
}

std::string ReprString(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const uint32_t cp = DecodeUtf8(s, i);
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (ReprEscapes(cp)) {
      if (cp < 0x100)
        AppendHex(out, "\\x", cp, 2);
      else
        AppendHex(out, "\\u", cp, 4);
    } else {
      out.append(s, start, i - start);
    }
  }
  out += quote;
  return out;
}

Result<std::string> DumpJson(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  GL_RETURN_IF_ERROR(DumpJsonImpl(value, options, 0, out));
  return out;
}

}  // namespace gemma_local::jinja
