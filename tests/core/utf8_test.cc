#include "core/utf8.h"

#include <gtest/gtest.h>

namespace gemma_local {
namespace {

TEST(Utf8, ValidityFollowsRfc3629) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x96\x81\xF0\x9F\x98\x80"));  // é ▁ 😀
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));                              // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));                          // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));                      // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x96"));                              // truncated
  EXPECT_EQ(FirstInvalidUtf8Offset("ab\xFF"), 2u);
}

TEST(Utf8, LeadByteClassification) {
  EXPECT_EQ(ClassifyUtf8Lead('a').len, 0u);
  EXPECT_EQ(ClassifyUtf8Lead(0x80).len, 0u);
  EXPECT_EQ(ClassifyUtf8Lead(0xC1).len, 0u);
  EXPECT_EQ(ClassifyUtf8Lead(0xC2).len, 2u);
  const Utf8Lead e0 = ClassifyUtf8Lead(0xE0);
  EXPECT_EQ(e0.len, 3u);
  EXPECT_EQ(e0.second_lo, 0xA0);
  EXPECT_EQ(ClassifyUtf8Lead(0xED).second_hi, 0x9F);
  EXPECT_EQ(ClassifyUtf8Lead(0xF4).second_hi, 0x8F);
  EXPECT_EQ(ClassifyUtf8Lead(0xF5).len, 0u);
}

TEST(Utf8, EscapeForMessageIsBounded) {
  EXPECT_EQ(EscapeForMessage("a\x01" "b"), "a\\x01b");
  EXPECT_EQ(EscapeForMessage(std::string(500, 'x'), 10).size(), 13u);
}

}  // namespace
}  // namespace gemma_local
