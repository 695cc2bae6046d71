// Keyword classification, normalisation and allOf merging for the JSON Schema compiler.
#include <algorithm>
#include <set>

#include "constrain/formats.h"
#include "constrain/json_schema_internal.h"

namespace gemma_local::constrain::schema_internal {
namespace {

const std::set<std::string, std::less<>>& Annotations() {
  static const std::set<std::string, std::less<>> k = {
      "$schema",       "$id",       "$comment",         "title",
      "description",   "default",   "examples",         "deprecated",
      "readOnly",      "writeOnly", "contentMediaType", "contentEncoding",
      "contentSchema", "$defs",     "definitions"};
  return k;
}
// OpenAPI / vendor annotations the validator does not know: dropped from the normalised schema.
bool IsForeignAnnotation(std::string_view key) {
  return key == "example" || key == "discriminator" || key == "externalDocs" || key == "xml" ||
         key.substr(0, 2) == "x-";
}
const std::set<std::string, std::less<>>& GrammarKeywords() {
  static const std::set<std::string, std::less<>> k = {"type",
                                                       "enum",
                                                       "const",
                                                       "properties",
                                                       "required",
                                                       "additionalProperties",
                                                       "items",
                                                       "prefixItems",
                                                       "minItems",
                                                       "maxItems",
                                                       "minLength",
                                                       "maxLength",
                                                       "pattern",
                                                       "format",
                                                       "minimum",
                                                       "maximum",
                                                       "exclusiveMinimum",
                                                       "exclusiveMaximum",
                                                       "multipleOf",
                                                       "minProperties",
                                                       "maxProperties",
                                                       "anyOf",
                                                       "oneOf",
                                                       "allOf",
                                                       "$ref"};
  return k;
}
const std::set<std::string, std::less<>>& ValidatedKeywords() {
  static const std::set<std::string, std::less<>> k = {"uniqueItems",
                                                       "not",
                                                       "if",
                                                       "then",
                                                       "else",
                                                       "dependentRequired",
                                                       "dependentSchemas",
                                                       "contains",
                                                       "minContains",
                                                       "maxContains",
                                                       "patternProperties",
                                                       "propertyNames"};
  return k;
}

}  // namespace

KeywordClass Classify(std::string_view key) {
  if (Annotations().count(key) != 0 || IsForeignAnnotation(key)) return KeywordClass::kAnnotation;
  if (GrammarKeywords().count(key) != 0) return KeywordClass::kGrammar;
  if (ValidatedKeywords().count(key) != 0) return KeywordClass::kValidated;
  return KeywordClass::kRefused;
}

Status Refuse(const std::string& keyword, const std::string& pointer, const std::string& why) {
  return UnsupportedError("JSON Schema keyword \"" + keyword + "\" at \"" + pointer +
                          "\" is not supported" + (why.empty() ? "" : ": " + why) +
                          " (best_effort would ignore it)");
}

Status Unsatisfiable(const std::string& pointer, const std::string& why) {
  return InvalidArgumentError("JSON Schema at \"" + pointer + "\" allows no value: " + why);
}

namespace {

// OpenAPI's numeric formats (what ajv-formats checks): int32 is an integer in [-2^31, 2^31 - 1],
// int64 an integer, float and double any number.
bool IsOpenApiNumericFormat(const ojson& format) {
  const std::string& f = format.get_ref<const std::string&>();
  return f == "int32" || f == "int64" || f == "float" || f == "double";
}

// Rewrites `format` into keywords the compiler enforces. It constrains numbers only, so a schema
// whose `type` allows other kinds too would need a union the format cannot say: refused (under
// best_effort, dropped and reported like any refused keyword).
Status ApplyNumericFormat(const std::string& format, const std::string& ptr, bool best_effort,
                          NormalizeReport* report, ojson* out) {
  if (format == "float" || format == "double") return Status::Ok();
  auto type = out->find("type");
  if (type == out->end() || !(*type == "integer" || *type == "number")) {
    const std::string why =
        "format \"" + format + "\" is supported with \"type\": \"integer\" or \"number\"";
    if (!best_effort) return Refuse("format", ptr, why);
    report->not_enforced.push_back({"format", ptr, why});
    return Status::Ok();
  }
  *type = "integer";
  if (format == "int32") {
    constexpr double kMin = -2147483648.0, kMax = 2147483647.0;
    auto lo = out->find("minimum");
    if (lo == out->end() || !lo->is_number() || lo->get<double>() < kMin)
      (*out)["minimum"] = -2147483648LL;
    auto hi = out->find("maximum");
    if (hi == out->end() || !hi->is_number() || hi->get<double>() > kMax)
      (*out)["maximum"] = 2147483647LL;
  }
  return Status::Ok();
}

}  // namespace

Result<ojson> Normalize(const ojson& s, const std::string& ptr, bool best_effort,
                        NormalizeReport* report, int depth) {
  // The compiler and validator recurse along the schema: bound it (the validator's limit).
  if (depth > kMaxSchemaDepth) {
    return InvalidArgumentError("JSON Schema at \"" + ptr + "\" is nested deeper than " +
                                std::to_string(kMaxSchemaDepth) + " levels");
  }
  if (s.is_boolean()) return s;
  if (!s.is_object()) {
    return InvalidArgumentError("JSON Schema at \"" + ptr + "\" must be an object or a boolean");
  }
  ojson out = ojson::object();
  bool nullable = false;
  std::string numeric_format;
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& key = it.key();
    const std::string at = ptr + "/" + PointerToken(key);
    if (key == "nullable") {
      nullable = it.value().is_boolean() && it.value().get<bool>();
      continue;
    }
    if (IsForeignAnnotation(key)) continue;
    if (key == "format" && it.value().is_string() && IsOpenApiNumericFormat(it.value())) {
      numeric_format = it.value().get<std::string>();  // applied below, once `type` is known
      continue;
    }
    std::string refusal;
    if (Classify(key) == KeywordClass::kRefused) {
      refusal = "unknown or unsupported keyword";
    } else if (key == "format" && it.value().is_string() &&
               !IsCheckedFormat(it.value().get<std::string>())) {
      refusal = "format \"" + it.value().get<std::string>() +
                "\" is not one of date, time, date-time, email, uuid, uri";
    } else if (key == "$id" && depth > 0) {
      refusal = "a nested $id (a new base URI for references) is not supported";
    } else if (key == "$ref" &&
               (!it.value().is_string() || it.value().get<std::string>().substr(0, 1) != "#")) {
      refusal = "only local references (\"#...\") are supported";
    }
    if (!refusal.empty()) {
      if (!best_effort) return Refuse(key, ptr, refusal);
      report->not_enforced.push_back({key, ptr, refusal});
      continue;
    }
    if (Classify(key) == KeywordClass::kValidated) {
      report->validated_after.push_back({key, ptr, "checked after generation"});
    }
    const ojson& v = it.value();
    // Subschemas: maps of schemas, arrays of schemas, single schemas.
    if (key == "properties" || key == "patternProperties" || key == "$defs" ||
        key == "definitions" || key == "dependentSchemas") {
      if (!v.is_object())
        return InvalidArgumentError("\"" + key + "\" at \"" + ptr + "\" must be an object");
      ojson m = ojson::object();
      for (auto p = v.begin(); p != v.end(); ++p) {
        GL_ASSIGN_OR_RETURN(m[p.key()], Normalize(p.value(), at + "/" + PointerToken(p.key()),
                                                  best_effort, report, depth + 1));
      }
      out[key] = std::move(m);
    } else if (key == "allOf" || key == "anyOf" || key == "oneOf" || key == "prefixItems") {
      if (!v.is_array() || v.empty()) {
        return InvalidArgumentError("\"" + key + "\" at \"" + ptr + "\" must be a non-empty array");
      }
      ojson a = ojson::array();
      for (size_t i = 0; i < v.size(); ++i) {
        GL_ASSIGN_OR_RETURN(ojson sub, Normalize(v[i], at + "/" + std::to_string(i), best_effort,
                                                 report, depth + 1));
        a.push_back(std::move(sub));
      }
      out[key] = std::move(a);
    } else if (key == "items" || key == "additionalProperties" || key == "contains" ||
               key == "propertyNames" || key == "not" || key == "if" || key == "then" ||
               key == "else") {
      GL_ASSIGN_OR_RETURN(out[key], Normalize(v, at, best_effort, report, depth + 1));
    } else {
      out[key] = v;
    }
  }
  if (!numeric_format.empty()) {
    GL_RETURN_IF_ERROR(ApplyNumericFormat(numeric_format, ptr, best_effort, report, &out));
  }
  if (nullable && !out.contains("type") && !out.contains("enum") && !out.contains("const") &&
      (out.contains("$ref") || out.contains("anyOf") || out.contains("oneOf") ||
       out.contains("allOf"))) {
    return ojson{{"anyOf", ojson::array({out, ojson{{"type", "null"}}})}};
  }
  if (nullable) {
    if (auto t = out.find("type"); t != out.end()) {
      ojson types = t->is_array() ? *t : ojson::array({*t});
      if (std::find(types.begin(), types.end(), "null") == types.end()) types.push_back("null");
      *t = types;
    }
    if (auto e = out.find("enum"); e != out.end() && e->is_array()) {
      if (std::find(e->begin(), e->end(), nullptr) == e->end()) e->push_back(nullptr);
    }
    if (auto c = out.find("const"); c != out.end()) {
      out["enum"] = ojson::array({*c, nullptr});
      out.erase("const");
    }
  }
  return out;
}

}  // namespace gemma_local::constrain::schema_internal
