// GBNF, llama.cpp's grammar format, compiled into a constraint grammar, so its users' grammars
// work unchanged: `name ::= ...` rules over Unicode code points with "literals" (escapes \n \r
// \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH), [classes] (ranges, ^ negation), `.`, ( groups ),
// alternation `|`, and the postfix operators * + ? {m} {m,} {m,n} {,n}; `#` comments; newlines
// end a rule except inside parentheses or after `|`. Generation starts at `root`.
//
// Exact, never approximated: the compiled grammar accepts the GBNF language. A grammar whose
// `root` reaches no recursion is one regular expression (one lexeme: a lazy DFA, fast masks).
// A recursive one keeps its recursive rules as grammar rules and turns the regular runs they use
// into lexemes, split further wherever maximal-munch lexing could lose a string (a lexeme that
// can run on into a byte that may start what follows another lexeme ending there); at worst
// every character class is its own lexeme (slower masks, same language).
//
// Refused (kUnsupported, with the line): token references (<...>), which name a model's
// tokens rather than text. Errors (kInvalidArgument) name the line and column: syntax, an
// undefined rule, a rule defined twice, no `root`, a grammar that derives nothing or is too
// large.
#pragma once

#include <memory>
#include <string_view>

#include "constrain/grammar.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

struct GbnfOptions {
  // A recursive grammar with a lexeme per character class, whatever the analysis says (tests:
  // the reference the lexeme form must agree with).
  bool per_character = false;
};
Result<std::shared_ptr<const Grammar>> CompileGbnf(std::string_view text,
                                                   const GbnfOptions& options = {});

// A grammar whose language is exactly L(r): one lexeme for the non-empty strings, plus the empty
// alternative when r matches "". (Shared with the regex and choice constraints.)
Result<std::shared_ptr<const Grammar>> RegularGrammar(std::shared_ptr<RegexArena> arena, RegexId r);

}  // namespace gemma_local::constrain
