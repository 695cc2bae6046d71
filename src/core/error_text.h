// Small formatting helpers for error messages, so every parser quotes names and prints ranges
// and dimensions the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gemma_local {

// 'name' for printable valid UTF-8 up to 200 bytes; otherwise an escaped, length-limited rendering
// ('\x01abc...') so hostile names cannot flood or corrupt a terminal.
std::string QuoteName(std::string_view name);
// "[begin, end)".
std::string ByteRange(uint64_t begin, uint64_t end);
// "[a, b, c]" for a list of dimensions in the order given.
std::string DimsText(const std::vector<int64_t>& dims);

}  // namespace gemma_local
