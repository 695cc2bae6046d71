// Jinja2 lexer with the settings transformers uses for chat templates: trim_blocks and
// lstrip_blocks on, keep_trailing_newline off, default delimiters.
//
// Contract: reproduces Jinja2's whitespace handling exactly: newlines are normalised to "\n" and
// one trailing newline is dropped; "-" markers strip all whitespace on that side; "+" markers
// disable lstrip/trim; trim_blocks removes the first newline after a block or comment tag;
// lstrip_blocks removes spaces/tabs between a line start and a block or comment tag. Raw blocks
// become data. String literals are decoded the way Jinja2 decodes them (Python unicode-escape).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::jinja {

struct Token {
  enum class Type {
    kData,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  };
  Type type = Type::kEof;
  std::string text;  // data text, name, decoded string, operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Tokenizes a whole template. Errors name line and column.
Result<std::vector<Token>> Tokenize(std::string_view source);

// Python str.isspace() for one code point (what str.strip() removes).
bool IsPythonSpace(uint32_t cp);
// Python str.strip()/lstrip()/rstrip() with no argument, on UTF-8 text.
std::string PyStrip(std::string_view s, bool left = true, bool right = true);

}  // namespace gemma_local::jinja
