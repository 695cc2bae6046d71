#include "runtime/sampler.h"

#include <map>

#include <gtest/gtest.h>

namespace gemma_local {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.0f, 3.0f, -1.0f}; }

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler s(SamplingParams{});
  std::vector<float> l = Logits();
  EXPECT_EQ(s.Next(l, {}, 0), 1);
}

TEST(Sampler, RepetitionPenaltyFollowsHf) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {1.0f, 3.0f, 2.0f, -1.0f};
  // Token 1 seen twice (penalised once: 3 -> 1.5), token 3 negative (-1 -> -2).
  EXPECT_EQ(s.Next(l, {1, 1, 3}, 0), 2);
  EXPECT_FLOAT_EQ(l[1], 1.5f);
  EXPECT_FLOAT_EQ(l[3], -2.0f);
}

TEST(Sampler, PresenceAndFrequencyApplyToGeneratedTokensOnly) {
  SamplingParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {3.0f, 3.0f, 2.0f};
  // Context: prompt {0}, generated {1, 1}.
  s.Next(l, {0, 1, 1}, 2);
  EXPECT_FLOAT_EQ(l[0], 3.0f);
  EXPECT_FLOAT_EQ(l[1], 3.0f - 0.5f - 0.5f);
}

TEST(Sampler, TopKOneIsGreedyAndSeedsReproduce) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 1;
  Sampler s(p);
  std::vector<float> l = {0.0f, 0.1f, 5.0f};
  EXPECT_EQ(s.Next(l, {}, 0), 2);
  SamplingParams q;
  q.temperature = 1.5f;
  q.seed = 42;
  Sampler a(q), b(q);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> la = Logits(), lb = Logits();
    EXPECT_EQ(a.Next(la, {}, 0), b.Next(lb, {}, 0));
  }
}

TEST(Sampler, TopPAndMinPRestrictTheSupport) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.5f;  // probs ~ {0.02, 0.42, 0.16, 0.42, 0.01}: ids 1 then 3 reach 0.5
  p.seed = 7;
  Sampler s(p);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 400; ++i) {
    std::vector<float> l = Logits();
    ++seen[s.Next(l, {}, 0)];
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(3));
  SamplingParams m;
  m.temperature = 1.0f;
  m.min_p = 0.3f;  // keeps p >= 0.3 * 0.42: ids 1, 3, 2
  Sampler t(m);
  std::map<int32_t, int> seen_m;
  for (int i = 0; i < 400; ++i) {
    std::vector<float> l = Logits();
    ++seen_m[t.Next(l, {}, 0)];
  }
  EXPECT_EQ(seen_m.size(), 3u);
  EXPECT_FALSE(seen_m.count(0) || seen_m.count(4));
}

TEST(Sampler, ValidateNamesTheField) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_NE(p.Validate().message().find("top_p"), std::string::npos);
  p = SamplingParams{};
  p.temperature = -1;
  EXPECT_NE(p.Validate().message().find("temperature"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
}

}  // namespace
}  // namespace gemma_local
