// core/json_access: typed reads return values or errors naming the path and the expected vs
// actual type, for both JSON flavours, and never throw whatever the value holds.
#include "core/json_access.h"

#include <gtest/gtest.h>

#include <string>

namespace gemma_local {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

TEST(JsonPathTest, KeysIndicesAndDocuments) {
  EXPECT_EQ(JsonPathKey("", "model"), "model");
  EXPECT_EQ(JsonPathKey("model", "vocab"), "model.vocab");
  EXPECT_EQ(JsonPathKey("tokenizer.json:", "model"), "tokenizer.json: model");
  EXPECT_EQ(JsonPathIndex("messages", 3), "messages[3]");
  EXPECT_EQ(JsonPathKey(JsonPathIndex("messages", 0), "role"), "messages[0].role");
}

TEST(JsonFindTest, MemberOrNullptrForAnyValue) {
  const json obj = {{"a", 1}, {"n", nullptr}};
  ASSERT_NE(JsonFind(obj, "a"), nullptr);
  EXPECT_EQ(*JsonFind(obj, "a"), 1);
  ASSERT_NE(JsonFind(obj, "n"), nullptr);  // present with null: found
  EXPECT_EQ(JsonFind(obj, "zz"), nullptr);
  for (const json& v : {json(nullptr), json(5), json("s"), json::array({1}), json(true)}) {
    EXPECT_EQ(JsonFind(v, "a"), nullptr) << v.dump();
  }
  const ordered_json ordered = {{"b", "x"}};
  ASSERT_NE(JsonFind(ordered, "b"), nullptr);
  EXPECT_EQ(*JsonFind(ordered, "b"), "x");
}

TEST(JsonGetTest, EachTypeReadsOnlyItself) {
  EXPECT_EQ(*JsonGet<std::string>(json("hi"), "p"), "hi");
  EXPECT_EQ(*JsonGet<int64_t>(json(-7), "p"), -7);
  EXPECT_EQ(*JsonGet<int64_t>(json(7u), "p"), 7);
  EXPECT_EQ(*JsonGet<double>(json(1.5), "p"), 1.5);
  EXPECT_EQ(*JsonGet<double>(json(3), "p"), 3.0);  // any number is a double
  EXPECT_EQ(*JsonGet<bool>(json(false), "p"), false);

  auto message = [](const auto& r) { return r.ok() ? std::string("<ok>") : r.status().message(); };
  EXPECT_EQ(message(JsonGet<std::string>(json(5), "m.name")),
            "m.name: expected a string, got number");
  EXPECT_EQ(message(JsonGet<int64_t>(json(1.5), "n")), "n: expected an integer, got number");
  EXPECT_EQ(message(JsonGet<int64_t>(json("1"), "n")), "n: expected an integer, got string");
  EXPECT_EQ(message(JsonGet<int64_t>(json(UINT64_MAX), "n")),
            "n: expected an integer that fits int64, got number");
  EXPECT_EQ(message(JsonGet<double>(json(nullptr), "x")), "x: expected a number, got null");
  EXPECT_EQ(message(JsonGet<bool>(json(1), "b")), "b: expected a boolean, got number");
  EXPECT_EQ(message(JsonGetObject(json::array(), "o")), "o: expected an object, got array");
  EXPECT_EQ(message(JsonGetArray(json::object(), "a")), "a: expected an array, got object");
  EXPECT_EQ(JsonGet<bool>(json(1), "b").status().code(), StatusCode::kCorruptData);
  EXPECT_EQ(JsonGet<bool>(json(1), "b", StatusCode::kInvalidArgument).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(JsonFieldTest, RequiredFieldsNameTheMember) {
  const ordered_json obj =
      ordered_json::parse(R"({"s": "x", "i": 2, "n": null, "o": {}, "a": []})");
  EXPECT_EQ(*JsonField<std::string>(obj, "s", "doc:"), "x");
  EXPECT_EQ(*JsonField<int64_t>(obj, "i", "doc:"), 2);
  EXPECT_EQ(*JsonObjectField(obj, "o", "doc:"), &obj["o"]);
  EXPECT_EQ(*JsonArrayField(obj, "a", "doc:"), &obj["a"]);
  EXPECT_EQ(JsonField<std::string>(obj, "zz", "doc:").status().message(), "doc: zz: missing");
  EXPECT_EQ(JsonField<std::string>(obj, "n", "m").status().message(),
            "m.n: expected a string, got null");
  EXPECT_EQ(JsonField<int64_t>(obj, "s", "m").status().message(),
            "m.s: expected an integer, got string");
  EXPECT_EQ(JsonObjectField(obj, "a", "m").status().message(),
            "m.a: expected an object, got array");
  EXPECT_EQ(JsonArrayField(obj, "zz", "m").status().message(), "m.zz: missing");
  // The container itself must be an object.
  EXPECT_EQ(JsonField<std::string>(ordered_json(3), "s", "m").status().message(),
            "m: expected an object, got number");
}

TEST(JsonFieldTest, OptionalFieldsDefaultOnAbsentOrNullOnly) {
  const json obj = json::parse(R"({"b": true, "n": null, "s": 5, "o": [1]})");
  EXPECT_EQ(*JsonOptionalField<bool>(obj, "b", false, "m"), true);
  EXPECT_EQ(*JsonOptionalField<bool>(obj, "zz", false, "m"), false);
  EXPECT_EQ(*JsonOptionalField<std::string>(obj, "n", "dflt", "m"), "dflt");
  EXPECT_EQ(JsonOptionalField<std::string>(obj, "s", "", "m").status().message(),
            "m.s: expected a string, got number");
  EXPECT_EQ(*JsonOptionalObjectField(obj, "zz", "m"), nullptr);
  EXPECT_EQ(*JsonOptionalArrayField(obj, "n", "m"), nullptr);
  EXPECT_EQ(*JsonOptionalArrayField(obj, "o", "m"), &obj["o"]);
  EXPECT_EQ(JsonOptionalObjectField(obj, "o", "m").status().message(),
            "m.o: expected an object, got array");
  EXPECT_FALSE(JsonOptionalField<bool>(json::array(), "b", false, "m").ok());
}

// A value nested `depth` arrays deep, built without recursion.
json Nested(size_t depth) {
  json v = 1;
  for (size_t i = 0; i < depth; ++i) {
    json outer = json::array();
    outer.push_back(std::move(v));  // moved, never copied (a copy would recurse)
    v = std::move(outer);
  }
  return v;
}

TEST(CheckJsonDepthTest, CountsContainerLevelsIteratively) {
  EXPECT_TRUE(CheckJsonDepth(json(1), 0, "v").ok());
  EXPECT_TRUE(CheckJsonDepth(json::array(), 1, "v").ok());
  EXPECT_FALSE(CheckJsonDepth(json::array(), 0, "v").ok());
  EXPECT_TRUE(CheckJsonDepth(Nested(64), 64, "v").ok());
  const Status deep = CheckJsonDepth(Nested(65), 64, "messages[0].content");
  EXPECT_EQ(deep.message(), "messages[0].content: nested deeper than 64 levels");
  // Far deeper than any recursive walk could survive.
  const json bomb = Nested(200000);
  EXPECT_FALSE(CheckJsonDepth(bomb, 1000, "v", StatusCode::kInvalidArgument).ok());
  EXPECT_EQ(JsonSnippet(bomb), "<deeply nested value>");
  const json wide = json::parse(R"({"a": [1, {"b": [[]]}], "c": {}})");
  EXPECT_TRUE(CheckJsonDepth(wide, 5, "v").ok());  // {} > [] > {} > [] > []
  EXPECT_FALSE(CheckJsonDepth(wide, 4, "v").ok());
}

TEST(JsonSnippetTest, CompactCutAndUtf8Safe) {
  EXPECT_EQ(JsonSnippet(json::parse(R"({"a": [1, 2]})")), R"({"a":[1,2]})");
  EXPECT_EQ(JsonSnippet(json(std::string(300, 'x')), 10), "\"xxxxxxxxx...");
  // Invalid UTF-8 would make a plain dump() throw.
  EXPECT_EQ(JsonSnippet(json(std::string("a\xFF"))), "\"a\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace gemma_local
