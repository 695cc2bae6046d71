// GBNF grammars: exact languages for regular and recursive grammars (including the case where
// maximal-munch lexemes would lose strings), errors with line and column, refusal of token
// references, and llama.cpp's own example grammars (from the pinned reference package) compiled
// and walked through token masks to complete values (json.gbnf's are JSON).
#include "constrain/gbnf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/test_support.h"
#include "constrain/matcher.h"

namespace gemma_local::constrain {
namespace {

std::shared_ptr<const VocabIndex> ByteVocab(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> bytes{"<stop>"};
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  for (const std::string& e : extra) bytes.push_back(e);
  return VocabIndex::FromTokens(bytes, std::vector<bool>{true});
}

// Whether `text` is a whole string of the grammar.
bool Accepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  static const auto vocab = ByteVocab();
  Matcher m(g, vocab, {0});
  return m.AcceptBytes(text).ok() && m.Complete();
}

std::shared_ptr<const Grammar> Compile(const std::string& text) {
  auto g = CompileGbnf(text);
  EXPECT_TRUE(g.ok()) << g.status().ToString() << "\n" << text;
  return g.ok() ? *g : nullptr;
}

TEST(Gbnf, RegularGrammar) {
  auto g = Compile(
      "# a comment\n"
      "root ::= answer \"!\"? # trailing comment\n"
      "answer ::= (\"yes\" | \"no\") [ \\t]{0,2} [0-9]{2,3}\n");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->lexeme_count(), 1u) << "a grammar without recursion is one lexeme";
  for (const char* ok : {"yes12", "no 123!", "yes\t 99"}) EXPECT_TRUE(Accepts(g, ok)) << ok;
  for (const char* bad : {"yes1", "maybe12", "yes   12", "no1234", "yes12!!"}) {
    EXPECT_FALSE(Accepts(g, bad)) << bad;
  }
}

TEST(Gbnf, EscapesClassesAndRepetitions) {
  auto g = Compile(
      "root ::= \"\\x41\\u00e9\\U0001F600\\n\\\"\" [^a-z\\]] . x{2} x{1,} y{,2}\n"
      "x ::= \"x\"\ny ::= \"y\"\n");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(Accepts(g, "Aé😀\n\"Q漢xxx"));
  EXPECT_TRUE(Accepts(g, "Aé😀\n\"Z?xxxxyy"));
  EXPECT_FALSE(Accepts(g, "Aé😀\n\"q漢xxx")) << "q is in a-z";
  EXPECT_FALSE(Accepts(g, "Aé😀\n\"Q漢xx")) << "x{2} x{1,} needs three";
  EXPECT_FALSE(Accepts(g, "Aé😀\n\"Q漢xxxyyy"));
}

TEST(Gbnf, RecursiveGrammars) {
  // Balanced parentheses: prefix-free lexemes.
  auto parens = Compile("root ::= (\"(\" root \")\")*\n");
  ASSERT_NE(parens, nullptr);
  for (const char* ok : {"", "()", "(())()", "((()()))"}) EXPECT_TRUE(Accepts(parens, ok)) << ok;
  for (const char* bad : {"(", ")(", "(()", "())"}) EXPECT_FALSE(Accepts(parens, bad)) << bad;

  // llama.cpp's arithmetic example: lexemes such as [0-9]+ space are not prefix-free, so each
  // character class is a lexeme.
  auto arith = Compile(
      "root  ::= expr\n"
      "expr  ::= term ([-+*/] term)*\n"
      "term  ::= num | \"(\" space expr \")\" space\n"
      "num   ::= [0-9]+ space\n"
      "space ::= [ \\t\\n]*\n");
  ASSERT_NE(arith, nullptr);
  for (const char* ok : {"1", "12 +3", "(1+2)*3", "( 4 /(5-6) ) ", "7*(8)"}) {
    EXPECT_TRUE(Accepts(arith, ok)) << ok;
  }
  for (const char* bad : {"", "+1", "1+", "(1", "1 2", "a", "1+ 2"})
    EXPECT_FALSE(Accepts(arith, bad)) << bad;
}

TEST(Gbnf, NoStringLostToMaximalMunch) {
  // "a" then x, or "abd": as lexemes "a" is a prefix of "abd", and a greedy lexer reading "ab"
  // would never split it as "a" "b...". Every string must still be accepted.
  auto g = Compile(
      "root ::= \"a\" x | \"ab\" \"d\"\n"
      "x ::= \"bc\" | \"(\" x \")\"\n");
  ASSERT_NE(g, nullptr);
  for (const char* ok : {"abc", "abd", "a(bc)", "a((bc))"}) EXPECT_TRUE(Accepts(g, ok)) << ok;
  for (const char* bad : {"ab", "a", "abcd", "a(bc"}) EXPECT_FALSE(Accepts(g, bad)) << bad;
  // A lexeme running into what follows it: ws takes newlines and a newline ends the line.
  auto lines = Compile(
      "root ::= (line | \"(\" root \")\")+\n"
      "line ::= [a-z]+ ws \"\\n\"\n"
      "ws ::= [ \\t\\n]*\n");
  ASSERT_NE(lines, nullptr);
  for (const char* ok : {"ab\n", "ab \n", "ab\n\n", "ab\n\ncd \t\n", "(ab\n)"}) {
    EXPECT_TRUE(Accepts(lines, ok)) << ok;
  }
  for (const char* bad : {"ab", "ab ", "\n", "(ab)"}) EXPECT_FALSE(Accepts(lines, bad)) << bad;
}

TEST(Gbnf, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
    StatusCode code;
  };
  const Case cases[] = {
      {"root ::= foo\n", "line 1, column 10: rule \"foo\" is used but never defined",
       StatusCode::kInvalidArgument},
      {"root ::= \"a\"\nroot ::= \"b\"\n", "line 2, column 1: rule \"root\" is defined twice",
       StatusCode::kInvalidArgument},
      {"start ::= \"a\"\n", "no \"root\" rule", StatusCode::kInvalidArgument},
      {"root ::= \"a\" <think>\n", "line 1, column 14: token references", StatusCode::kUnsupported},
      {"root ::= \"abc\n", "line 1, column 10: unterminated literal", StatusCode::kInvalidArgument},
      {"root ::= \"\\q\"\n", "unknown escape \\q", StatusCode::kInvalidArgument},
      {"root ::= \"a\"{10001}\n", "repetition counts above 10000", StatusCode::kInvalidArgument},
      {"root ::= [z-a]\n", "class range out of order", StatusCode::kInvalidArgument},
      {"root ::= (\"a\"\n", "unclosed parenthesis", StatusCode::kInvalidArgument},
      {"root ::= \"a\" x ::= \"b\"\n", "expected a newline before rule \"x\"",
       StatusCode::kInvalidArgument},
      {"root ::= x\nx ::= \"(\" x \")\"\n", "derives no finite string",
       StatusCode::kInvalidArgument},
      {"", "no \"root\" rule", StatusCode::kInvalidArgument},
      {"root ::= \"a\"?????\n", "more than 4 repetition operators", StatusCode::kInvalidArgument},
      {"root ::= \"\xff\"\n", "invalid UTF-8 at byte 10", StatusCode::kInvalidArgument},
  };
  // A long chain of optional items (derivatives recurse along it) is refused, not a stack
  // overflow; a long literal is fine.
  std::string chain = "root ::= ";
  for (int i = 0; i < 20000; ++i) chain += "\"a\"? ";
  auto refused = CompileGbnf(chain + "\n");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("more than 10000 grammar elements"), std::string::npos);
  auto literal = Compile("root ::= \"" + std::string(3000, 'x') + "\"\n");
  ASSERT_NE(literal, nullptr);
  EXPECT_TRUE(Accepts(literal, std::string(3000, 'x')));
  for (const Case& c : cases) {
    auto g = CompileGbnf(c.text);
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_EQ(g.status().code(), c.code) << g.status().ToString();
    EXPECT_NE(g.status().message().find(c.message), std::string::npos)
        << c.text << " -> " << g.status().message();
  }
}

// Random token walks through the masks (never a dead end, then steering to the end).
std::vector<std::string> RandomOutputs(const std::shared_ptr<const Grammar>& g,
                                       const std::shared_ptr<const VocabIndex>& vocab, int walks,
                                       std::mt19937& rng) {
  std::vector<std::string> out;
  for (int w = 0; w < walks; ++w) {
    Matcher m(g, vocab, {0});
    std::string text;
    TokenMask mask;
    for (int step = 0; step < 400 && !m.finished(); ++step) {
      Status s = m.FillMask(&mask);
      EXPECT_TRUE(s.ok()) << s.ToString() << " after " << text;
      if (!s.ok()) return out;
      std::vector<int32_t> ids = mask.Ids();
      int32_t pick = step < 60 ? ids[rng() % ids.size()] : m.SteerToken(mask);
      if (pick != 0) text += vocab->TokenBytes(pick);
      EXPECT_TRUE(m.Accept(pick).ok());
    }
    EXPECT_TRUE(m.finished()) << "unfinished: " << text;
    if (m.finished()) out.push_back(text);
  }
  return out;
}

// The lexeme form of a recursive grammar against its per-character form (a lexeme per character
// class: maximal munch is trivially exact there): the same strings accepted, on strings each
// form generates and on corruptions of them.
void ExpectSameLanguage(const std::string& text, std::mt19937& rng, const std::string& name) {
  auto lexemes = CompileGbnf(text);
  auto chars = CompileGbnf(text, GbnfOptions{.per_character = true});
  ASSERT_TRUE(lexemes.ok() && chars.ok()) << name;
  auto vocab = ByteVocab({"ab", "12", " =", "\n(", "\")", "{\"", "\":", "*/", "//", "in"});
  std::vector<std::string> samples = RandomOutputs(*lexemes, vocab, 6, rng);
  for (const std::string& s : RandomOutputs(*chars, vocab, 6, rng)) samples.push_back(s);
  const size_t n = samples.size();
  for (size_t i = 0; i < n; ++i) {
    std::string s = samples[i];
    if (s.empty()) continue;
    for (int k = 0; k < 3; ++k) {
      std::string t = s;
      t[rng() % t.size()] = " \n(){}\":,=-+*/a1x"[rng() % 19];
      samples.push_back(t);
      samples.push_back(s.substr(0, rng() % s.size()));
    }
  }
  for (const std::string& s : samples) {
    EXPECT_EQ(Accepts(*lexemes, s), Accepts(*chars, s)) << name << ": \"" << s << "\"";
  }
}

TEST(Gbnf, LexemeFormAgreesWithPerCharacterForm) {
  std::mt19937 rng(13);
  const char* grammars[] = {
      "root ::= \"a\" x | \"ab\" \"d\"\nx ::= \"bc\" | \"(\" x \")\"\n",
      "root ::= (line | \"(\" root \")\")+\nline ::= [a-z]+ ws \"\\n\"\nws ::= [ \\t\\n]*\n",
      "root ::= e\ne ::= t ([-+] ws t)*\nt ::= [0-9]+ ws | \"(\" ws e \")\" ws | [a-z]+ \"(\" e "
      "\")\"\n"
      "ws ::= \" \"?\n",
      "root ::= v\nv ::= \"[\" (v (\",\" \" \"? v)*)? \"]\" | \"1\" | \"12\" | \"1\" \"x\"\n",
  };
  for (const char* g : grammars) ExpectSameLanguage(g, rng, g);
  const std::filesystem::path dir = std::filesystem::path(GEMMA_LOCAL_SOURCE_DIR) /
                                    "tests/reference/node_modules/node-llama-cpp/llama/grammars";
  GL_REQUIRE_REFERENCE(std::filesystem::exists(dir / "json.gbnf"),
                       "node-llama-cpp is not installed (tests/reference: npm ci)");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gbnf") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    ExpectSameLanguage(text.str(), rng, entry.path().filename().string());
  }
}

TEST(Gbnf, LlamaCppExampleGrammars) {
  const std::filesystem::path dir = std::filesystem::path(GEMMA_LOCAL_SOURCE_DIR) /
                                    "tests/reference/node_modules/node-llama-cpp/llama/grammars";
  GL_REQUIRE_REFERENCE(std::filesystem::exists(dir / "json.gbnf"),
                       "node-llama-cpp is not installed (tests/reference: npm ci)");
  auto vocab = ByteVocab({"{\"", "\":", "\",", "\"}", "true", "null", "12", "\\n", "é", "😀"});
  std::mt19937 rng(7);
  int grammars = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".gbnf") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto g = CompileGbnf(text.str());
    ASSERT_TRUE(g.ok()) << entry.path() << ": " << g.status().ToString();
    ++grammars;
    const std::vector<std::string> outputs = RandomOutputs(*g, vocab, 4, rng);
    EXPECT_EQ(outputs.size(), 4u) << entry.path();
    for (const std::string& o : outputs) {
      EXPECT_TRUE(Accepts(*g, o)) << entry.path() << ": " << o;
      if (entry.path().filename() == "json.gbnf" || entry.path().filename() == "json_arr.gbnf") {
        EXPECT_TRUE(nlohmann::json::accept(o)) << entry.path() << ": " << o;
      }
    }
  }
  EXPECT_GE(grammars, 8);
}

}  // namespace
}  // namespace gemma_local::constrain
