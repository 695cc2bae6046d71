#include "core/error_text.h"

#include "core/utf8.h"

namespace gemma_local {

std::string QuoteName(std::string_view name) {
  bool plain = name.size() <= 200 && IsValidUtf8(name);
  for (char c : name) plain = plain && static_cast<unsigned char>(c) >= 0x20 && c != 0x7F;
  std::string out;
  out.reserve(name.size() + 2);
  out += '\'';
  out += plain ? std::string(name) : EscapeForMessage(name, 200);
  out += '\'';
  return out;
}

std::string ByteRange(uint64_t begin, uint64_t end) {
  std::string out;
  out += '[';
  out += std::to_string(begin);
  out += ", ";
  out += std::to_string(end);
  out += ')';
  return out;
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string out;
  out += '[';
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(dims[i]);
  }
  out += ']';
  return out;
}

}  // namespace gemma_local
