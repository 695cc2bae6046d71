// Python's binary and comparison operators on Values, as Jinja2 evaluates them.
#include "text/jinja/operators.h"

#include <algorithm>
#include <cmath>

#include "text/jinja/builtins.h"
#include "text/jinja/strings.h"

namespace gemma_local::jinja {

Result<Value> BinaryOp(const std::string& op, const Value& a, const Value& b,
                       const RenderOptions& options) {
  if (op == "~") {
    return Value::String(a.Str() + b.Str());
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  auto type_error = [&]() -> Status {
    return InvalidArgumentError("unsupported operand type(s) for " + op + ": '" + a.TypeName() +
                                "' and '" + b.TypeName() + "'");
  };
  if (a.is_number() && b.is_number()) {
    const bool fl = a.is_float() || b.is_float();
    if (op == "/") {
      if (b.as_float() == 0) return InvalidArgumentError("division by zero");
      return Value::Float(a.as_float() / b.as_float());
    }
    if (fl) {
      const double x = a.as_float(), y = b.as_float();
      if (op == "+") return Value::Float(x + y);
      if (op == "-") return Value::Float(x - y);
      if (op == "*") return Value::Float(x * y);
      if (op == "**") return Value::Float(std::pow(x, y));
      if (y == 0) return InvalidArgumentError("float division by zero");
      if (op == "//") return Value::Float(std::floor(x / y));
      if (op == "%") {
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::Float(m);
      }
      return type_error();
    }
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) return InvalidArgumentError("integer overflow");
      return Value::Int(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) return InvalidArgumentError("integer overflow");
      return Value::Int(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) return InvalidArgumentError("integer overflow");
      return Value::Int(r);
    }
    if (op == "**") {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t acc = 1;
      for (int64_t k = 0; k < y; ++k) {
        if (__builtin_mul_overflow(acc, x, &acc)) return InvalidArgumentError("integer overflow");
        if (acc == 0 || acc == 1) break;
      }
      if (acc == -1 || (x == -1)) acc = (y % 2 == 0) ? 1 : (x == -1 ? -1 : acc);
      return Value::Int(acc);
    }
    if (y == 0) return InvalidArgumentError("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) return InvalidArgumentError("integer overflow");
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {
      q -= 1;
      m += y;
    }
    if (op == "//") return Value::Int(q);
    if (op == "%") return Value::Int(m);
    return type_error();
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > options.max_output_bytes) {
        return InvalidArgumentError("string too large");
      }
      return Value::String(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      if (a.as_list().size() + b.as_list().size() > options.max_container_items) {
        return InvalidArgumentError("list too large");
      }
      ValueList items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value::List(std::move(items), a.is_tuple());
    }
    return type_error();
  }
  if (op == "*") {
    const Value* seq = (a.is_string() || a.is_list())   ? &a
                       : (b.is_string() || b.is_list()) ? &b
                                                        : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq == nullptr || !(count->is_int() || count->is_bool())) return type_error();
    const int64_t times = std::max<int64_t>(0, count->as_int());
    if (seq->is_string()) {
      if (times > 0 &&
          seq->as_string().size() > options.max_output_bytes / static_cast<uint64_t>(times)) {
        return InvalidArgumentError("string too large");
      }
      std::string s;
      for (int64_t k = 0; k < times; ++k) s += seq->as_string();
      return Value::String(std::move(s));
    }
    if (times > 0 &&
        seq->as_list().size() > options.max_container_items / static_cast<uint64_t>(times)) {
      return InvalidArgumentError("list too large");
    }
    ValueList items;
    for (int64_t k = 0; k < times; ++k)
      items.insert(items.end(), seq->as_list().begin(), seq->as_list().end());
    return Value::List(std::move(items), seq->is_tuple());
  }
  if (op == "%" && a.is_string()) {
    GL_ASSIGN_OR_RETURN(std::string r, PercentFormat(a.as_string(), b, options.max_output_bytes));
    return Value::String(std::move(r));
  }
  return type_error();
}

Result<bool> CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Equals(a, b);
  if (op == "!=") return !Equals(a, b);
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) {
        return InvalidArgumentError("'in <string>' requires string as left operand, not " +
                                    a.TypeName());
      }
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_dict()) {
      found = b.Find(a) != nullptr;
    } else if (b.is_list()) {
      for (const Value& x : b.as_list()) {
        if (Equals(x, a)) {
          found = true;
          break;
        }
      }
    } else if (b.is_undefined()) {
      found = false;
    } else {
      return InvalidArgumentError("argument of type '" + b.TypeName() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  Result<bool> r = op == "<" || op == ">=" ? Less(a, b) : Less(b, a);
  if (!r.ok()) {
    return InvalidArgumentError("'" + op + "' not supported between instances of '" + a.TypeName() +
                                "' and '" + b.TypeName() + "'");
  }
  if (op == "<" || op == ">") return *r;
  // <= is not (b < a); >= is not (a < b). NaN makes these differ from Python; acceptable.
  return !*r;
}

}  // namespace gemma_local::jinja
