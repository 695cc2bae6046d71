// The matcher on a hand-written JSON grammar: every prefix of real JSON is accepted and is
// complete exactly when nlohmann::json accepts it; corrupted documents are rejected; the trie-walk
// mask equals a token-by-token brute force; random walks through the masks never dead-end and
// always end in JSON; on the real Gemma 3 vocabulary masks never hold excluded ids.
#include "constrain/matcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "common/test_support.h"
#include "constrain/regex_parse.h"

namespace gemma_local::constrain {
namespace {

std::shared_ptr<const Grammar> JsonGrammar() {
  auto arena = std::make_shared<RegexArena>();
  auto g = std::make_shared<Grammar>(arena);
  auto lex = [&](std::string_view pattern) {
    auto r = ParseEcmaRegex(*arena, pattern, RegexMode::kFullMatch);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return Symbol::Lexeme(g->AddLexeme(*r));
  };
  const Symbol lbrace = lex("\\{"), rbrace = lex("\\}"), lbracket = lex("\\["),
               rbracket = lex("\\]"), comma = lex(","), colon = lex(":");
  const Symbol string =
      lex("\"([^\"\\\\\\x00-\\x1F]|\\\\([\"\\\\/"
          "bfnrt]|u([0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-"
          "fA-F]{2})))*\"");
  // Bounded so every number is finite as a double (nlohmann rejects 1e999).
  const Symbol number = lex("-?(0|[1-9][0-9]{0,14})(\\.[0-9]{1,24})?([eE][+-]?[0-9]{1,2})?");
  const Symbol t = lex("true"), f = lex("false"), n = lex("null");
  const int32_t value = g->AddRule("value"), object = g->AddRule("object"),
                members = g->AddRule("members"), array = g->AddRule("array"),
                elements = g->AddRule("elements");
  const Symbol V = Symbol::Rule(value), M = Symbol::Rule(members), E = Symbol::Rule(elements);
  for (Symbol s : {Symbol::Rule(object), Symbol::Rule(array), string, number, t, f, n}) {
    g->AddProduction(value, {s});
  }
  g->AddProduction(object, {lbrace, rbrace});
  g->AddProduction(object, {lbrace, M, rbrace});
  g->AddProduction(members, {string, colon, V});
  g->AddProduction(members, {string, colon, V, comma, M});
  g->AddProduction(array, {lbracket, rbracket});
  g->AddProduction(array, {lbracket, E, rbracket});
  g->AddProduction(elements, {V});
  g->AddProduction(elements, {V, comma, E});
  g->set_start(value);
  EXPECT_TRUE(g->Finalize().ok());
  return g;
}

nlohmann::json RandomJson(std::mt19937& rng, int depth) {
  switch (rng() % (depth > 3 ? 5 : 7)) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<int64_t>(rng() % 2000) - 1000;
    case 3:
      return std::ldexp(static_cast<double>(rng() % 100000) - 50000, -static_cast<int>(rng() % 40));
    case 4: {
      static const char* kPieces[] = {"a",  "é",  "漢",   "😀", "\"", "\\",
                                      "\n", "\t", "\x01", "/", " "};
      std::string s;
      const int len = static_cast<int>(rng() % 6);
      for (int i = 0; i < len; ++i) s += kPieces[rng() % std::size(kPieces)];
      return s;
    }
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      const int len = static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i) a.push_back(RandomJson(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      const int len = static_cast<int>(rng() % 4);
      for (int i = 0; i < len; ++i)
        o["k" + std::to_string(rng() % 10)] = RandomJson(rng, depth + 1);
      return o;
    }
  }
}

// All single bytes plus JSON-shaped multi-byte pieces; id 0 is the stop token, 1 excluded.
std::shared_ptr<const VocabIndex> SmallVocab(std::mt19937& rng) {
  std::vector<std::string> bytes{"", "<mask>"};
  std::vector<bool> excluded{true, true};
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  static const char* kFragments[] = {"{\"",   "\":",   "\",", "\"}", "\"]", "},{", "true",
                                     "false", "null",  "12",  "0.",  "e+",  "-0",  "\\n",
                                     "\\\"",  "\\u00", "ab",  "é",   "😀",   "\"k", "k1",
                                     "[]",    "{}",    "]]",  "}}",  ",\""};
  for (int i = 0; i < 1500; ++i) {
    std::string s = kFragments[rng() % std::size(kFragments)];
    if (rng() % 2) s += kFragments[rng() % std::size(kFragments)];
    bytes.push_back(s);
  }
  excluded.resize(bytes.size(), false);
  return VocabIndex::FromTokens(bytes, excluded);
}

// Whether token `id` may come next, by pushing its bytes one at a time (the stop id 0 only when
// the value is complete): the brute force the trie-walk masks must equal.
bool BruteForceAllowed(Matcher& m, const VocabIndex& vocab, int32_t id) {
  if (id == 0) return m.Complete();
  if (vocab.Excluded(id)) return false;
  const std::string_view b = vocab.TokenBytes(id);
  size_t pushed = 0;
  while (pushed < b.size() && m.PushByte(static_cast<uint8_t>(b[pushed]))) ++pushed;
  const bool ok = pushed == b.size();
  while (pushed-- > 0) m.PopByte();
  return ok;
}

TEST(Matcher, PrefixesOfJsonAreViableAndCompleteExactlyWhenJson) {
  auto grammar = JsonGrammar();
  std::mt19937 rng(3);
  auto vocab = SmallVocab(rng);
  for (int doc = 0; doc < 200; ++doc) {
    const std::string text = RandomJson(rng, 0).dump();
    Matcher m(grammar, vocab, {0});
    for (size_t i = 0; i < text.size(); ++i) {
      ASSERT_TRUE(m.AcceptBytes(text.substr(i, 1)).ok()) << text << " at " << i;
      EXPECT_EQ(m.Complete(), nlohmann::json::accept(text.substr(0, i + 1)))
          << text.substr(0, i + 1);
    }
    EXPECT_TRUE(m.Complete()) << text;
    // Corrupt one byte: the matcher may accept it only if it is still JSON.
    std::string bad = text;
    bad[rng() % bad.size()] = "{}[]\",:0a\\ "[rng() % 11];
    Matcher m2(grammar, vocab, {0});
    const bool matched = m2.AcceptBytes(bad).ok() && m2.Complete();
    const bool has_space = bad.find(' ') != std::string::npos && nlohmann::json::accept(bad) &&
                           nlohmann::json::parse(bad).dump() != bad;
    if (!has_space) EXPECT_EQ(matched, nlohmann::json::accept(bad)) << bad;
  }
}

TEST(Matcher, MaskEqualsBruteForceAndRandomWalksEndInJson) {
  auto grammar = JsonGrammar();
  std::mt19937 rng(5);
  auto vocab = SmallVocab(rng);
  int finished = 0;
  for (int walk = 0; walk < 60; ++walk) {
    Matcher m(grammar, vocab, {0});
    std::string text;
    TokenMask mask;
    for (int step = 0; step < 200 && !m.finished(); ++step) {
      ASSERT_TRUE(m.FillMask(&mask).ok()) << "dead end after " << text;
      if (step % 7 == 0) {  // brute force: push each token's bytes
        for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
          ASSERT_EQ(mask.Test(id), BruteForceAllowed(m, *vocab, id))
              << "token " << id << " after " << text;
        }
      }
      std::vector<int32_t> ids = mask.Ids();
      // Prefer stopping late so walks get deep.
      int32_t pick = ids[rng() % ids.size()];
      if (mask.Test(0) && step > 40) pick = 0;
      if (pick != 0) text += vocab->TokenBytes(pick);
      ASSERT_TRUE(m.Accept(pick).ok());
    }
    if (m.finished()) {
      ++finished;
      EXPECT_TRUE(nlohmann::json::accept(text)) << text;
    }
  }
  EXPECT_GE(finished, 30);
}

// Grammars over one vocabulary share lexer states' masks by behaviour (VocabIndex::state_masks):
// bounded strings whose bounds lie past the longest token share with each other and with the
// unbounded one, an intersection whose counter decides emptiness does not. Every mask, from
// whichever grammar computed it, equals a brute force over the current grammar.
TEST(Matcher, MasksSharedAcrossGrammarsEqualBruteForce) {
  std::mt19937 rng(11);
  std::vector<std::string> bytes{"<stop>"};
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  static const char* kPieces[] = {"a", "b", "\"", "é", "😀", "aa", "ab"};
  for (int i = 0; i < 600; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < len; ++k) s += kPieces[rng() % std::size(kPieces)];
    bytes.push_back(s);
  }
  auto vocab = VocabIndex::FromTokens(bytes, std::vector<bool>{true});
  ASSERT_LE(vocab->max_token_bytes(), 16u);
  struct Case {
    const char* name;
    std::function<RegexId(RegexArena&)> lexeme;
  };
  auto quoted = [](RegexArena& a, RegexId body) {
    const RegexId parts[] = {a.Byte('"'), body, a.Byte('"')};
    return a.Concat(parts);
  };
  auto chars = [](RegexArena& a) {
    const std::pair<uint32_t, uint32_t> ranges[] = {{'a', 'b'}, {0xE9, 0xE9}, {0x1F600, 0x1F600}};
    return a.CodePoints(ranges);
  };
  const std::vector<Case> cases = {
      {"{0,100}", [&](RegexArena& a) { return quoted(a, a.Repeat(chars(a), 0, 100)); }},
      {"{0,60}", [&](RegexArena& a) { return quoted(a, a.Repeat(chars(a), 0, 60)); }},
      {"*", [&](RegexArena& a) { return quoted(a, a.Star(chars(a))); }},
      {"{3,80}", [&](RegexArena& a) { return quoted(a, a.Repeat(chars(a), 3, 80)); }},
      {"{0,4}", [&](RegexArena& a) { return quoted(a, a.Repeat(chars(a), 0, 4)); }},
      {"a{40} & (aa)* | b",
       [&](RegexArena& a) {
         return a.Or(a.And(a.Repeat(a.Byte('a'), 40, 40), a.Star(a.Literal("aa"))), a.Byte('b'));
       }},
      {"a{41} & (aa)* | b",
       [&](RegexArena& a) {
         return a.Or(a.And(a.Repeat(a.Byte('a'), 41, 41), a.Star(a.Literal("aa"))), a.Byte('b'));
       }},
  };
  for (const Case& c : cases) {
    auto arena = std::make_shared<RegexArena>();
    auto g = std::make_shared<Grammar>(arena);
    const int32_t start = g->AddRule("start");
    g->AddProduction(start, {Symbol::Lexeme(g->AddLexeme(c.lexeme(*arena)))});
    g->set_start(start);
    ASSERT_TRUE(g->Finalize().ok()) << c.name;
    for (int walk = 0; walk < 8; ++walk) {
      Matcher m(g, vocab, {0});
      std::string text;
      TokenMask mask;
      for (int step = 0; step < 120 && !m.finished(); ++step) {
        ASSERT_TRUE(m.FillMask(&mask).ok()) << c.name << " after " << text;
        for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
          ASSERT_EQ(mask.Test(id), BruteForceAllowed(m, *vocab, id))
              << c.name << ": token " << id << " after " << text;
        }
        std::vector<int32_t> ids = mask.Ids();
        int32_t pick = ids[rng() % ids.size()];
        if (mask.Test(0) && rng() % 4 == 0) pick = 0;
        if (pick != 0) text += vocab->TokenBytes(pick);
        ASSERT_TRUE(m.Accept(pick).ok());
      }
    }
  }
  EXPECT_GT(vocab->state_masks().stats().hits, 0u) << "no state was shared across grammars";
}

TEST(Matcher, Gemma3VocabularyMasks) {
  std::optional<std::string> shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared.has_value(), "../shared/testdata is not here");
  auto tokenizer = Tokenizer::Load(*shared + "/testdata/gemma3-tokenizer");
  ASSERT_TRUE(tokenizer.ok());
  auto vocab = VocabIndex::Build(**tokenizer);
  ASSERT_TRUE(vocab.ok());
  const int32_t eos = *(*tokenizer)->PieceToId("<end_of_turn>");
  Matcher m(JsonGrammar(), *vocab, {eos});
  TokenMask mask;
  const char* steps[] = {"{\"", "name", "\":\"", "漢字 😀", "\",\"n\":", "12", "}"};
  for (const char* s : steps) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(m.FillMask(&mask).ok());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("before %-10s allowed %6d  %.2f ms\n", s, mask.Count(), ms);
    mask.ForEach([&](int32_t id) { ASSERT_FALSE((*vocab)->Excluded(id)) << id; });
    EXPECT_EQ(mask.Test(eos), m.Complete());
    ASSERT_TRUE(m.AcceptBytes(s).ok()) << s;
  }
  EXPECT_TRUE(m.Complete());
  ASSERT_TRUE(m.FillMask(&mask).ok());
  EXPECT_EQ(mask.Ids(), std::vector<int32_t>{eos}) << "after the closing brace only the stop";
  ASSERT_TRUE(m.Accept(eos).ok());
  EXPECT_TRUE(m.finished());
}

}  // namespace
}  // namespace gemma_local::constrain
