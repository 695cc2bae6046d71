// UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gemma_local {

// Appends code point `cp` (<= U+10FFFF) to `out` as UTF-8 (the caller excludes surrogates when
// they matter).
void AppendUtf8(uint32_t cp, std::string& out);

// True iff `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// Byte offset of the first invalid sequence, or text.size() when valid.
size_t FirstInvalidUtf8Offset(std::string_view text);

// What a UTF-8 lead byte promises: the sequence length (2..4) and the allowed range of the
// second byte (later bytes are 0x80..0xBF), excluding overlongs, surrogates and > U+10FFFF.
// len == 0 for bytes that cannot start a multi-byte sequence (ASCII, continuations, C0/C1, F5+).
struct Utf8Lead {
  size_t len = 0;
  unsigned char second_lo = 0x80;
  unsigned char second_hi = 0xBF;
};
Utf8Lead ClassifyUtf8Lead(unsigned char c);

// A printable, length-limited rendering of untrusted bytes for error messages: non-printable
// bytes become \xNN and the result is cut at `max_chars` with "...".
std::string EscapeForMessage(std::string_view bytes, size_t max_chars = 80);

}  // namespace gemma_local
