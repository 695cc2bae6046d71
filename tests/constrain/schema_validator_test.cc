// The post-generation validator against the official JSON-Schema-Test-Suite (draft 2020-12,
// ../shared/testdata/json-schema-test-suite): every case whose schema it compiles must be
// decided as the suite says; a schema it refuses must be refused for a keyword it does not
// enforce (fail closed), never silently half-checked.
#include "constrain/schema_validator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_support.h"

namespace gemma_local::constrain {
namespace {

TEST(SchemaValidator, BasicsAndFailClosed) {
  auto v = SchemaValidator::Compile(nlohmann::json::parse(R"({
    "type": "object", "required": ["total"], "additionalProperties": false,
    "properties": {"total": {"type": "number", "minimum": 0},
                   "items": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
    "$defs": {"item": {"type": "object", "properties": {"qty": {"type": "integer"}}}}})"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->IsValid(nlohmann::json::parse(R"({"total": 3, "items": [{"qty": 2}]})")));
  std::vector<SchemaError> e =
      v->Validate(nlohmann::json::parse(R"({"total": -1, "items": [{"qty": 2.5}], "x": 1})"));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].instance_pointer, "/items/0/qty");
  auto refused = SchemaValidator::Compile(
      nlohmann::json::parse(R"({"properties": {"a": {"unevaluatedProperties": false}}})"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(refused.status().message().find("unevaluatedProperties at /properties/a/"),
            std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(SchemaValidator::Compile(nlohmann::json::parse(R"({"minimun": 1})")).ok())
      << "a misspelt keyword is refused, not ignored";
}

// `pattern` runs in linear time: a pattern that makes backtracking engines exponential is an
// ordinary check here (std::regex would not finish this within the test's lifetime).
TEST(SchemaValidator, HostilePatternsRunInLinearTime) {
  auto v = SchemaValidator::Compile(
      nlohmann::json::parse(R"({"type": "string", "pattern": "^(a+)+$"})"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_FALSE(v->IsValid(std::string(5000, 'a') + "b"));
  EXPECT_TRUE(v->IsValid(std::string(5000, 'a')));
}

TEST(SchemaValidator, OfficialSuiteDraft2020) {
  std::optional<std::string> shared = testing::SharedDir();
  const std::string dir =
      shared ? *shared + "/testdata/json-schema-test-suite/tests/draft2020-12" : "";
  GL_REQUIRE_REFERENCE(shared && std::filesystem::is_directory(dir),
                       "../shared/testdata/json-schema-test-suite is not here");
  int decided = 0, refused = 0, wrong = 0;
  std::map<std::string, int> refused_by_file;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const nlohmann::json groups = nlohmann::json::parse(in);
    const std::string file = entry.path().filename().string();
    for (const auto& group : groups) {
      Result<SchemaValidator> v = SchemaValidator::Compile(group["schema"]);
      if (!v.ok()) {
        refused += static_cast<int>(group["tests"].size());
        ++refused_by_file[file];
        EXPECT_EQ(v.status().code(), StatusCode::kUnsupported)
            << file << ": " << group["description"] << ": " << v.status().ToString();
        continue;
      }
      for (const auto& t : group["tests"]) {
        ++decided;
        if (v->IsValid(t["data"]) != t["valid"].get<bool>()) {
          ++wrong;
          ADD_FAILURE() << file << ": " << group["description"].get<std::string>() << " / "
                        << t["description"].get<std::string>() << ": expected "
                        << (t["valid"].get<bool>() ? "valid" : "invalid");
        }
      }
    }
  }
  std::string summary;
  for (const auto& [file, n] : refused_by_file) summary += " " + file + ":" + std::to_string(n);
  std::printf("suite: %d cases decided, %d wrong, %d in refused schemas (groups by file:%s)\n",
              decided, wrong, refused, summary.c_str());
  EXPECT_GT(decided, 800);
}

// Format assertion (on for structured output): the suite's optional format tests for the formats
// the validator checks, all decided as the suite says; other formats are refused.
TEST(SchemaValidator, FormatsAsTheSuiteSays) {
  std::optional<std::string> shared = testing::SharedDir();
  const std::string dir =
      shared ? *shared + "/testdata/json-schema-test-suite/tests/draft2020-12/optional/format" : "";
  GL_REQUIRE_REFERENCE(shared && std::filesystem::is_directory(dir),
                       "../shared/testdata/json-schema-test-suite is not here");
  ValidatorOptions options;
  options.assert_format = true;
  int decided = 0;
  for (const char* format : {"date", "time", "date-time", "uuid", "email", "uri"}) {
    std::ifstream in(dir + "/" + format + ".json");
    const nlohmann::json groups = nlohmann::json::parse(in);
    for (const auto& group : groups) {
      Result<SchemaValidator> v = SchemaValidator::Compile(group["schema"], options);
      ASSERT_TRUE(v.ok()) << format << ": " << v.status().ToString();
      for (const auto& t : group["tests"]) {
        ++decided;
        EXPECT_EQ(v->IsValid(t["data"]), t["valid"].get<bool>())
            << format << ": " << t["description"].get<std::string>() << ": " << t["data"].dump();
      }
    }
  }
  EXPECT_GT(decided, 250);
  EXPECT_FALSE(
      SchemaValidator::Compile(nlohmann::json::parse(R"({"format": "hostname"})"), options).ok());
}

}  // namespace
}  // namespace gemma_local::constrain
