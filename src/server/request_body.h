// A request body parsed under the server's limits: JSON nesting depth and the length of any one
// string (keys included) are bounded while parsing, so a hostile body is refused before it is
// built in memory or walked recursively. Objects keep the client's key order (ordered_json):
// messages and tool schemas reach the chat template as sent.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "server/api_error.h"

namespace gemma_local::server {

struct BodyLimits {
  int max_json_depth = 64;
  int64_t max_string_bytes = int64_t{2} << 20;
};

// The parsed body, or false with `error` set: 400 invalid_json (with the parser's position),
// json_too_deep or string_too_long.
bool ParseBody(std::string_view text, const BodyLimits& limits, nlohmann::ordered_json* out,
               ApiError* error);

}  // namespace gemma_local::server
