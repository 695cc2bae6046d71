// Jinja2 parser: tokens -> AST, with Jinja2's operator precedence (lowest first): conditional
// expression, or, and, not, comparisons (chained, in, not in), + -, ~, * / // %, **, unary - +,
// then postfix (attribute, subscript, slice, call) and filters/tests.
//
// Contract: returns an error (never throws or aborts) naming line and column for any malformed
// input; nesting depth is capped so hostile input cannot exhaust the stack.
#pragma once

#include <string_view>

#include "gemma_local/status.h"
#include "text/jinja/ast.h"

namespace gemma_local::jinja {

Result<Body> ParseTemplate(std::string_view source);

}  // namespace gemma_local::jinja
