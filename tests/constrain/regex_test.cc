// The derivative regex engine and its ECMA-262 front end: agreement with std::regex on random
// ASCII patterns (full match and search), exact UTF-8 classes, intersection and complement,
// emptiness and shortest matches, and refusal (with the offset) of what it does not support.
#include "constrain/regex.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>

#include "constrain/regex_parse.h"

namespace gemma_local::constrain {
namespace {

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s += {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
  } else if (cp < 0x10000) {
    s += {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
          static_cast<char>(0x80 | (cp & 0x3F))};
  } else {
    s += {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
          static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
  }
  return s;
}

// Quantifiers are never nested: std::regex backtracks exponentially on (x*)* shapes.
std::string RandomPattern(std::mt19937& rng, int depth, bool quantifiable = true) {
  const int pick = static_cast<int>(rng() % (depth > 3 ? 4 : quantifiable ? 10 : 6));
  switch (pick) {
    case 0:
      return std::string(1, "abc"[rng() % 3]);
    case 1:
      return "[ab]";
    case 2:
      return "[^a]";
    case 3:
      return ".";
    case 4:
      return RandomPattern(rng, depth + 1, quantifiable) +
             RandomPattern(rng, depth + 1, quantifiable);
    case 5:
      return "(" + RandomPattern(rng, depth + 1, quantifiable) + "|" +
             RandomPattern(rng, depth + 1, quantifiable) + ")";
    case 6:
      return "(?:" + RandomPattern(rng, depth + 1, false) + ")*";
    case 7:
      return "(" + RandomPattern(rng, depth + 1, false) + ")+";
    case 8:
      return "(" + RandomPattern(rng, depth + 1, false) + ")?";
    default: {
      const int lo = static_cast<int>(rng() % 3), hi = lo + static_cast<int>(rng() % 3);
      return "(" + RandomPattern(rng, depth + 1, false) + "){" + std::to_string(lo) + "," +
             std::to_string(hi) + "}";
    }
  }
}

TEST(Regex, AgreesWithStdRegexOnRandomAsciiPatterns) {
  std::mt19937 rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string pattern = RandomPattern(rng, 0);
    if (rng() % 4 == 0) pattern = "^" + pattern;
    if (rng() % 4 == 0) pattern += "$";
    RegexArena arena;
    auto full = ParseEcmaRegex(arena, pattern, RegexMode::kFullMatch);
    auto search = ParseEcmaRegex(arena, pattern, RegexMode::kSearch);
    ASSERT_TRUE(full.ok() && search.ok()) << pattern << ": " << full.status().ToString();
    const std::regex reference(pattern, std::regex::ECMAScript);
    for (int k = 0; k < 40; ++k) {
      std::string s;
      const int len = static_cast<int>(rng() % 7);
      for (int j = 0; j < len; ++j) s.push_back("abcd"[rng() % 4]);
      EXPECT_EQ(arena.Matches(*search, s), std::regex_search(s, reference))
          << "search /" << pattern << "/ on \"" << s << "\"";
      const std::string stripped =
          pattern.substr(pattern[0] == '^', pattern.size() - (pattern[0] == '^') -
                                                (pattern.back() == '$' && pattern.size() > 1));
      EXPECT_EQ(arena.Matches(*full, s), std::regex_match(s, std::regex(stripped)))
          << "match /" << pattern << "/ on \"" << s << "\"";
    }
  }
}

TEST(Regex, Utf8ClassesAreExactOverScalarValues) {
  RegexArena arena;
  const RegexId any = arena.AnyChar();
  std::mt19937 rng(1);
  for (int i = 0; i < 20000; ++i) {
    const uint32_t cp = rng() % 0x110000;
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    ASSERT_TRUE(arena.Matches(any, Utf8(cp))) << cp;
  }
  for (uint32_t cp : {0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    EXPECT_TRUE(arena.Matches(any, Utf8(cp))) << cp;
  }
  EXPECT_FALSE(arena.Matches(any, "\xED\xA0\x80")) << "an encoded surrogate";
  EXPECT_FALSE(arena.Matches(any, "\xC0\x80")) << "an overlong NUL";
  EXPECT_FALSE(arena.Matches(any, "\xE0\x80\x80")) << "an overlong";
  EXPECT_FALSE(arena.Matches(any, "\x80")) << "a lone continuation byte";
  EXPECT_FALSE(arena.Matches(any, "\xF4\x90\x80\x80")) << "past U+10FFFF";
  EXPECT_FALSE(arena.Matches(any, "ab"));

  const std::pair<uint32_t, uint32_t> ranges[] = {
      {0x41, 0x5A}, {0x3B1, 0x3C9}, {0x4E00, 0x9FFF}, {0x1F600, 0x1F64F}};
  const RegexId cls = arena.CodePoints(ranges);
  for (int i = 0; i < 20000; ++i) {
    const uint32_t cp = rng() % 0x20000;
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    bool in = false;
    for (auto [lo, hi] : ranges) in = in || (cp >= lo && cp <= hi);
    ASSERT_EQ(arena.Matches(cls, Utf8(cp)), in) << cp;
  }
}

TEST(Regex, IntersectionComplementEmptinessShortest) {
  RegexArena arena;
  auto parse = [&](std::string_view p) {
    auto r = ParseEcmaRegex(arena, p, RegexMode::kFullMatch);
    EXPECT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    return r.ok() ? *r : RegexArena::kNothing;
  };
  const RegexId word = parse("[a-z]{3,5}");
  const RegexId not_cat = arena.And(word, arena.Not(arena.Literal("cat")));
  EXPECT_TRUE(arena.Matches(not_cat, "dog"));
  EXPECT_FALSE(arena.Matches(not_cat, "cat"));
  EXPECT_TRUE(arena.Matches(not_cat, "cats"));
  EXPECT_EQ(*arena.ShortestMatch(not_cat), "aaa");
  EXPECT_EQ(*arena.MinLength(parse("(ab|c)+x")), 2);
  EXPECT_EQ(*arena.ShortestMatch(parse("(ab|c)+x")), "cx");
  EXPECT_TRUE(*arena.IsEmpty(arena.And(parse("a+"), parse("b+"))));
  EXPECT_TRUE(*arena.IsEmpty(arena.And(parse("[0-9]{2}"), parse("[0-9]{3}"))));
  EXPECT_FALSE(*arena.IsEmpty(arena.And(parse("[0-9]{2,4}"), parse("[0-9]{3}"))));
  // Hash-consing: the same language built the same way is the same id.
  EXPECT_EQ(parse("(a|b)c"), parse("(b|a)c"));
  EXPECT_EQ(arena.Or(word, word), word);
  // Derivatives of a counted repetition stay finite: walk 1000 bytes of a{0,1000}.
  RegexId r = parse("a{0,1000}");
  const size_t before = arena.size();
  for (int i = 0; i < 1000; ++i) r = arena.Derivative(r, 'a');
  EXPECT_TRUE(arena.Nullable(r));
  EXPECT_EQ(arena.Derivative(r, 'a'), RegexArena::kNothing);
  EXPECT_LT(arena.size() - before, 3000u);
}

TEST(Regex, EcmaSyntax) {
  RegexArena arena;
  auto matches = [&](std::string_view p, std::string_view s) {
    auto r = ParseEcmaRegex(arena, p, RegexMode::kSearch);
    EXPECT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    return r.ok() && arena.Matches(*r, s);
  };
  EXPECT_TRUE(matches("^\\d{3}-\\d{4}$", "555-1234"));
  EXPECT_FALSE(matches("^\\d{3}-\\d{4}$", "555-12345"));
  EXPECT_TRUE(matches("\\w+@\\w+\\.com", "mail: bob@example.com!"));
  EXPECT_TRUE(matches("^[\\u4e00-\\u9fff]+$", "漢字"));
  EXPECT_TRUE(matches("^\\uD83D\\uDE00$", "😀"));
  EXPECT_TRUE(matches("^\\u{1F600}$", "😀"));
  EXPECT_TRUE(matches("^\\x41\\t\\/$", "A\t/"));
  EXPECT_TRUE(matches("^[^\\s]+$", "a·b"));
  EXPECT_FALSE(matches("^[^\\s]+$", "a\u3000b"));
  EXPECT_TRUE(matches("^(?<year>\\d{4})-(?:0[1-9]|1[0-2])$", "2026-12"));
  EXPECT_TRUE(matches("^a.c$", "a€c"));
  EXPECT_FALSE(matches("^a.c$", "a\nc"));
  EXPECT_TRUE(matches("^[a\\-z]+$", "-az"));
  EXPECT_TRUE(matches("^a+?b*?$", "aab"));
  EXPECT_TRUE(matches("^x|y$", "xzz"));  // ^x or y$

  struct Refusal {
    const char* pattern;
    StatusCode code;
    const char* text;
  };
  for (const Refusal& r : std::initializer_list<Refusal>{
           {"a(?=b)", StatusCode::kUnsupported, "lookahead at offset 1"},
           {"(?<!a)b", StatusCode::kUnsupported, "lookbehind at offset 0"},
           {"(a)\\1", StatusCode::kUnsupported, "backreference at offset 3"},
           {"\\bword", StatusCode::kUnsupported, "\\b at offset 0"},
           {"\\p{L}", StatusCode::kUnsupported, "Unicode property escape at offset 0"},
           {"a^b", StatusCode::kUnsupported, "'^' anywhere but the start at offset 1"},
           {"(a$)", StatusCode::kUnsupported, "'$' anywhere but the end at offset 2"},
           {"a{99999}", StatusCode::kUnsupported, "over 10000"},
           {"(ab", StatusCode::kInvalidArgument, "missing ')'"},
           {"ab)", StatusCode::kInvalidArgument, "unbalanced ')'"},
           {"[b-a]", StatusCode::kInvalidArgument, "out of order"},
           {"a**", StatusCode::kInvalidArgument, "nothing to repeat"},
           {"a{2,1}", StatusCode::kInvalidArgument, "out of order"},
           {"\\", StatusCode::kInvalidArgument, "at the end"},
           {"[a", StatusCode::kInvalidArgument, "missing ']'"},
           {"\\uD800", StatusCode::kUnsupported, "lone surrogate"},
       }) {
    auto result = ParseEcmaRegex(arena, r.pattern, RegexMode::kSearch);
    ASSERT_FALSE(result.ok()) << r.pattern;
    EXPECT_EQ(result.status().code(), r.code) << r.pattern << ": " << result.status().ToString();
    EXPECT_NE(result.status().message().find(r.text), std::string::npos)
        << r.pattern << ": " << result.status().message();
  }
}

}  // namespace
}  // namespace gemma_local::constrain

namespace gemma_local::constrain {
namespace {

// Behaviour fingerprints: arena-independent, counters past the horizon clamped outside
// intersections and complements, exact inside them.
TEST(Regex, BehaviorFingerprints) {
  RegexArena a, b;
  RegexArena::FingerprintMemo ma, mb;
  auto fp = [](RegexArena& arena, RegexArena::FingerprintMemo& memo, RegexId r) {
    return arena.BehaviorFingerprint(r, /*horizon=*/8, /*key=*/42, &memo);
  };
  // The same language built in two arenas in different orders.
  const RegexId x1 = a.Or(a.Literal("cat"), a.Literal("dog"));
  b.Literal("unrelated");
  const RegexId x2 = b.Or(b.Literal("dog"), b.Literal("cat"));
  EXPECT_EQ(fp(a, ma, x1), fp(b, mb, x2));
  EXPECT_NE(fp(a, ma, x1), fp(a, ma, a.Literal("cat")));
  // {0,100} and * agree on strings of 8 bytes; {0,5} does not; minimums past 9 are alike.
  const RegexId q = a.Byte('"');
  auto bounded = [&](RegexArena& arena, uint32_t lo, uint32_t hi) {
    return arena.Concat(arena.Repeat(arena.CodePointRange('a', 'z'), lo, hi), arena.Byte('"'));
  };
  EXPECT_EQ(fp(a, ma, bounded(a, 0, 100)),
            fp(b, mb, b.Concat(b.Star(b.CodePointRange('a', 'z')), b.Byte('"'))));
  EXPECT_EQ(fp(a, ma, bounded(a, 0, 9)), fp(b, mb, bounded(b, 0, 1000)));
  EXPECT_NE(fp(a, ma, bounded(a, 0, 8)), fp(b, mb, bounded(b, 0, 9)));
  EXPECT_NE(fp(a, ma, bounded(a, 0, 5)), fp(a, ma, bounded(a, 0, 100)));
  EXPECT_EQ(fp(a, ma, bounded(a, 20, 40)), fp(b, mb, bounded(b, 30, 30)));
  EXPECT_NE(fp(a, ma, bounded(a, 3, 40)), fp(b, mb, bounded(b, 4, 40)));
  (void)q;
  // Inside an intersection the bounds stay exact: a{101} & (aa)* is empty, a{102} & (aa)* not.
  auto even_and = [](RegexArena& arena, uint32_t n) {
    return arena.And(arena.Repeat(arena.Byte('a'), n, n), arena.Star(arena.Literal("aa")));
  };
  EXPECT_NE(fp(a, ma, even_and(a, 101)), fp(b, mb, even_and(b, 102)));
  EXPECT_NE(fp(a, ma, a.Not(bounded(a, 0, 50))), fp(b, mb, b.Not(bounded(b, 0, 60))));
  // The key seeds every fingerprint.
  RegexArena::FingerprintMemo other;
  EXPECT_NE(fp(a, ma, x1), a.BehaviorFingerprint(x1, 8, /*key=*/43, &other));
  // A literal far longer than any recursion could take (concatenations walked in a loop).
  const std::string long_literal(300000, 'x');
  EXPECT_EQ(fp(a, ma, a.Literal(long_literal)), fp(b, mb, b.Literal(long_literal)));
  // A nullable body is never clamped ((a?){0,100} is not (a?)*'s count-free form).
  const RegexId opt_a = a.Optional(a.Byte('a'));
  EXPECT_NE(fp(a, ma, a.Concat(a.Repeat(a.Concat(opt_a, a.Byte('b')), 0, 100), q)),
            fp(a, ma, a.Concat(a.Repeat(a.Concat(opt_a, a.Byte('b')), 0, 5), q)));
}

}  // namespace
}  // namespace gemma_local::constrain
