// ECMA-262 regular expressions (the dialect of JSON Schema `pattern`, and of regex constraints)
// compiled into a RegexArena, over UTF-8 characters.
//
// Supported: literals, `.`, classes with ranges and negation, \d \D \w \W \s \S, the control
// and \xHH / \uHHHH (surrogate pairs joined) / \u{...} escapes, groups ((...), (?:...),
// (?<name>...)), alternation, greedy and lazy quantifiers (laziness does not change the language),
// and ^ / $ at the ends of top-level alternatives. Refused with kUnsupported and the offset,
// never approximated: backreferences, lookaround, \b and \B, \p{...}, anchors elsewhere.
#pragma once

#include <string_view>

#include "constrain/regex.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

enum class RegexMode {
  kFullMatch,  // the whole string matches (^ and $ at the ends are redundant)
  kSearch,     // JSON Schema `pattern`: a match anywhere unless anchored
};

// Errors name the offset: "pattern \"a(?=b)\": lookahead at offset 1 is not supported".
Result<RegexId> ParseEcmaRegex(RegexArena& arena, std::string_view pattern, RegexMode mode);

}  // namespace gemma_local::constrain
