// Validation rules (gemma_local/rules.h): the YAML format, jq evaluation with the prelude, and
// errors that name the file, line, column, rule and key.
#include "gemma_local/rules.h"

#include <gtest/gtest.h>

#include <thread>

namespace gemma_local {
namespace {

constexpr const char* kInvoiceRules = R"yaml(version: 1
rules:
  - name: subtotal_matches_items
    expr: 'approx(sum(.items[].amount); .subtotal; 0.01)'
    message: subtotal must equal the sum of the item amounts
    detail: '"items sum to \(sum(.items[].amount)), subtotal is \(.subtotal)"'
  - name: total_is_subtotal_plus_tax
    expr: 'approx(.subtotal + .tax; .total; 0.01)'
  - name: dates_in_order
    when: '.due != null'
    expr: '.issued <= .due'
  - name: has_items
    expr: 'count(.items[]) > 0 and present(.items[0].amount)'
    severity: warning
)yaml";

nlohmann::ordered_json Invoice(double subtotal, double total, const char* due) {
  nlohmann::ordered_json j = {{"items", {{{"amount", 10.0}}, {{"amount", 2.5}}}},
                              {"subtotal", subtotal},
                              {"tax", 1.25},
                              {"total", total},
                              {"issued", "2026-01-10"}};
  j["due"] = due == nullptr ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(due);
  return j;
}

TEST(Rules, EvaluatesInFileOrderWithThePrelude) {
  Result<std::unique_ptr<RuleSet>> rules = RuleSet::Parse(kInvoiceRules, "rules.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ((*rules)->size(), 4u);
  std::vector<RuleResult> good = (*rules)->Evaluate(Invoice(12.5, 13.75, "2026-02-01"));
  ASSERT_EQ(good.size(), 4u);
  for (const RuleResult& r : good) EXPECT_TRUE(r.ok && !r.skipped) << r.name << ": " << r.message;
  EXPECT_FALSE(AnyRuleFailed(good));

  std::vector<RuleResult> bad = (*rules)->Evaluate(Invoice(12.0, 13.25, nullptr));
  EXPECT_FALSE(bad[0].ok);
  EXPECT_EQ(bad[0].message, "subtotal must equal the sum of the item amounts");
  EXPECT_EQ(bad[0].detail, "items sum to 12.5, subtotal is 12");
  EXPECT_TRUE(bad[1].ok) << "12 + 1.25 = 13.25";
  EXPECT_TRUE(bad[2].ok && bad[2].skipped) << "no due date: skipped";
  EXPECT_TRUE(AnyRuleFailed(bad));
  EXPECT_EQ(bad[0].ToJson().dump(),
            R"({"name":"subtotal_matches_items","ok":false,"skipped":false,"severity":"error",)"
            R"("message":"subtotal must equal the sum of the item amounts",)"
            R"("detail":"items sum to 12.5, subtotal is 12"})");

  std::vector<RuleResult> late = (*rules)->Evaluate(Invoice(12.5, 13.75, "2025-12-31"));
  EXPECT_FALSE(late[2].ok);
  EXPECT_EQ(late[2].message, "rule \"dates_in_order\" does not hold");
}

TEST(Rules, AWarningDoesNotFailTheValue) {
  Result<std::unique_ptr<RuleSet>> rules = RuleSet::Parse(kInvoiceRules, "rules.yaml");
  ASSERT_TRUE(rules.ok());
  nlohmann::ordered_json empty = Invoice(0, 1.25, nullptr);
  empty["items"] = nlohmann::ordered_json::array();
  std::vector<RuleResult> r = (*rules)->Evaluate(empty);
  EXPECT_FALSE(r[3].ok);
  EXPECT_EQ(r[3].severity, "warning");
  EXPECT_FALSE(AnyRuleFailed(r));
}

TEST(Rules, ExpressionsThatAreNotOneBooleanFailTheirRule) {
  Result<std::unique_ptr<RuleSet>> rules = RuleSet::Parse(R"(version: 1
rules:
  - {name: number, expr: '.a'}
  - {name: two, expr: 'true, false'}
  - {name: error, expr: '.a | keys | length > 0'}
  - {name: none, expr: 'empty'}
)",
                                                          "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  std::vector<RuleResult> r = (*rules)->Evaluate({{"a", 5}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_NE(r[0].message.find("must yield one boolean, got 5"), std::string::npos) << r[0].message;
  EXPECT_NE(r[1].message.find("got 2 values"), std::string::npos) << r[1].message;
  EXPECT_NE(r[2].message.find("jq error"), std::string::npos) << r[2].message;
  EXPECT_NE(r[3].message.find("got 0 values"), std::string::npos) << r[3].message;
  for (const RuleResult& x : r) EXPECT_FALSE(x.ok);
}

TEST(Rules, BadFilesNameTheLineTheRuleAndTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"version: 1\nrules:\n  - name: a\n    expr: '.x ==='\n", "r.yaml:4:11 (rule \"a\", expr)"},
      {"version: 1\nrules:\n  - name: a\n    expr: 'input'\n", "`input` is not allowed"},
      {"version: 1\nrules:\n  - name: a\n    expr: '$ENV.HOME == \"\"'\n", "`$ENV` is not allowed"},
      {"version: 1\nrules:\n  - name: a\n    expr: 'true'\n    colour: red\n",
       "r.yaml:5:5: unknown key \"colour\""},
      {"version: 1\nrules:\n  - name: a\n    expr: 'true'\n  - name: a\n    expr: 'true'\n",
       "defined twice"},
      {"version: 1\nrules:\n  - name: a\n", "needs an `expr`"},
      {"version: 2\nrules: []\n", "`version: 1` is required"},
      {"rules: [\n", "r.yaml:"},
      {"version: 1\nrules:\n  - name: a\n    expr: 'true'\n    severity: fatal\n",
       "severity must be error or warning"},
      {"- 1\n", "expected a mapping"},
  };
  for (const auto& [yaml, expected] : cases) {
    Result<std::unique_ptr<RuleSet>> rules = RuleSet::Parse(yaml, "r.yaml");
    ASSERT_FALSE(rules.ok()) << yaml;
    EXPECT_NE(rules.status().message().find(expected), std::string::npos)
        << yaml << "\n-> " << rules.status().message();
  }
  // A string that merely mentions a refused name is fine.
  EXPECT_TRUE(
      RuleSet::Parse("version: 1\nrules:\n  - {name: a, expr: '.k != \"input\"'}\n", "r").ok());
  EXPECT_EQ(RuleSet::Load("/nonexistent/rules.yaml").status().code(), StatusCode::kNotFound);
}

// libjq 1.6 is not thread-safe; the RuleSet serializes it, so threads may share one.
TEST(Rules, ManyThreadsShareARuleSet) {
  Result<std::unique_ptr<RuleSet>> rules = RuleSet::Parse(kInvoiceRules, "rules.yaml");
  ASSERT_TRUE(rules.ok());
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const bool good = (i + t) % 2 == 0;
        std::vector<RuleResult> r =
            (*rules)->Evaluate(Invoice(good ? 12.5 : 12.0, good ? 13.75 : 13.25, nullptr));
        if (AnyRuleFailed(r) == good) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace gemma_local
