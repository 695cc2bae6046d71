// Python string operations on UTF-8 text, as Jinja2 filters and str methods need them.
//
// Case mapping is ASCII-only (non-ASCII letters keep their case); whitespace is Python's
// str.isspace() set. Results that could grow without bound take a size cap and fail beyond it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gemma_local/status.h"
#include "text/jinja/value.h"

namespace gemma_local::jinja {

std::string AsciiLower(const std::string& s);
std::string AsciiUpper(const std::string& s);
// str.capitalize(): first character upper, the rest lower.
std::string Capitalize(const std::string& s);
// Jinja's title filter: words start after runs of whitespace, '-', '(', '{', '[' or '<'.
std::string JinjaTitle(const std::string& s);
// Python str.title(): a letter is upper-cased when it follows a non-letter.
std::string PyTitle(const std::string& s);
// Jinja's wordcount (runs of word characters; non-ASCII counts as a word character).
int64_t WordCount(const std::string& s);
// Python str.splitlines() (no keepends).
std::vector<std::string> SplitLines(const std::string& s);
// Python str.strip(chars) / lstrip / rstrip with an explicit character set.
std::string StripChars(const std::string& s, const std::string& chars, bool left, bool right);
// Python str.replace(old, new, count); count < 0 means all.
Result<Value> ReplaceString(const std::string& s, const std::string& old_s,
                            const std::string& new_s, int64_t count, size_t max_bytes);
// Python str.split(sep, maxsplit); sep None (is_none) splits on whitespace runs.
Result<Value> PySplit(const std::string& s, const Value& sep, int64_t maxsplit);
// Python's `fmt % args` (printf-style): a tuple gives positional values, a dict gives %(key)s
// values, anything else is the one value. Conversions s r a d i x X o f F e E g G and %%.
Result<std::string> PercentFormat(const std::string& fmt, const Value& args, size_t max_bytes);
// Python str.center(width).
std::string Center(const std::string& s, int64_t width);
// Jinja's escape: & < > " ' as HTML entities.
std::string HtmlEscape(const std::string& s);

}  // namespace gemma_local::jinja
