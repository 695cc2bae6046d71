// Runtime values of the Jinja engine, modelled on the Python objects Jinja2 sees when Hugging Face
// transformers renders a chat template: None, bool, int, float, str, list/tuple, dict (insertion
// ordered), callables (builtins, macros, bound methods), namespace() objects and Undefined.
//
// Contract: values are immutable once built (lists and dicts are shared through shared_ptr<const>,
// which is safe because the sandbox forbids mutating methods) except namespaces, whose attribute
// table is shared and mutable exactly like Python's Namespace. Printing follows Python: str(None)
// is "None", floats use repr's shortest round-trip form, containers print with repr (single
// quotes). Ints are 64-bit; arithmetic that would overflow is an error instead of a silent wrap
// (Python has big ints, so an error is the only faithful answer we can give).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::jinja {

class Value;
struct MacroNode;
class Scope;

using ValueList = std::vector<Value>;
using ValueDict = std::vector<std::pair<Value, Value>>;  // insertion ordered, unique keys

// What a callable value refers to; the interpreter dispatches on `kind`.
struct CallableData {
  enum class Kind { kBuiltin, kMacro, kMethod, kLoopCycle };
  Kind kind = Kind::kBuiltin;
  std::string name;                   // builtin/method name, or the macro's name
  const MacroNode* macro = nullptr;   // kMacro: points into the template's AST (outlives values)
  std::shared_ptr<Scope> closure;     // kMacro: the scope the macro was defined in
  std::shared_ptr<const Value> self;  // kMethod: the bound object; kMacro with caller: the caller
  int64_t loop_index0 = 0;            // kLoopCycle
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kCallable,
    kNamespace
  };

  Value() = default;  // Undefined
  static Value Undefined(std::string hint = {});
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value List(ValueList items, bool is_tuple = false);
  static Value Dict(ValueDict items);
  static Value Callable(CallableData data);
  static Value Namespace(ValueDict attrs);
  // JSON -> Value, keeping object key order. Depth is capped (deeper input is an error).
  static Result<Value> FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // Python's numbers.Number check: bool counts as int.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && is_tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return is_bool() ? (b_ ? 1 : 0) : i_; }  // int or bool
  double as_float() const { return is_float() ? d_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return *s_; }  // string, or undefined's hint
  const ValueList& as_list() const { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }  // dict
  ValueDict& namespace_attrs() const { return *ns_; }  // namespace (shared, mutable)
  const CallableData& as_callable() const { return *call_; }
  const std::string& undefined_hint() const { return *s_; }

  // Python truthiness (Undefined is false).
  bool Truthy() const;
  // Python str(): what {{ value }} prints. Undefined prints as "".
  std::string Str() const;
  // Python repr(). Nesting deeper than kMaxReprNesting prints "..." (only reachable through
  // self-referencing namespaces, which Python would also refuse to print in full).
  std::string Repr() const { return ReprNested(0); }
  // Container nesting height (0 for scalars); the interpreter caps it so that printing,
  // comparing and destroying values cannot recurse without bound.
  uint32_t depth() const { return depth_; }
  // Python type name for error messages ("dict", "str", "NoneType", ...).
  std::string TypeName() const;

  // Dict lookup by key (Python ==); nullptr when absent or not a dict/namespace.
  const Value* Find(const Value& key) const;
  const Value* Find(const std::string& key) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool is_tuple_ = false;
  uint32_t depth_ = 0;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const std::string> s_ = EmptyString();
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const ValueDict> dict_;
  std::shared_ptr<ValueDict> ns_;
  std::shared_ptr<const CallableData> call_;

  static const std::shared_ptr<const std::string>& EmptyString();
  std::string ReprNested(int nesting) const;
};

// Python ==. Never fails (mismatched types are unequal; 1 == 1.0 == True).
bool Equals(const Value& a, const Value& b);
// Python <, for numbers, strings, and lists/tuples of those; other pairs are an error.
Result<bool> Less(const Value& a, const Value& b);
// Python's float repr (shortest round-trip; "1.0", "1e-07", "inf", "nan").
std::string FormatFloat(double d);
// Python repr() of a str.
std::string ReprString(const std::string& s);

// json.dumps(value, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys) as
// transformers' tojson filter calls it. indent < 0 means None. Errors for values JSON cannot hold.
struct JsonDumpOptions {
  int indent = -1;
  std::string indent_str;  // used when non-empty (indent given as a string)
  bool sort_keys = false;
  std::string item_separator;  // default ", " (or "," with indent)
  std::string key_separator = ": ";
  bool has_separators = false;
  bool ensure_ascii = false;  // escape non-ASCII as \uXXXX (surrogate pairs above U+FFFF)
};
Result<std::string> DumpJson(const Value& value, const JsonDumpOptions& options);

}  // namespace gemma_local::jinja
