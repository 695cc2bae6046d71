// Python operators on Values: + - * / // % ** ~ (Jinja's concatenation) and the comparisons
// == != < <= > >= in, "notin". Errors carry no template location; the interpreter adds it.
// Size-producing operations (string/list repetition and concatenation) check the limits in
// `options` before allocating.
#pragma once

#include <string>

#include "gemma_local/status.h"
#include "text/jinja/template.h"
#include "text/jinja/value.h"

namespace gemma_local::jinja {

Result<Value> BinaryOp(const std::string& op, const Value& a, const Value& b,
                       const RenderOptions& options);
Result<bool> CompareOp(const std::string& op, const Value& a, const Value& b);

}  // namespace gemma_local::jinja
