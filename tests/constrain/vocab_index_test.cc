// VocabIndex: the trie walk visits exactly the non-excluded tokens, by their bytes, and prunes
// rejected subtrees; on the real Gemma 3 vocabulary the exclusions and byte coverage are as the
// design measured (docs/design/structured-output.md section 0).
#include "constrain/vocab_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/test_support.h"

namespace gemma_local::constrain {
namespace {

// Records every token reached with the prefix the walk holds at that moment.
struct Recorder {
  std::string prefix;
  std::map<int32_t, std::string> seen;
  std::string forbidden_first;  // first bytes whose subtree is skipped
  bool Push(uint8_t b, uint32_t /*node*/) {
    if (prefix.empty() && forbidden_first.find(static_cast<char>(b)) != std::string::npos) {
      return false;
    }
    prefix.push_back(static_cast<char>(b));
    return true;
  }
  void Pop() { prefix.pop_back(); }
  void Token(int32_t id) { EXPECT_TRUE(seen.emplace(id, prefix).second) << id; }
};

TEST(VocabIndex, WalkVisitsEveryTokenOnceWithItsBytes) {
  std::mt19937 rng(7);
  std::vector<std::string> bytes;
  std::vector<bool> excluded;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const int len = static_cast<int>(rng() % 6);  // 0-length ids are excluded
    for (int k = 0; k < len; ++k) s.push_back(static_cast<char>("ab\"\xc3\xff"[rng() % 5]));
    bytes.push_back(s);
    excluded.push_back(rng() % 10 == 0);
  }
  auto index = VocabIndex::FromTokens(bytes, excluded);
  Recorder all;
  index->Walk(all);
  EXPECT_TRUE(all.prefix.empty());
  size_t expected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    const bool skip = bytes[i].empty() || excluded[i];
    EXPECT_EQ(index->Excluded(id), skip);
    if (skip) {
      EXPECT_EQ(all.seen.count(id), 0u);
      continue;
    }
    ++expected;
    ASSERT_EQ(all.seen.count(id), 1u) << id;
    EXPECT_EQ(all.seen[id], bytes[i]);
    EXPECT_EQ(index->TokenBytes(id), bytes[i]);
  }
  EXPECT_EQ(all.seen.size(), expected);

  Recorder pruned;
  pruned.forbidden_first = "a\xff";
  index->Walk(pruned);
  for (const auto& [id, s] : pruned.seen) EXPECT_TRUE(s[0] != 'a' && s[0] != '\xff') << s;
  size_t kept = 0;
  for (const auto& [id, s] : all.seen) kept += s[0] != 'a' && s[0] != '\xff';
  EXPECT_EQ(pruned.seen.size(), kept);
}

TEST(VocabIndex, Gemma3Vocabulary) {
  std::optional<std::string> shared = testing::SharedDir();
  GL_REQUIRE_REFERENCE(shared.has_value(), "../shared/testdata is not here");
  auto tokenizer = Tokenizer::Load(*shared + "/testdata/gemma3-tokenizer");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  auto index = VocabIndex::Build(**tokenizer);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  const VocabIndex& v = **index;
  EXPECT_EQ(v.vocab_size(), (*tokenizer)->vocab_size());  // 262,145 ids in tokenizer.json
  // 9 special, 6,242 <unusedN>, <mask>, [multimodal].
  EXPECT_EQ(v.excluded_count(), 9 + 6242 + 2);
  for (const char* piece : {"<eos>", "<end_of_turn>", "<start_of_turn>", "<mask>", "[multimodal]",
                            "<unused0>", "<unused6241>", "<pad>", "<unk>"}) {
    auto id = (*tokenizer)->PieceToId(piece);
    ASSERT_TRUE(id.has_value()) << piece;
    EXPECT_TRUE(v.Excluded(*id)) << piece;
  }
  // HTML-tag added tokens are ordinary text; byte pieces cover every byte.
  EXPECT_FALSE(v.Excluded(*(*tokenizer)->PieceToId("<b>")));
  for (int b = 0; b < 256; ++b) EXPECT_GE(v.SingleByteToken(static_cast<uint8_t>(b)), 0) << b;
  EXPECT_EQ(v.TokenBytes(*(*tokenizer)->PieceToId("▁the")), " the");
  Recorder all;
  v.Walk(all);
  EXPECT_EQ(static_cast<int32_t>(all.seen.size()), v.vocab_size() - v.excluded_count());
  EXPECT_LE(v.max_token_bytes(), 93u);
}

}  // namespace
}  // namespace gemma_local::constrain
