#include "constrain/schema_validator.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>
#include <string_view>
#include <unordered_map>

#include "constrain/formats.h"
#include "constrain/json_pointer.h"
#include "constrain/regex.h"
#include "constrain/regex_parse.h"

namespace gemma_local::constrain {
namespace {

using json = nlohmann::json;

// Keywords that never constrain a value (2020-12's meta-data and content vocabularies, and
// `format` unless asserted).
const std::set<std::string_view>& Annotations() {
  static const std::set<std::string_view> k = {
      "$schema",       "$id",        "$comment", "title",     "description",      "default",
      "examples",      "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
      "contentSchema", "format"};
  return k;
}

// Keywords this validator enforces.
const std::set<std::string_view>& Enforced() {
  static const std::set<std::string_view> k = {"$ref",
                                               "$defs",
                                               "definitions",
                                               "type",
                                               "enum",
                                               "const",
                                               "multipleOf",
                                               "maximum",
                                               "exclusiveMaximum",
                                               "minimum",
                                               "exclusiveMinimum",
                                               "maxLength",
                                               "minLength",
                                               "pattern",
                                               "items",
                                               "prefixItems",
                                               "contains",
                                               "minContains",
                                               "maxContains",
                                               "maxItems",
                                               "minItems",
                                               "uniqueItems",
                                               "properties",
                                               "patternProperties",
                                               "additionalProperties",
                                               "propertyNames",
                                               "required",
                                               "maxProperties",
                                               "minProperties",
                                               "dependentRequired",
                                               "dependentSchemas",
                                               "allOf",
                                               "anyOf",
                                               "oneOf",
                                               "not",
                                               "if",
                                               "then",
                                               "else"};
  return k;
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool IsInteger(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d);
}

bool TypeMatches(const json& v, const std::string& type) {
  if (type == "null") return v.is_null();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") return IsInteger(v);
  return false;
}

bool MultipleOf(const json& v, const json& m) {
  if (v.is_number_integer() && m.is_number_integer()) {
    const int64_t d = m.get<int64_t>();
    return d != 0 && v.get<int64_t>() % d == 0;
  }
  const double q = v.get<double>() / m.get<double>();
  if (!std::isfinite(q)) return false;
  return std::abs(q - std::round(q)) < 1e-9 * std::max(1.0, std::abs(q));
}

}  // namespace

struct SchemaValidator::Impl {
  json root;
  ValidatorOptions options;
  // `pattern`s in the grammar's engine (derivatives: linear in the text, so a hostile pattern
  // cannot make a check backtrack for ever as std::regex would), guarded: Validate is const and
  // may run on any thread, while matching grows the arena.
  mutable std::mutex regex_mu;
  mutable RegexArena arena;
  std::unordered_map<std::string, RegexId> regexes;  // pattern text -> compiled

  // Checks the keywords of `s` at `at` and of every subschema; fills `regexes`.
  Status Check(const json& s, const std::string& at, int depth) {
    if (depth > 128) return UnsupportedError(at + ": schema nested deeper than 128 levels");
    if (s.is_boolean()) return Status::Ok();
    if (!s.is_object()) return InvalidArgumentError(at + ": a schema is an object or a boolean");
    for (const auto& [key, value] : s.items()) {
      const std::string here = at + "/" + PointerToken(key);
      if (key == "format" && options.assert_format) {
        if (!value.is_string() || !IsCheckedFormat(value.get<std::string>())) {
          return UnsupportedError("format at " + here + ": " + value.dump() +
                                  " is not a format this validator checks (date, time, date-time, "
                                  "uuid, email, uri)");
        }
        continue;
      }
      if (Annotations().count(key)) {
        if (key == "$id" && depth > 0) {
          return UnsupportedError("$id at " + here + ": nested base URIs are not supported");
        }
        if (key == "$schema" &&
            (!value.is_string() || value.get<std::string>().rfind(
                                       "https://json-schema.org/draft/2020-12/schema", 0) != 0)) {
          return UnsupportedError("$schema at " + here + ": only draft 2020-12 is supported, got " +
                                  value.dump());
        }
        continue;
      }
      if (!Enforced().count(key)) {
        return UnsupportedError(key + " at " + here +
                                ": not a keyword this validator enforces (it fails closed)");
      }
      if (key == "$ref") {
        if (!value.is_string()) return InvalidArgumentError(here + ": $ref must be a string");
        const std::string& ref = value.get_ref<const std::string&>();
        if (ref != "#" && ref.rfind("#/", 0) != 0) {
          return UnsupportedError(
              "$ref at " + here +
              ": only references inside the schema (\"#/...\") are supported, got \"" + ref + "\"");
        }
        if (Resolve(ref) == nullptr) {
          return InvalidArgumentError("$ref at " + here + ": \"" + ref + "\" points nowhere");
        }
      } else if (key == "properties" || key == "patternProperties" || key == "$defs" ||
                 key == "definitions" || key == "dependentSchemas") {
        if (!value.is_object()) return InvalidArgumentError(here + ": expected an object");
        for (const auto& [name, sub] : value.items()) {
          if (key == "patternProperties") GL_RETURN_IF_ERROR(AddRegex(name, here));
          GL_RETURN_IF_ERROR(Check(sub, here + "/" + PointerToken(name), depth + 1));
        }
      } else if (key == "allOf" || key == "anyOf" || key == "oneOf" || key == "prefixItems") {
        if (!value.is_array() || value.empty()) {
          return InvalidArgumentError(here + ": expected a non-empty array of schemas");
        }
        for (size_t i = 0; i < value.size(); ++i) {
          GL_RETURN_IF_ERROR(Check(value[i], here + "/" + std::to_string(i), depth + 1));
        }
      } else if (key == "items" || key == "contains" || key == "not" || key == "if" ||
                 key == "then" || key == "else" || key == "additionalProperties" ||
                 key == "propertyNames") {
        GL_RETURN_IF_ERROR(Check(value, here, depth + 1));
      } else if (key == "pattern") {
        if (!value.is_string()) return InvalidArgumentError(here + ": expected a string");
        GL_RETURN_IF_ERROR(AddRegex(value.get<std::string>(), here));
      } else if (key == "type") {
        const bool ok =
            value.is_string() ||
            (value.is_array() &&
             std::all_of(value.begin(), value.end(), [](const json& t) { return t.is_string(); }));
        if (!ok) return InvalidArgumentError(here + ": expected a type name or a list of them");
      } else if (key == "enum") {
        if (!value.is_array()) return InvalidArgumentError(here + ": expected an array");
      } else if (key == "required") {
        if (!value.is_array()) return InvalidArgumentError(here + ": expected an array of names");
      } else if (key == "dependentRequired") {
        if (!value.is_object()) return InvalidArgumentError(here + ": expected an object");
      } else if (key == "multipleOf") {
        if (!value.is_number() || value.get<double>() <= 0) {
          return InvalidArgumentError(here + ": expected a number > 0");
        }
      } else if (key != "const" && key != "uniqueItems" && !value.is_number()) {
        return InvalidArgumentError(here + ": expected a number");
      }
    }
    return Status::Ok();
  }

  Status AddRegex(const std::string& pattern, const std::string& at) {
    if (regexes.count(pattern)) return Status::Ok();
    std::lock_guard<std::mutex> lock(regex_mu);
    Result<RegexId> r = ParseEcmaRegex(arena, pattern, RegexMode::kSearch);
    if (!r.ok()) {
      return UnsupportedError("pattern at " + at + ": \"" + pattern +
                              "\" is not a regular expression this validator reads (" +
                              r.status().message() + ")");
    }
    regexes.emplace(pattern, *r);
    return Status::Ok();
  }

  // A "#/..." reference: the URI fragment is percent-decoded, then read as a JSON pointer.
  const json* Resolve(const std::string& ref) const {
    if (ref == "#") return &root;
    std::string pointer;
    for (size_t i = 1; i < ref.size(); ++i) {
      auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
      };
      if (ref[i] == '%' && i + 2 < ref.size() && hex(ref[i + 1]) >= 0 && hex(ref[i + 2]) >= 0) {
        pointer += static_cast<char>(hex(ref[i + 1]) * 16 + hex(ref[i + 2]));
        i += 2;
      } else {
        pointer += ref[i];
      }
    }
    try {
      const json::json_pointer p(pointer);
      return root.contains(p) ? &root.at(p) : nullptr;
    } catch (const json::exception&) {
      return nullptr;
    }
  }

  bool Search(const std::string& pattern, const std::string& text) const {
    auto it = regexes.find(pattern);
    if (it == regexes.end()) return false;
    std::lock_guard<std::mutex> lock(regex_mu);
    return arena.Matches(it->second, text);
  }

  void Fail(std::vector<SchemaError>* errors, const std::string& inst, const std::string& at,
            const std::string& message) const {
    errors->push_back({inst, at, message});
  }

  bool Valid(const json& v, const json& s, const std::string& inst, const std::string& at,
             int depth) const {
    std::vector<SchemaError> scratch;
    Run(v, s, inst, at, depth, &scratch);
    return scratch.empty();
  }

  void Run(const json& v, const json& s, const std::string& inst, const std::string& at, int depth,
           std::vector<SchemaError>* errors) const {
    if (s.is_boolean()) {
      if (!s.get<bool>()) Fail(errors, inst, at, "the schema is false: no value is valid");
      return;
    }
    if (depth > 512) {
      Fail(errors, inst, at, "references recurse without end");
      return;
    }
    if (auto it = s.find("$ref"); it != s.end()) {
      const json* target = Resolve(it->get<std::string>());
      if (target != nullptr) Run(v, *target, inst, it->get<std::string>(), depth + 1, errors);
    }
    if (auto it = s.find("type"); it != s.end()) {
      bool ok = false;
      if (it->is_string()) {
        ok = TypeMatches(v, it->get<std::string>());
      } else {
        for (const json& t : *it) ok = ok || TypeMatches(v, t.get<std::string>());
      }
      if (!ok) Fail(errors, inst, at + "/type", "expected type " + it->dump());
    }
    if (auto it = s.find("enum"); it != s.end()) {
      if (std::find(it->begin(), it->end(), v) == it->end()) {
        Fail(errors, inst, at + "/enum", "not one of the allowed values");
      }
    }
    if (auto it = s.find("const"); it != s.end() && *it != v) {
      Fail(errors, inst, at + "/const", "not the constant " + it->dump());
    }
    if (v.is_number()) Numbers(v, s, inst, at, errors);
    if (v.is_string()) Strings(v, s, inst, at, errors);
    if (v.is_array()) Arrays(v, s, inst, at, depth, errors);
    if (v.is_object()) Objects(v, s, inst, at, depth, errors);
    Combinators(v, s, inst, at, depth, errors);
  }

  void Numbers(const json& v, const json& s, const std::string& inst, const std::string& at,
               std::vector<SchemaError>* errors) const {
    const double x = v.get<double>();
    auto bound = [&](const char* key, auto ok) {
      auto it = s.find(key);
      if (it != s.end() && !ok(x, it->template get<double>())) {
        Fail(errors, inst, at + "/" + key, std::string("violates ") + key + " " + it->dump());
      }
    };
    bound("minimum", [](double a, double b) { return a >= b; });
    bound("maximum", [](double a, double b) { return a <= b; });
    bound("exclusiveMinimum", [](double a, double b) { return a > b; });
    bound("exclusiveMaximum", [](double a, double b) { return a < b; });
    if (auto it = s.find("multipleOf"); it != s.end() && !MultipleOf(v, *it)) {
      Fail(errors, inst, at + "/multipleOf", "not a multiple of " + it->dump());
    }
  }

  void Strings(const json& v, const json& s, const std::string& inst, const std::string& at,
               std::vector<SchemaError>* errors) const {
    const std::string& text = v.get_ref<const std::string&>();
    const double n = static_cast<double>(CodePoints(text));
    if (auto it = s.find("minLength"); it != s.end() && n < it->get<double>()) {
      Fail(errors, inst, at + "/minLength", "shorter than " + it->dump());
    }
    if (auto it = s.find("maxLength"); it != s.end() && n > it->get<double>()) {
      Fail(errors, inst, at + "/maxLength", "longer than " + it->dump());
    }
    if (auto it = s.find("pattern"); it != s.end() && !Search(it->get<std::string>(), text)) {
      Fail(errors, inst, at + "/pattern", "does not match " + it->dump());
    }
    if (options.assert_format) {
      if (auto it = s.find("format");
          it != s.end() && !MatchesFormat(it->get<std::string>(), text)) {
        Fail(errors, inst, at + "/format", "not a valid " + it->get<std::string>());
      }
    }
  }

  void Arrays(const json& v, const json& s, const std::string& inst, const std::string& at,
              int depth, std::vector<SchemaError>* errors) const {
    const double n = static_cast<double>(v.size());
    if (auto it = s.find("minItems"); it != s.end() && n < it->get<double>()) {
      Fail(errors, inst, at + "/minItems", "fewer items than " + it->dump());
    }
    if (auto it = s.find("maxItems"); it != s.end() && n > it->get<double>()) {
      Fail(errors, inst, at + "/maxItems", "more items than " + it->dump());
    }
    if (auto it = s.find("uniqueItems"); it != s.end() && it->is_boolean() && it->get<bool>()) {
      for (size_t i = 0; i < v.size(); ++i) {
        for (size_t j = i + 1; j < v.size(); ++j) {
          if (v[i] == v[j]) {
            Fail(errors, inst, at + "/uniqueItems",
                 "items " + std::to_string(i) + " and " + std::to_string(j) + " are equal");
            i = v.size();
            break;
          }
        }
      }
    }
    size_t prefix = 0;
    if (auto it = s.find("prefixItems"); it != s.end()) {
      prefix = std::min(it->size(), v.size());
      for (size_t i = 0; i < prefix; ++i) {
        Run(v[i], (*it)[i], inst + "/" + std::to_string(i),
            at + "/prefixItems/" + std::to_string(i), depth + 1, errors);
      }
    }
    if (auto it = s.find("items"); it != s.end()) {
      for (size_t i = prefix; i < v.size(); ++i) {
        Run(v[i], *it, inst + "/" + std::to_string(i), at + "/items", depth + 1, errors);
      }
    }
    if (auto it = s.find("contains"); it != s.end()) {
      double matches = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        matches += Valid(v[i], *it, inst + "/" + std::to_string(i), at + "/contains", depth + 1);
      }
      const double min = s.contains("minContains") ? s["minContains"].get<double>() : 1;
      if (matches < min) Fail(errors, inst, at + "/contains", "too few items match contains");
      if (auto mx = s.find("maxContains"); mx != s.end() && matches > mx->get<double>()) {
        Fail(errors, inst, at + "/maxContains", "too many items match contains");
      }
    }
  }

  void Objects(const json& v, const json& s, const std::string& inst, const std::string& at,
               int depth, std::vector<SchemaError>* errors) const {
    const double n = static_cast<double>(v.size());
    if (auto it = s.find("minProperties"); it != s.end() && n < it->get<double>()) {
      Fail(errors, inst, at + "/minProperties", "fewer properties than " + it->dump());
    }
    if (auto it = s.find("maxProperties"); it != s.end() && n > it->get<double>()) {
      Fail(errors, inst, at + "/maxProperties", "more properties than " + it->dump());
    }
    if (auto it = s.find("required"); it != s.end()) {
      for (const json& name : *it) {
        if (name.is_string() && !v.contains(name.get<std::string>())) {
          Fail(errors, inst, at + "/required", "missing property " + name.dump());
        }
      }
    }
    if (auto it = s.find("dependentRequired"); it != s.end()) {
      for (const auto& [name, needs] : it->items()) {
        if (!v.contains(name) || !needs.is_array()) continue;
        for (const json& other : needs) {
          if (other.is_string() && !v.contains(other.get<std::string>())) {
            Fail(errors, inst, at + "/dependentRequired/" + PointerToken(name),
                 "\"" + name + "\" needs property " + other.dump());
          }
        }
      }
    }
    const json* properties = s.contains("properties") ? &s["properties"] : nullptr;
    const json* patterns = s.contains("patternProperties") ? &s["patternProperties"] : nullptr;
    const json* additional =
        s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    for (const auto& [name, value] : v.items()) {
      const std::string where = inst + "/" + PointerToken(name);
      bool matched = false;
      if (properties != nullptr) {
        if (auto p = properties->find(name); p != properties->end()) {
          matched = true;
          Run(value, *p, where, at + "/properties/" + PointerToken(name), depth + 1, errors);
        }
      }
      if (patterns != nullptr) {
        for (const auto& [pattern, sub] : patterns->items()) {
          if (Search(pattern, name)) {
            matched = true;
            Run(value, sub, where, at + "/patternProperties/" + PointerToken(pattern), depth + 1,
                errors);
          }
        }
      }
      if (!matched && additional != nullptr) {
        Run(value, *additional, where, at + "/additionalProperties", depth + 1, errors);
      }
      if (auto names = s.find("propertyNames"); names != s.end()) {
        Run(json(name), *names, where, at + "/propertyNames", depth + 1, errors);
      }
    }
    if (auto it = s.find("dependentSchemas"); it != s.end()) {
      for (const auto& [name, sub] : it->items()) {
        if (v.contains(name)) {
          Run(v, sub, inst, at + "/dependentSchemas/" + PointerToken(name), depth + 1, errors);
        }
      }
    }
  }

  void Combinators(const json& v, const json& s, const std::string& inst, const std::string& at,
                   int depth, std::vector<SchemaError>* errors) const {
    if (auto it = s.find("allOf"); it != s.end()) {
      for (size_t i = 0; i < it->size(); ++i) {
        Run(v, (*it)[i], inst, at + "/allOf/" + std::to_string(i), depth + 1, errors);
      }
    }
    if (auto it = s.find("anyOf"); it != s.end()) {
      bool any = false;
      for (size_t i = 0; i < it->size() && !any; ++i) {
        any = Valid(v, (*it)[i], inst, at + "/anyOf/" + std::to_string(i), depth + 1);
      }
      if (!any) Fail(errors, inst, at + "/anyOf", "matches none of the anyOf schemas");
    }
    if (auto it = s.find("oneOf"); it != s.end()) {
      int count = 0;
      for (size_t i = 0; i < it->size(); ++i) {
        count += Valid(v, (*it)[i], inst, at + "/oneOf/" + std::to_string(i), depth + 1);
      }
      if (count != 1) {
        Fail(errors, inst, at + "/oneOf",
             "matches " + std::to_string(count) + " of the oneOf schemas, not exactly one");
      }
    }
    if (auto it = s.find("not"); it != s.end() && Valid(v, *it, inst, at + "/not", depth + 1)) {
      Fail(errors, inst, at + "/not", "matches the schema under not");
    }
    if (auto it = s.find("if"); it != s.end()) {
      const bool cond = Valid(v, *it, inst, at + "/if", depth + 1);
      const char* branch = cond ? "then" : "else";
      if (auto b = s.find(branch); b != s.end()) {
        Run(v, *b, inst, at + "/" + branch, depth + 1, errors);
      }
    }
  }
};

SchemaValidator::SchemaValidator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SchemaValidator::SchemaValidator(SchemaValidator&&) noexcept = default;
SchemaValidator& SchemaValidator::operator=(SchemaValidator&&) noexcept = default;
SchemaValidator::~SchemaValidator() = default;

Result<SchemaValidator> SchemaValidator::Compile(const nlohmann::json& schema,
                                                 const ValidatorOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->root = schema;
  impl->options = options;
  GL_RETURN_IF_ERROR(impl->Check(impl->root, "", 0));
  return SchemaValidator(std::move(impl));
}

std::vector<SchemaError> SchemaValidator::Validate(const nlohmann::json& value) const {
  std::vector<SchemaError> errors;
  impl_->Run(value, impl_->root, "", "#", 0, &errors);
  return errors;
}

}  // namespace gemma_local::constrain
