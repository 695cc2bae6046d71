// JSON Schema `format` checks for the formats structured output promises (RFC 3339 date, time,
// date-time; RFC 4122 uuid; RFC 5321 email; RFC 3986 uri).
#pragma once

#include <string_view>

namespace gemma_local::constrain {

// True when the format is one of those above.
bool IsCheckedFormat(std::string_view format);
// Whether `value` is a valid instance of `format` (a checked format).
bool MatchesFormat(std::string_view format, std::string_view value);

}  // namespace gemma_local::constrain
