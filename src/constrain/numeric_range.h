// Numeric bounds as regular languages over canonical JSON numbers, for the JSON Schema compiler:
// `minimum`/`maximum`/`exclusive*` become part of the number lexeme instead of a check after the
// fact.
//
// Numbers the grammar emits are canonical and bounded: an optional '-', an integer part without
// leading zeros of at most kMaxIntegerDigits digits, an optional fraction of 1 to
// kMaxFractionDigits digits, never an exponent. Every such number is finite as a double.
#pragma once

#include <cstdint>
#include <optional>

#include "constrain/regex.h"

namespace gemma_local::constrain {

inline constexpr int kMaxIntegerDigits = 15;
inline constexpr int kMaxFractionDigits = 15;
inline constexpr int64_t kMaxMagnitude = 999'999'999'999'999;  // 15 nines

// Canonical JSON integers n with lo <= n <= hi (both within +-kMaxMagnitude); kNothing if none.
RegexId IntegerRange(RegexArena& arena, int64_t lo, int64_t hi);

// One side of a bound: the value and whether it is included.
struct Bound {
  int64_t value = 0;
  bool inclusive = true;
};
// Canonical JSON numbers x (with at most `fraction_digits` fraction digits, 0 = integers only)
// with lower <= x <= upper, the bounds integers and either side optional (unbounded).
RegexId NumberRange(RegexArena& arena, std::optional<Bound> lower, std::optional<Bound> upper,
                    int fraction_digits);

}  // namespace gemma_local::constrain
