// RFC 6901 JSON pointer tokens, for the places errors name in a schema or a value.
#pragma once

#include <string>

namespace gemma_local::constrain {

// `token` escaped for a JSON pointer: "~" as "~0", "/" as "~1".
inline std::string PointerToken(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace gemma_local::constrain
