// Jinja2's filters, tests, globals and the Python str/dict/list methods real chat templates call,
// as pure functions over Values. Internal to the engine (the interpreter dispatches here).
//
// Contract: every function returns a value or an error whose message says what was wrong (the
// interpreter adds the template location). Size-producing operations check RenderOptions limits
// before allocating.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gemma_local/status.h"
#include "text/jinja/template.h"
#include "text/jinja/value.h"

namespace gemma_local::jinja {

// Call arguments after evaluation, with Python-style binding helpers.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  // Positional `index` or keyword `name`, else `fallback`.
  Value Get(size_t index, const std::string& name, Value fallback = Value()) const;
  bool Has(size_t index, const std::string& name) const;
  // Error when more than `max_pos` positionals or a keyword not in `names` was given.
  Status Check(const std::string& fn, size_t max_pos,
               std::initializer_list<const char*> names) const;
};

struct BuiltinContext {
  const RenderOptions* options = nullptr;
};

Result<Value> ApplyFilter(const BuiltinContext& ctx, const std::string& name, const Value& operand,
                          const Args& args);
Result<bool> ApplyTest(const BuiltinContext& ctx, const std::string& name, const Value& operand,
                       const Args& args);
// True when `name` is a global function (range, namespace, dict, raise_exception, strftime_now).
bool IsGlobalFunction(const std::string& name);
Result<Value> CallGlobal(const BuiltinContext& ctx, const std::string& name, const Args& args);
// Methods: self.name(args) for str, dict, list. HasMethod says whether `self.name` is a method.
bool HasMethod(const Value& self, const std::string& name);
Result<Value> CallMethod(const BuiltinContext& ctx, const Value& self, const std::string& name,
                         const Args& args);

// Shared helpers.
// Python iter(): list/tuple items, dict keys, str code points; Undefined iterates as empty.
Result<ValueList> Iterate(const Value& v);
// Python len().
Result<int64_t> Length(const Value& v);
// Error for using an Undefined in an operation that needs a value.
Status UndefinedError(const Value& v);
// Splits UTF-8 text into code points (as strings).
std::vector<std::string> CodePoints(const std::string& s);

}  // namespace gemma_local::jinja
