// Every keyword of JSON Schema draft 2020-12 (and the older drafts' names people still write) has
// one test: enforced while generating, checked after generating (reported in validated_after with
// its pointer), an annotation, or refused (kUnsupported naming the keyword and its pointer, and
// under best_effort reported in not_enforced). None is ever silently ignored.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gemma_local/constraint.h"

namespace gemma_local {
namespace {

using Json = nlohmann::ordered_json;

enum class How { kGrammar, kAfter, kAnnotation, kRefused };

struct KeywordCase {
  const char* keyword;
  const char* schema;  // {"properties": {"p/~q": <schema>}} is what runs: the pointer has escapes
  How how;
  bool root = false;  // runs as the root schema instead (base URIs and references)
};

std::ostream& operator<<(std::ostream& os, const KeywordCase& c) { return os << c.keyword; }

constexpr const char* kPointer = "/properties/p~1~0q";

const KeywordCase kCases[] = {
    // Core vocabulary.
    {"$schema", R"({"$schema": "https://json-schema.org/draft/2020-12/schema"})", How::kAnnotation},
    {"$id", R"({"$id": "https://example.com/item", "type": "integer"})", How::kAnnotation, true},
    {"$id (nested)", R"({"$id": "item"})", How::kRefused},
    {"$ref", R"({"$ref": "#/$defs/x", "$defs": {"x": {"type": "integer"}}})", How::kGrammar, true},
    {"$defs", R"({"$defs": {"x": {"type": "integer"}}, "type": "integer"})", How::kGrammar, true},
    {"$comment", R"({"$comment": "note", "type": "integer"})", How::kAnnotation},
    {"$anchor", R"({"$anchor": "a"})", How::kRefused},
    {"$dynamicRef", R"({"$dynamicRef": "#a"})", How::kRefused},
    {"$dynamicAnchor", R"({"$dynamicAnchor": "a"})", How::kRefused},
    {"$vocabulary", R"({"$vocabulary": {}})", How::kRefused},
    // Applicators.
    {"allOf", R"({"allOf": [{"type": "integer"}]})", How::kGrammar},
    {"anyOf", R"({"anyOf": [{"type": "integer"}, {"type": "string"}]})", How::kGrammar},
    // The grammar allows any branch; that exactly one matches is checked after.
    {"oneOf", R"({"oneOf": [{"type": "integer"}, {"type": "string"}]})", How::kAfter},
    {"not", R"({"type": "integer", "not": {"const": 3}})", How::kAfter},
    {"if", R"({"type": "integer", "if": {"minimum": 3}, "then": {"maximum": 9}})", How::kAfter},
    {"then", R"({"type": "integer", "if": {"minimum": 3}, "then": {"maximum": 9}})", How::kAfter},
    {"else", R"({"type": "integer", "if": {"minimum": 3}, "else": {"maximum": 9}})", How::kAfter},
    {"dependentSchemas", R"({"type": "object", "dependentSchemas": {"a": {"required": ["b"]}}})",
     How::kAfter},
    {"prefixItems", R"({"type": "array", "prefixItems": [{"type": "integer"}]})", How::kGrammar},
    {"items", R"({"type": "array", "items": {"type": "integer"}})", How::kGrammar},
    {"contains", R"({"type": "array", "contains": {"type": "integer"}})", How::kAfter},
    {"properties", R"({"type": "object", "properties": {"a": {"type": "integer"}}})",
     How::kGrammar},
    {"patternProperties", R"({"type": "object", "patternProperties": {"^x": {}}})", How::kAfter},
    {"additionalProperties", R"({"type": "object", "additionalProperties": false})", How::kGrammar},
    {"propertyNames", R"({"type": "object", "propertyNames": {"maxLength": 3}})", How::kAfter},
    // Unevaluated.
    {"unevaluatedItems", R"({"type": "array", "unevaluatedItems": false})", How::kRefused},
    {"unevaluatedProperties", R"({"type": "object", "unevaluatedProperties": false})",
     How::kRefused},
    // Validation.
    {"type", R"({"type": "integer"})", How::kGrammar},
    {"const", R"({"const": 3})", How::kGrammar},
    {"enum", R"({"enum": [1, "a"]})", How::kGrammar},
    {"multipleOf", R"({"type": "integer", "multipleOf": 1})", How::kGrammar},
    {"maximum", R"({"type": "integer", "maximum": 9})", How::kGrammar},
    {"exclusiveMaximum", R"({"type": "integer", "exclusiveMaximum": 9})", How::kGrammar},
    {"minimum", R"({"type": "integer", "minimum": 1})", How::kGrammar},
    {"exclusiveMinimum", R"({"type": "integer", "exclusiveMinimum": 1})", How::kGrammar},
    {"maxLength", R"({"type": "string", "maxLength": 4})", How::kGrammar},
    {"minLength", R"({"type": "string", "minLength": 1})", How::kGrammar},
    {"pattern", R"({"type": "string", "pattern": "^a+$"})", How::kGrammar},
    {"maxItems", R"({"type": "array", "maxItems": 2})", How::kGrammar},
    {"minItems", R"({"type": "array", "minItems": 1})", How::kGrammar},
    {"uniqueItems", R"({"type": "array", "uniqueItems": true})", How::kAfter},
    {"maxContains", R"({"type": "array", "contains": {}, "maxContains": 2})", How::kAfter},
    {"minContains", R"({"type": "array", "contains": {}, "minContains": 1})", How::kAfter},
    {"maxProperties", R"({"type": "object", "maxProperties": 2})", How::kGrammar},
    {"minProperties", R"({"type": "object", "minProperties": 1})", How::kGrammar},
    {"required", R"({"type": "object", "properties": {"a": {}}, "required": ["a"]})",
     How::kGrammar},
    {"dependentRequired", R"({"type": "object", "dependentRequired": {"a": ["b"]}})", How::kAfter},
    // Format annotation (the checked formats are enforced; others are refused).
    {"format", R"({"type": "string", "format": "date"})", How::kGrammar},
    {"format (hostname)", R"({"type": "string", "format": "hostname"})", How::kRefused},
    // OpenAPI's numeric formats: int32/int64 make a number an integer (int32 also bounds it).
    {"format (int32)", R"({"type": "number", "format": "int32"})", How::kGrammar},
    {"format (int64 on a string)", R"({"type": "string", "format": "int64"})", How::kRefused},
    // Content and meta-data.
    {"contentEncoding", R"({"type": "string", "contentEncoding": "base64"})", How::kAnnotation},
    {"contentMediaType", R"({"type": "string", "contentMediaType": "text/html"})",
     How::kAnnotation},
    {"contentSchema", R"({"type": "string", "contentSchema": {}})", How::kAnnotation},
    {"title", R"({"title": "t", "type": "integer"})", How::kAnnotation},
    {"description", R"({"description": "d", "type": "integer"})", How::kAnnotation},
    {"default", R"({"default": 1, "type": "integer"})", How::kAnnotation},
    {"deprecated", R"({"deprecated": true, "type": "integer"})", How::kAnnotation},
    {"readOnly", R"({"readOnly": true, "type": "integer"})", How::kAnnotation},
    {"writeOnly", R"({"writeOnly": true, "type": "integer"})", How::kAnnotation},
    {"examples", R"({"examples": [1], "type": "integer"})", How::kAnnotation},
    // Older drafts and OpenAPI.
    {"definitions", R"({"definitions": {"x": {}}, "type": "integer"})", How::kGrammar, true},
    {"nullable", R"({"type": "integer", "nullable": true})", How::kGrammar},
    {"example", R"({"example": 1, "type": "integer"})", How::kAnnotation},
    {"x-extension", R"({"x-order": 1, "type": "integer"})", How::kAnnotation},
    {"dependencies", R"({"type": "object", "dependencies": {"a": ["b"]}})", How::kRefused},
    {"additionalItems", R"({"type": "array", "additionalItems": false})", How::kRefused},
    {"$recursiveRef", R"({"$recursiveRef": "#"})", How::kRefused},
    {"$recursiveAnchor", R"({"$recursiveAnchor": true})", How::kRefused},
    {"id", R"({"id": "draft4"})", How::kRefused},
    {"typo", R"({"type": "string", "maxlength": 3})", How::kRefused},
};

class KeywordCoverage : public ::testing::TestWithParam<KeywordCase> {};

// The keyword's name in the reports ("format (hostname)" -> "format", "typo" -> "maxlength").
std::string Reported(const KeywordCase& c) {
  const std::string k = c.keyword;
  if (k == "typo") return "maxlength";
  if (k == "x-extension") return "x-order";
  return k.substr(0, k.find(' '));
}

bool Lists(const std::vector<ConstraintIssue>& issues, const std::string& keyword,
           const std::string& pointer) {
  for (const ConstraintIssue& i : issues) {
    if (i.keyword == keyword && i.pointer.rfind(pointer, 0) == 0) return true;
  }
  return false;
}

TEST_P(KeywordCoverage, IsEnforcedCheckedAnnotationOrRefusedNeverIgnored) {
  const KeywordCase& c = GetParam();
  Json inner = Json::parse(c.schema);
  const Json schema = c.root ? inner
                             : Json{{"type", "object"},
                                    {"properties", {{"p/~q", inner}}},
                                    {"additionalProperties", false}};
  const std::string pointer = c.root ? "" : kPointer;
  const std::string keyword = Reported(c);
  Result<ConstraintReport> strict = InspectConstraint(Constraint::JsonSchema(schema));
  Result<ConstraintReport> lenient = InspectConstraint(Constraint::JsonSchema(schema, true));
  switch (c.how) {
    case How::kRefused: {
      ASSERT_FALSE(strict.ok()) << c.schema;
      EXPECT_EQ(strict.status().code(), StatusCode::kUnsupported);
      const std::string expected = "keyword \"" + keyword + "\" at \"" + pointer;
      EXPECT_NE(strict.status().message().find(expected), std::string::npos)
          << strict.status().message() << "\nexpected: " << expected;
      ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
      EXPECT_TRUE(Lists(lenient->not_enforced, keyword, pointer)) << "best_effort reports it";
      break;
    }
    case How::kAfter:
      ASSERT_TRUE(strict.ok()) << strict.status().ToString();
      EXPECT_TRUE(Lists(strict->validated_after, keyword, pointer)) << "reported as checked after";
      EXPECT_TRUE(strict->not_enforced.empty());
      break;
    case How::kGrammar:
    case How::kAnnotation:
      ASSERT_TRUE(strict.ok()) << strict.status().ToString();
      EXPECT_FALSE(Lists(strict->validated_after, keyword, pointer));
      EXPECT_TRUE(strict->not_enforced.empty());
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Draft2020, KeywordCoverage, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<KeywordCase>& info) {
                           // "$id" and "id" differ only in the "$": spell it out.
                           std::string name;
                           for (const char* p = info.param.keyword; *p; ++p) {
                             if (std::isalnum(static_cast<unsigned char>(*p))) name += *p;
                             if (*p == '$') name += "Dollar";
                           }
                           return name;
                         });

}  // namespace
}  // namespace gemma_local
