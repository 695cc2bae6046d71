#include "constrain/numeric_range.h"

#include <algorithm>
#include <string>
#include <vector>

namespace gemma_local::constrain {
namespace {

RegexId DigitRange(RegexArena& arena, char lo, char hi) {
  ByteSet s;
  for (char c = lo; c <= hi; ++c) s.set(static_cast<uint8_t>(c));
  return arena.Bytes(s);
}

RegexId AnyDigits(RegexArena& arena, size_t n) {
  return arena.Repeat(DigitRange(arena, '0', '9'), static_cast<uint32_t>(n),
                      static_cast<uint32_t>(n));
}

// Digit strings of a's length between a and b (a <= b, equal lengths, leading zeros allowed).
RegexId SameLength(RegexArena& arena, const std::string& a, const std::string& b) {
  if (a.empty()) return RegexArena::kEmpty;
  if (a[0] == b[0]) {
    return arena.Concat(arena.Byte(static_cast<uint8_t>(a[0])),
                        SameLength(arena, a.substr(1), b.substr(1)));
  }
  const size_t n = a.size() - 1;
  const std::string a_tail = a.substr(1), b_tail = b.substr(1);
  std::vector<RegexId> alternatives;
  char lo = a[0], hi = b[0];
  if (a_tail.find_first_not_of('0') != std::string::npos) {
    alternatives.push_back(arena.Concat(arena.Byte(static_cast<uint8_t>(a[0])),
                                        SameLength(arena, a_tail, std::string(n, '9'))));
    ++lo;
  }
  if (b_tail.find_first_not_of('9') != std::string::npos) {
    alternatives.push_back(arena.Concat(arena.Byte(static_cast<uint8_t>(b[0])),
                                        SameLength(arena, std::string(n, '0'), b_tail)));
    --hi;
  }
  if (lo <= hi)
    alternatives.push_back(arena.Concat(DigitRange(arena, lo, hi), AnyDigits(arena, n)));
  return arena.Or(alternatives);
}

// Canonical digit strings (no leading zeros) of the integers in [lo, hi], 0 <= lo <= hi.
RegexId NonNegative(RegexArena& arena, uint64_t lo, uint64_t hi) {
  std::vector<RegexId> alternatives;
  uint64_t start = lo;
  while (start <= hi) {
    const std::string s = std::to_string(start);
    uint64_t top = 9;  // the largest number with s's length
    for (size_t i = 1; i < s.size(); ++i) top = top * 10 + 9;
    const uint64_t end = std::min(hi, top);
    alternatives.push_back(SameLength(arena, s, std::to_string(end)));
    if (end == hi) break;
    start = end + 1;
  }
  return arena.Or(alternatives);
}

}  // namespace

RegexId IntegerRange(RegexArena& arena, int64_t lo, int64_t hi) {
  lo = std::max(lo, -kMaxMagnitude);
  hi = std::min(hi, kMaxMagnitude);
  if (lo > hi) return RegexArena::kNothing;
  std::vector<RegexId> alternatives;
  if (hi >= 0) {
    alternatives.push_back(NonNegative(arena, static_cast<uint64_t>(std::max<int64_t>(lo, 0)),
                                       static_cast<uint64_t>(hi)));
  }
  if (lo < 0) {  // "-" and the magnitudes in [max(1, -hi), -lo]; "-0" is not canonical
    const auto from = static_cast<uint64_t>(std::max<int64_t>(1, -hi));
    const auto to = static_cast<uint64_t>(-lo);
    alternatives.push_back(arena.Concat(arena.Byte('-'), NonNegative(arena, from, to)));
  }
  return arena.Or(alternatives);
}

// Magnitudes m = I.F, c < m < d style checks reduce to the integer part I and whether the
// fraction is zero: for integer bounds, I in (c, d) takes any fraction, I == c needs a nonzero
// fraction when c is excluded, and I == d needs a zero fraction when d is included.
RegexId NumberRange(RegexArena& arena, std::optional<Bound> lower, std::optional<Bound> upper,
                    int fraction_digits) {
  if (fraction_digits <= 0) {
    int64_t lo = -kMaxMagnitude, hi = kMaxMagnitude;
    if (lower) lo = std::max(lo, lower->inclusive ? lower->value : lower->value + 1);
    if (upper) hi = std::min(hi, upper->inclusive ? upper->value : upper->value - 1);
    return IntegerRange(arena, lo, hi);
  }
  const auto k = static_cast<uint32_t>(fraction_digits);
  const RegexId dot = arena.Byte('.');
  const RegexId any_fraction =
      arena.Optional(arena.Concat(dot, arena.Repeat(DigitRange(arena, '0', '9'), 1, k)));
  const RegexId zero_fraction =
      arena.Optional(arena.Concat(dot, arena.Repeat(arena.Byte('0'), 1, k)));
  const RegexId nonzero_fraction = arena.And(any_fraction, arena.Not(zero_fraction));

  // Numbers >= 0 written without '-', with integer-part bounds; the caller mirrors for < 0.
  auto side = [&](std::optional<Bound> lo, std::optional<Bound> hi) -> RegexId {
    if (lo && hi && lo->value > hi->value) return RegexArena::kNothing;
    // Integer parts strictly inside take any fraction.
    const int64_t inner_lo = lo ? lo->value + 1 : 0;
    const int64_t inner_hi = hi ? hi->value - 1 : kMaxMagnitude;
    std::vector<RegexId> alternatives;
    if (inner_lo <= inner_hi) {
      alternatives.push_back(arena.Concat(IntegerRange(arena, inner_lo, inner_hi), any_fraction));
    }
    const bool same = lo && hi && lo->value == hi->value;
    if (lo && lo->value >= 0 && lo->value <= kMaxMagnitude) {
      const RegexId i = IntegerRange(arena, lo->value, lo->value);
      if (same) {
        if (lo->inclusive && hi->inclusive) alternatives.push_back(arena.Concat(i, zero_fraction));
      } else {
        alternatives.push_back(arena.Concat(i, lo->inclusive ? any_fraction : nonzero_fraction));
      }
    }
    if (hi && !same && hi->value >= 0 && hi->inclusive && hi->value <= kMaxMagnitude &&
        (!lo || hi->value > lo->value)) {
      alternatives.push_back(
          arena.Concat(IntegerRange(arena, hi->value, hi->value), zero_fraction));
    }
    return arena.Or(alternatives);
  };

  std::vector<RegexId> parts;
  // x >= 0 part: bounds max(lower, 0) .. upper.
  if (!upper || upper->value > 0 || (upper->value == 0 && upper->inclusive)) {
    std::optional<Bound> lo = lower;
    if (!lo || lo->value < 0) lo = Bound{0, true};
    parts.push_back(side(lo, upper));
  }
  // x < 0 part: "-" + magnitudes in (max(-upper, 0), -lower); -0.0 forms are left out.
  if (!lower || lower->value < 0) {
    std::optional<Bound> mag_lo, mag_hi;
    if (upper && upper->value < 0) {
      mag_lo = Bound{-upper->value, upper->inclusive};
    } else {
      mag_lo = Bound{0, false};
    }
    if (lower) mag_hi = Bound{-lower->value, lower->inclusive};
    parts.push_back(arena.Concat(arena.Byte('-'), side(mag_lo, mag_hi)));
  }
  return arena.Or(parts);
}

}  // namespace gemma_local::constrain
