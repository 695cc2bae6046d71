// Requests with the same constraint share its compiled form (CompileCache) and with it the lexer
// DFA and per-state masks (LexerTables): a state's mask is computed once, not per matcher; tables
// bound to another grammar are not used.
#include "constrain/compile_cache.h"

#include <gtest/gtest.h>

#include "constrain/matcher.h"
#include "constrain/vocab_index.h"

namespace gemma_local::constrain {
namespace {

Constraint Schema(const char* text, bool best_effort = false) {
  return Constraint::JsonSchema(nlohmann::ordered_json::parse(text), best_effort);
}

TEST(CompileCache, SameContentSameCompiledFormLeastRecentlyUsedOut) {
  CompileCache cache(2);
  auto a = cache.Get(Schema(R"({"type": "string"})"));
  auto a2 = cache.Get(Schema(R"({"type": "string"})"));
  ASSERT_TRUE(a.ok() && a2.ok());
  EXPECT_EQ(a->get(), a2->get());
  EXPECT_EQ(cache.hits(), 1u);
  // best_effort and the kind are part of the content.
  auto lenient = cache.Get(Schema(R"({"type": "string"})", true));
  ASSERT_TRUE(lenient.ok());
  EXPECT_NE(lenient->get(), a->get());
  auto any = cache.Get(Constraint::AnyJson());  // capacity 2: the plain string schema goes
  ASSERT_TRUE(any.ok());
  auto again = cache.Get(Schema(R"({"type": "string"})"));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->get(), a->get()) << "evicted, compiled anew";
  EXPECT_EQ(cache.misses(), 4u);
  // Errors are returned each time, never cached.
  EXPECT_FALSE(cache.Get(Schema(R"({"type": "string", "format": "hostname"})")).ok());
  EXPECT_FALSE(cache.Get(Schema(R"({"type": "string", "format": "hostname"})")).ok());
  EXPECT_EQ(cache.misses(), 6u);
}

TEST(CompileCache, MatchersShareTheLexerTablesOfTheirGrammarOnly) {
  const std::vector<std::string> bytes = {"<stop>", "\"", "a", "b", "ab", "\"a", "a\"", "x y"};
  std::vector<bool> excluded(bytes.size(), false);
  excluded[0] = true;
  const auto vocab = VocabIndex::FromTokens(bytes, excluded);
  CompileCache cache;
  auto compiled = cache.Get(Schema(R"({"type": "string", "maxLength": 3})"));
  ASSERT_TRUE(compiled.ok());
  const std::shared_ptr<LexerTables> tables = (*compiled)->lexer;
  TokenMask first(vocab->vocab_size()), second(vocab->vocab_size());
  Matcher m1((*compiled)->grammar, vocab, {0}, tables);
  ASSERT_TRUE(m1.FillMask(&first).ok());
  const size_t masks = tables->masks();
  EXPECT_GT(masks, 0u);
  Matcher m2((*compiled)->grammar, vocab, {0}, tables);
  ASSERT_TRUE(m2.FillMask(&second).ok());
  EXPECT_EQ(tables->masks(), masks) << "the second matcher reuses the first one's mask";
  for (int32_t id = 0; id < vocab->vocab_size(); ++id) EXPECT_EQ(first.Test(id), second.Test(id));
  // Another grammar does not use (or grow) these tables.
  auto other = cache.Get(Schema(R"({"type": "string"})"));
  ASSERT_TRUE(other.ok());
  Matcher m3((*other)->grammar, vocab, {0}, tables);
  TokenMask third(vocab->vocab_size());
  ASSERT_TRUE(m3.FillMask(&third).ok());
  EXPECT_EQ(tables->masks(), masks);
  EXPECT_TRUE(third.Test(1)) << "an opening quote";
}

}  // namespace
}  // namespace gemma_local::constrain
