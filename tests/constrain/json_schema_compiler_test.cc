// The JSON Schema compiler: random walks through the masks of compiled schemas always end in a
// value that parses and that the post-generation validator accepts; numeric ranges are exact;
// format grammars only produce valid formats; unsupported keywords are refused with their
// pointer (or listed under best_effort); unsatisfiable schemas are errors.
#include "constrain/json_schema_compiler.h"

#include <gtest/gtest.h>

#include <random>

#include "constrain/formats.h"
#include "constrain/matcher.h"
#include "constrain/numeric_range.h"

namespace gemma_local::constrain {
namespace {

using ojson = nlohmann::ordered_json;

std::shared_ptr<const VocabIndex> Vocab() {
  static std::shared_ptr<const VocabIndex> vocab = [] {
    std::mt19937 rng(11);
    std::vector<std::string> bytes{""};  // id 0: the stop token
    for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
    static const char* kFragments[] = {
        "{\"", "\":", "\",",  "\"}",   "\"]",   "},{", "true", "false", "null", "12",  "0.",
        "-",   "\\n", "\\\"", "\\u00", "ab",    "é",   "😀",    "\"k",   "[]",   "{}",  "]]",
        "}}",  ",\"", "id",   "name",  "\":\"", "20",  "-0",   "@",     ".com", "http"};
    for (int i = 0; i < 800; ++i) {
      std::string s = kFragments[rng() % std::size(kFragments)];
      if (rng() % 2) s += kFragments[rng() % std::size(kFragments)];
      bytes.push_back(s);
    }
    std::vector<bool> excluded(bytes.size(), false);
    excluded[0] = true;
    return VocabIndex::FromTokens(bytes, excluded);
  }();
  return vocab;
}

// Walks the masks choosing random tokens, steering towards an end after `patience` steps by
// preferring the stop token and closing bytes. Returns the text, or nullopt if not finished.
std::optional<std::string> Walk(const CompiledSchema& c, std::mt19937& rng, int patience = 40) {
  auto vocab = Vocab();
  Matcher m(c.grammar, vocab, {0});
  TokenMask mask;
  std::string text;
  for (int step = 0; step < 3000; ++step) {
    Status s = m.FillMask(&mask);
    if (!s.ok()) {
      ADD_FAILURE() << s.ToString() << " after " << text;
      return std::nullopt;
    }
    int32_t pick = -1;
    if (step > patience) {
      for (char c : std::string("\"}]0")) {
        if (mask.Test(0)) {
          pick = 0;
          break;
        }
        const int32_t id = vocab->SingleByteToken(static_cast<uint8_t>(c));
        if (mask.Test(id) && rng() % 4 != 0) {
          pick = id;
          break;
        }
      }
    }
    if (pick < 0) {
      std::vector<int32_t> ids = mask.Ids();
      pick = ids[rng() % ids.size()];
    }
    if (pick == 0) {
      EXPECT_TRUE(m.Accept(0).ok());
      return text;
    }
    text += vocab->TokenBytes(pick);
    EXPECT_TRUE(m.Accept(pick).ok());
  }
  return std::nullopt;
}

Result<CompiledSchema> Compile(const char* schema, bool best_effort = false) {
  SchemaCompileOptions options;
  options.best_effort = best_effort;
  return CompileJsonSchema(ojson::parse(schema), options);
}

TEST(JsonSchemaCompiler, RandomWalksProduceValidValues) {
  const char* kSchemas[] = {
      R"({"type": "object", "properties": {"invoice_number": {"type": "string", "minLength": 1},
          "date": {"type": "string", "format": "date"},
          "total": {"type": "number", "minimum": 0},
          "currency": {"enum": ["EUR", "USD", "GBP"]},
          "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "object",
            "properties": {"qty": {"type": "integer", "minimum": 1, "maximum": 99},
                           "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01}},
            "required": ["qty", "price"]}}},
          "required": ["invoice_number", "total", "items"], "additionalProperties": false})",
      R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
          "children": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/node"}}},
          "required": ["v"]}}, "$ref": "#/$defs/node"})",
      R"({"anyOf": [{"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}, {"type": "integer",
          "minimum": -50, "maximum": 50}, {"type": "null"}]})",
      R"({"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "number"}},
          "required": ["kind"]}, {"type": "object", "properties": {"kind": {"const": "b"}},
          "required": ["kind"]}]})",
      R"({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
          {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]})",
      R"({"type": "object", "properties": {"email": {"type": "string", "format": "email"},
          "site": {"type": "string", "format": "uri"}, "id": {"type": "string", "format": "uuid"},
          "at": {"type": "string", "format": "date-time"}, "t": {"type": "string", "format": "time"}},
          "required": ["email", "site", "id", "at", "t"]})",
      R"({"type": "object", "minProperties": 2, "maxProperties": 3, "properties": {"a": {"type":
          "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}, "d": {"type": "integer"}}})",
      R"({"type": "object", "additionalProperties": {"type": "integer"}, "properties": {"fixed":
          {"type": "boolean"}}, "maxProperties": 4})",
      R"({"type": "array", "prefixItems": [{"type": "string", "maxLength": 3}, {"type": "number"}],
          "items": false, "minItems": 2})",
      R"({"type": ["string", "null"], "maxLength": 5, "pattern": "a"})",
      R"({"type": "object", "properties": {"note": {"type": "string", "nullable": true},
          "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y\"z", "ü"]},
          "uniqueItems": true}}, "required": ["note", "tags"]})",
      R"({"type": "number", "minimum": -2.5, "maximum": 7})",
      R"({"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 1000})",
      R"(true)",
      R"({"type": "object", "properties": {"a/b~c": {"const": {"k": [1, 2]}}}, "required": ["a/b~c"]})",
  };
  std::mt19937 rng(17);
  for (const char* schema : kSchemas) {
    Result<CompiledSchema> c = Compile(schema);
    ASSERT_TRUE(c.ok()) << schema << "\n" << c.status().ToString();
    int finished = 0;
    for (int walk = 0; walk < 40; ++walk) {
      std::optional<std::string> text = Walk(*c, rng);
      if (!text) continue;
      ++finished;
      ASSERT_TRUE(nlohmann::json::accept(*text)) << schema << "\n" << *text;
      const std::vector<SchemaError> errors = c->validator->Validate(nlohmann::json::parse(*text));
      std::string why;
      for (const auto& e : errors)
        why += e.instance_pointer + " " + e.schema_pointer + ": " + e.message + "\n";
      // A oneOf or uniqueItems value may fail (validated after); nothing else may.
      if (c->validated_after.empty() &&
          std::string(schema).find("uniqueItems") == std::string::npos) {
        EXPECT_TRUE(errors.empty()) << schema << "\n" << *text << "\n" << why;
      }
    }
    EXPECT_GE(finished, 30) << schema;
  }
}

// The shortest-completion length is exact: from random points of random walks, forcing the
// steering token reaches a complete value in exactly that many bytes.
TEST(JsonSchemaCompiler, CompletionBytesAreExact) {
  const char* kSchemas[] = {
      R"({"type": "object", "properties": {"a": {"type": "string", "minLength": 2},
          "b": {"type": "array", "minItems": 2, "items": {"type": "integer", "minimum": 10}},
          "c": {"enum": ["xyz", 1234]}}, "required": ["a", "b", "c"]})",
      R"({"$defs": {"n": {"type": "object", "properties": {"k": {"$ref": "#/$defs/n"},
          "v": {"type": "number", "exclusiveMinimum": 0}}, "required": ["v"]}}, "$ref": "#/$defs/n"})",
      R"({"type": "string", "format": "date-time"})", R"(true)"};
  std::mt19937 rng(29);
  auto vocab = Vocab();
  for (const char* schema : kSchemas) {
    Result<CompiledSchema> c = Compile(schema);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    for (int walk = 0; walk < 20; ++walk) {
      Matcher m(c->grammar, vocab, {0});
      TokenMask mask;
      std::string text;
      const int prefix = static_cast<int>(rng() % 12);
      for (int step = 0; step < prefix; ++step) {
        ASSERT_TRUE(m.FillMask(&mask).ok());
        mask.Reset(0);
        std::vector<int32_t> ids = mask.Ids();
        if (ids.empty()) break;
        const int32_t pick = ids[rng() % ids.size()];
        text += vocab->TokenBytes(pick);
        ASSERT_TRUE(m.Accept(pick).ok());
      }
      const int64_t need = m.CompletionBytes();
      ASSERT_LT(need, Grammar::kNoYield) << text;
      for (int64_t k = 0; k < need; ++k) {
        ASSERT_TRUE(m.FillMask(&mask).ok());
        mask.Reset(0);  // a byte, not the stop token
        const int32_t steer = m.SteerToken(mask);
        ASSERT_GE(steer, 0) << text;
        ASSERT_EQ(m.CompletionBytesAfter(steer), need - k - 1) << schema << "\n" << text;
        text += vocab->TokenBytes(steer);
        ASSERT_TRUE(m.Accept(steer).ok());
      }
      EXPECT_TRUE(m.Complete()) << schema << "\n" << text;
      const std::vector<SchemaError> errors = c->validator->Validate(nlohmann::json::parse(text));
      EXPECT_TRUE(errors.empty()) << text;
    }
  }
}

// Review findings: recursion through an annotated allOf alias (pydantic's shape) compiles and
// recursion through a merged $ref is refused, malformed schemas are errors, enum values that
// break sibling keywords are dropped, merges whose meaning crosses parts are refused, and long
// arrays and objects cost the parser linear time.
TEST(JsonSchemaCompiler, HostileAndTrickySchemas) {
  std::mt19937 rng(31);
  Result<CompiledSchema> alias = Compile(R"({"$ref": "#/definitions/N", "definitions": {"N": {
      "type": "object", "properties": {"v": {"type": "integer"},
      "c": {"allOf": [{"$ref": "#/definitions/N"}], "description": "child"}}, "required": ["v"]}}})");
  ASSERT_TRUE(alias.ok()) << alias.status().ToString();
  for (int i = 0; i < 20; ++i) {
    if (std::optional<std::string> text = Walk(*alias, rng)) {
      EXPECT_TRUE(alias->validator->IsValid(nlohmann::json::parse(*text))) << *text;
    }
  }
  Result<CompiledSchema> merged_ref = Compile(R"({"$defs": {"N": {"type": "object",
      "properties": {"c": {"$ref": "#/$defs/N", "minProperties": 0}}}}, "$ref": "#/$defs/N"})");
  ASSERT_FALSE(merged_ref.ok());
  EXPECT_EQ(merged_ref.status().code(), StatusCode::kUnsupported) << merged_ref.status().ToString();

  for (const char* malformed :
       {R"({"type": 5})", R"({"required": [1]})", R"({"pattern": 1})", R"({"format": 1})",
        R"({"minItems": -1})", R"({"type": "string", "minLength": 1e300})",
        R"({"allOf": [{"minimum": "x"}, {"minimum": 1}]})"}) {
    Result<CompiledSchema> r = Compile(malformed);
    if (r.ok()) continue;  // some are merely odd; what matters is no exception and no crash
    EXPECT_NE(r.status().code(), StatusCode::kOk) << malformed;
  }
  EXPECT_FALSE(Compile(R"({"allOf": [{"enum": [1, 2]}, {"const": 3}]})").ok());
  Result<CompiledSchema> filtered = Compile(R"({"enum": ["a", "toolong", 7], "maxLength": 3})");
  ASSERT_TRUE(filtered.ok()) << filtered.status().ToString();
  for (int i = 0; i < 20; ++i) {
    std::optional<std::string> text = Walk(*filtered, rng);
    ASSERT_TRUE(text.has_value());
    EXPECT_TRUE(*text == "\"a\"" || *text == "7") << *text;
  }
  for (const char* crossing :
       {R"({"allOf": [{"properties": {"x": {}}, "additionalProperties": {"type": "string"}},
                      {"properties": {"y": {"type": "integer"}}}]})",
        R"({"allOf": [{"prefixItems": [{"type": "integer"}]}, {"items": {"type": "string"}}]})"}) {
    Result<CompiledSchema> r = Compile(crossing);
    ASSERT_FALSE(r.ok()) << crossing;
    EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().ToString();
  }

  auto vocab = Vocab();
  for (const char* open : {R"({"type": "array", "items": {"type": "integer"}})", "true",
                           R"({"type": "object", "additionalProperties": {"type": "integer"}})"}) {
    Result<CompiledSchema> c = Compile(open);
    ASSERT_TRUE(c.ok());
    Matcher m(c->grammar, vocab, {0});
    const bool object = std::string(open).find("object") != std::string::npos;
    std::string text = object ? "{" : "[";
    for (int i = 0; i < 3000; ++i) {
      text += i ? "," : "";
      text += object ? "\"k" + std::to_string(i) + "\":1" : "1";
    }
    text += object ? "}" : "]";
    ASSERT_TRUE(m.AcceptBytes(text).ok()) << open;
    EXPECT_TRUE(m.Complete()) << open;
    EXPECT_EQ(m.CompletionBytes(), 0);
  }
}

TEST(JsonSchemaCompiler, NumericRangesAreExact) {
  RegexArena arena;
  const int64_t bounds[] = {-120, -100, -9, -1, 0, 1, 7, 10, 99, 100, 250};
  for (int64_t lo : bounds) {
    for (int64_t hi : bounds) {
      const RegexId r = IntegerRange(arena, lo, hi);
      for (int64_t v = -300; v <= 300; ++v) {
        ASSERT_EQ(arena.Matches(r, std::to_string(v)), v >= lo && v <= hi)
            << lo << ".." << hi << " " << v;
      }
      EXPECT_FALSE(arena.Matches(r, "-0"));
      EXPECT_FALSE(arena.Matches(r, "007"));
    }
  }
  const char* samples[] = {"0",    "-0.5",  "0.5", "1",       "1.0",  "1.5", "2",
                           "2.00", "2.01",  "-2",  "-2.0",    "-2.5", "-3",  "10",
                           "9.99", "-1.25", "0.0", "3.14159", "-0.0"};
  const std::optional<Bound> options[] = {std::nullopt,   Bound{-2, true}, Bound{-2, false},
                                          Bound{0, true}, Bound{0, false}, Bound{2, true},
                                          Bound{2, false}};
  for (const auto& lower : options) {
    for (const auto& upper : options) {
      const RegexId r = NumberRange(arena, lower, upper, 5);
      for (const char* s : samples) {
        const double x = std::stod(s);
        bool in = true;
        if (lower)
          in = in && (lower->inclusive ? x >= static_cast<double>(lower->value)
                                       : x > static_cast<double>(lower->value));
        if (upper)
          in = in && (upper->inclusive ? x <= static_cast<double>(upper->value)
                                       : x < static_cast<double>(upper->value));
        if (std::string(s) == "-0.0") in = false;  // not canonical: never produced
        EXPECT_EQ(arena.Matches(r, s), in)
            << s << " lower " << (lower ? lower->value : 999)
            << (lower && lower->inclusive ? "i" : "x") << " upper " << (upper ? upper->value : 999);
      }
    }
  }
}

TEST(JsonSchemaCompiler, FormatGrammarsProduceValidFormats) {
  std::mt19937 rng(23);
  for (const char* format : {"date", "time", "date-time", "email", "uuid", "uri"}) {
    const std::string schema = std::string(R"({"type": "string", "format": ")") + format + "\"}";
    Result<CompiledSchema> c = Compile(schema.c_str());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    for (int i = 0; i < 40; ++i) {
      std::optional<std::string> text = Walk(*c, rng, 60);
      if (!text) continue;
      const std::string value = nlohmann::json::parse(*text).get<std::string>();
      EXPECT_TRUE(MatchesFormat(format, value)) << format << ": " << value;
    }
  }
}

TEST(JsonSchemaCompiler, RefusesWhatItCannotEnforceWithThePointer) {
  struct Case {
    const char* schema;
    const char* keyword;
    const char* pointer;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"type": "integer", "minimun": 1})", "minimun", ""},
           {R"({"properties": {"a/b~c": {"unevaluatedProperties": false}}})",
            "unevaluatedProperties", "/properties/a~1b~0c"},
           {R"({"items": {"$dynamicRef": "#x"}})", "$dynamicRef", "/items"},
           {R"({"$ref": "https://example.com/s.json"})", "$ref", ""},
           {R"({"properties": {"h": {"type": "string", "format": "hostname"}}})", "format",
            "/properties/h"},
           {R"j({"type": "string", "pattern": "a(?=b)"})j", "pattern", ""},
           {R"({"anyOf": [{"type": "string"}], "oneOf": [{"type": "string"}]})", "oneOf", ""},
       }) {
    Result<CompiledSchema> r = Compile(c.schema);
    ASSERT_FALSE(r.ok()) << c.schema;
    EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().ToString();
    const std::string expected =
        std::string("keyword \"") + c.keyword + "\" at \"" + c.pointer + "\"";
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << r.status().message() << "\nexpected: " << expected;
  }
  Result<CompiledSchema> lenient = Compile(R"({"type": "integer", "minimun": 1})", true);
  ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
  ASSERT_EQ(lenient->not_enforced.size(), 1u);
  EXPECT_EQ(lenient->not_enforced[0].keyword, "minimun");

  for (const char* unsat :
       {R"(false)", R"({"type": "array", "minItems": 3, "maxItems": 2})",
        R"({"type": "string", "enum": [1, 2]})",
        R"({"type": "string", "minLength": 3, "maxLength": 2})",
        R"({"type": "integer", "minimum": 5, "maximum": 4})",
        R"({"type": "object", "required": ["a"], "additionalProperties": false})"}) {
    Result<CompiledSchema> r = Compile(unsat);
    ASSERT_FALSE(r.ok()) << unsat;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
        << unsat << ": " << r.status().ToString();
  }
}

}  // namespace
}  // namespace gemma_local::constrain
