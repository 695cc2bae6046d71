// Byte-level regular expressions with intersection and complement, matched by Brzozowski
// derivatives: the lexemes of every constraint grammar (JSON strings, numbers, formats, `pattern`,
// the user's regex) live here.
//
// Why derivatives: the derivative of a regex by a byte is again a regex, and with hash-consing
// and normalised unions (sorted, deduplicated, flattened) a regex has finitely many distinct
// derivatives, so a DFA is built lazily, one state per derivative actually reached, with no
// subset construction up front. Intersection and complement come for free, which the JSON Schema
// compiler needs ("a string of 3 to 10 characters that also matches `pattern`", "a key that is
// none of the declared property names").
//
// Bytes, not characters: character classes are expanded to UTF-8 byte sequences over Unicode
// scalar values only (no surrogates, no overlongs), so a grammar built from them can emit only
// valid UTF-8, and a character split across byte-fallback tokens is just an intermediate state.
//
// An arena is single-threaded and only grows; ids are stable. RegexId 0 matches nothing, 1 the
// empty string.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::constrain {

using RegexId = int32_t;
using ByteSet = std::bitset<256>;

// A 128-bit structural hash (see RegexArena::BehaviorFingerprint).
struct RegexFingerprint {
  uint64_t lo = 0, hi = 0;
  friend bool operator==(const RegexFingerprint&, const RegexFingerprint&) = default;
  friend auto operator<=>(const RegexFingerprint&, const RegexFingerprint&) = default;
};
// One fingerprint for a sequence of them (order matters).
RegexFingerprint CombineFingerprints(std::span<const RegexFingerprint> parts);

class RegexArena {
 public:
  static constexpr RegexId kNothing = 0;
  static constexpr RegexId kEmpty = 1;
  static constexpr uint32_t kUnbounded = UINT32_MAX;

  RegexArena();
  RegexArena(const RegexArena&) = delete;
  RegexArena& operator=(const RegexArena&) = delete;

  // Constructors (normalising: equal languages built the same way get the same id).
  RegexId Bytes(const ByteSet& set);  // one byte of `set`
  RegexId Byte(uint8_t b);
  RegexId Literal(std::string_view bytes);
  RegexId Concat(RegexId a, RegexId b);
  RegexId Concat(std::span<const RegexId> parts);
  RegexId Or(RegexId a, RegexId b);
  RegexId Or(std::span<const RegexId> parts);
  RegexId And(RegexId a, RegexId b);
  RegexId And(std::span<const RegexId> parts);
  RegexId Not(RegexId a);                                 // every byte string not in a
  RegexId Repeat(RegexId a, uint32_t min, uint32_t max);  // a{min,max}; max may be kUnbounded
  RegexId Star(RegexId a) { return Repeat(a, 0, kUnbounded); }
  RegexId Optional(RegexId a) { return Repeat(a, 0, 1); }
  RegexId Everything() { return Not(kNothing); }  // every byte string

  // Unicode scalar values (surrogates are dropped) as UTF-8: one character from the ranges
  // (inclusive, any order, may overlap).
  RegexId CodePoints(std::span<const std::pair<uint32_t, uint32_t>> ranges);
  RegexId CodePointRange(uint32_t lo, uint32_t hi);
  RegexId AnyChar() { return CodePointRange(0, 0x10FFFF); }

  // `r` with every single-byte set S replaced by f(S) (memoised within the call). A homomorphism
  // on unions, concatenations and repetitions; the caller decides whether it is one for r's
  // intersections and complements.
  RegexId Substitute(RegexId r, const std::function<RegexId(const ByteSet&)>& f);

  bool Nullable(RegexId r) const { return nodes_[static_cast<size_t>(r)].nullable; }
  RegexId Derivative(RegexId r, uint8_t b);
  // Bytes that give the same derivative of `r` share a class: class_of[b] in [0, count), and
  // representative[c] is the smallest byte of class c. Cached per id.
  struct ByteClasses {
    std::array<uint8_t, 256> class_of{};
    std::vector<uint8_t> representative;
  };
  const ByteClasses& Classes(RegexId r);
  // Length in bytes of the shortest string in L(r); -1 when L(r) is empty. Exact: explores
  // derivatives breadth-first (memoised). kResourceExhausted past `state_budget` states.
  Result<int32_t> MinLength(RegexId r);
  Result<bool> IsEmpty(RegexId r);
  // Whether `bytes` is in L(r).
  bool Matches(RegexId r, std::string_view bytes);
  // The shortest string of L(r) (lexicographically smallest among the shortest); error if empty.
  Result<std::string> ShortestMatch(RegexId r);

  // How `r` behaves on byte strings of at most `horizon` bytes, as a structural hash that does
  // not depend on the arena: equal fingerprints (from any arenas, at the same horizon) mean that
  // for every such string w, whether w matches and whether some continuation of w matches are
  // the same. A counted repetition of a non-nullable regex (each pass reads a byte or more)
  // outside any intersection or complement is clamped first: a{m,M} with m > horizon reads as
  // a{horizon+1,}, and M > horizon as unbounded, since within the horizon the loop reaches
  // neither bound. So the states of length-bounded strings in different schemas (or far from
  // their bound) hash alike. `memo` caches per id for one horizon.
  // `key` (a secret of the cache that compares fingerprints) seeds the result.
  using FingerprintMemo = std::unordered_map<uint64_t, RegexFingerprint>;
  RegexFingerprint BehaviorFingerprint(RegexId r, uint32_t horizon, uint64_t key,
                                       FingerprintMemo* memo) const;

  size_t size() const { return nodes_.size(); }
  void set_state_budget(size_t budget) { state_budget_ = budget; }
  std::string DebugString(RegexId r) const;

 private:
  enum class Kind : uint8_t { kNothing, kEmpty, kBytes, kConcat, kOr, kAnd, kNot, kRepeat };
  struct Node {
    Kind kind;
    bool nullable = false;
    int32_t a = 0, b = 0;                   // concat: a·b; not/repeat: a; bytes: set index
    uint32_t min = 0, max = 0;              // repeat
    uint32_t list_begin = 0, list_end = 0;  // or/and: children in lists_
  };
  RegexId Intern(Node node, std::span<const RegexId> children);
  RegexId Combine(Kind kind, std::span<const RegexId> parts);
  const Node& node(RegexId r) const { return nodes_[static_cast<size_t>(r)]; }
  std::span<const RegexId> Children(const Node& n) const {
    return std::span<const RegexId>(lists_).subspan(n.list_begin, n.list_end - n.list_begin);
  }
  RegexId ComputeDerivative(RegexId r, uint8_t b);
  RegexFingerprint Fingerprint(RegexId r, uint32_t horizon, bool clamp, uint64_t key,
                               FingerprintMemo* memo) const;
  void Refine(RegexId r, std::array<uint8_t, 256>& classes, int& count);

  std::vector<Node> nodes_;
  std::vector<RegexId> lists_;
  std::vector<ByteSet> sets_;
  std::unordered_map<std::string, RegexId> interned_;
  std::unordered_map<uint64_t, RegexId> derivatives_;
  std::unordered_map<RegexId, ByteClasses> classes_;
  std::unordered_map<RegexId, int32_t> min_length_;
  size_t state_budget_ = 200000;
};

}  // namespace gemma_local::constrain
