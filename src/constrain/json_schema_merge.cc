// allOf and $ref-with-siblings for the grammar: two schemas combined into one.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "constrain/json_schema_internal.h"

namespace gemma_local::constrain::schema_internal {
namespace {

constexpr int kMaxInlineDepth = 16;

std::vector<std::string> Types(const ojson& s) {
  if (!s.contains("type")) return {};
  const ojson& t = s["type"];
  if (t.is_string()) return {t.get<std::string>()};
  std::vector<std::string> out;
  for (const auto& x : t) out.push_back(x.get<std::string>());
  return out;
}

}  // namespace

Result<std::pair<const ojson*, std::string>> ResolveRef(const ojson& root, const std::string& ref,
                                                        const std::string& pointer) {
  if (ref.empty() || ref[0] != '#') return Refuse("$ref", pointer, "only local references");
  std::string target;
  for (size_t i = 1; i < ref.size(); ++i) {  // percent-decoding (URI fragment)
    if (ref[i] == '%' && i + 2 < ref.size() &&
        std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
      target.push_back(static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      target.push_back(ref[i]);
    }
  }
  if (!target.empty() && target[0] != '/') {
    return Refuse("$ref", pointer, "anchors (\"" + ref + "\") are not supported");
  }
  try {
    const ojson::json_pointer jp(target);
    if (!root.contains(jp)) {
      return InvalidArgumentError("$ref \"" + ref + "\" at \"" + pointer + "\" points nowhere");
    }
    return std::make_pair(&root.at(jp), target);
  } catch (const std::exception&) {
    return InvalidArgumentError("$ref \"" + ref + "\" at \"" + pointer +
                                "\" is not a JSON pointer");
  }
}

Result<ojson> Flatten(const ojson& root, const ojson& s, const std::string& pointer, int depth) {
  if (!s.is_object() || (!s.contains("$ref") && !s.contains("allOf"))) return s;
  if (depth > kMaxInlineDepth) {
    return Refuse("$ref", pointer, "references nested deeper than 16 inside allOf");
  }
  ojson rest = s;
  ojson result = ojson::object();
  if (auto r = rest.find("$ref"); r != rest.end()) {
    GL_ASSIGN_OR_RETURN(auto target, ResolveRef(root, r->get<std::string>(), pointer));
    GL_ASSIGN_OR_RETURN(result, Flatten(root, *target.first, target.second, depth + 1));
    rest.erase("$ref");
  }
  if (auto a = rest.find("allOf"); a != rest.end()) {
    const ojson parts = *a;
    rest.erase("allOf");
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string at = pointer + "/allOf/" + std::to_string(i);
      GL_ASSIGN_OR_RETURN(ojson part, Flatten(root, parts[i], at, depth + 1));
      GL_ASSIGN_OR_RETURN(result, Merge(root, result, part, at, depth + 1));
    }
  }
  if (result.is_object() && result.empty()) return rest;
  return Merge(root, result, rest, pointer, depth + 1);
}

Result<ojson> Merge(const ojson& root, const ojson& a_in, const ojson& b_in,
                    const std::string& pointer, int depth) {
  if (depth > kMaxInlineDepth) {
    return Refuse("allOf", pointer, "combinations nested deeper than 16 (recursive references)");
  }
  if (a_in.is_boolean() || b_in.is_boolean()) {
    const ojson& boolean = a_in.is_boolean() ? a_in : b_in;
    const ojson& other = a_in.is_boolean() ? b_in : a_in;
    return boolean.get<bool>() ? other : ojson(false);  // false absorbs; the caller decides
  }
  GL_ASSIGN_OR_RETURN(ojson a, Flatten(root, a_in, pointer, depth + 1));
  GL_ASSIGN_OR_RETURN(ojson b, Flatten(root, b_in, pointer, depth + 1));
  if (a.is_boolean() || b.is_boolean()) return Merge(root, a, b, pointer, depth + 1);
  ojson out = a;
  auto cannot = [&](const std::string& key) {
    return Refuse("allOf", pointer, "cannot combine two different \"" + key + "\" values");
  };
  // additionalProperties: false on one side limits the keys of the other.
  auto closed_keys = [](const ojson& s) -> std::optional<std::vector<std::string>> {
    if (auto ap = s.find("additionalProperties"); ap != s.end() && *ap == false) {
      std::vector<std::string> keys;
      if (s.contains("properties")) {
        for (auto p = s["properties"].begin(); p != s["properties"].end(); ++p)
          keys.push_back(p.key());
      }
      return keys;
    }
    return std::nullopt;
  };
  const auto a_closed = closed_keys(a), b_closed = closed_keys(b);
  // Combinations whose meaning crosses parts (one part's additionalProperties schema over the
  // other's properties, one part's items over the other's prefixItems) are refused rather than
  // merged wrongly.
  auto declared = [](const ojson& s) {
    std::vector<std::string> keys;
    if (s.contains("properties")) {
      for (auto p = s["properties"].begin(); p != s["properties"].end(); ++p)
        keys.push_back(p.key());
    }
    return keys;
  };
  for (const auto& [x, y] : {std::make_pair(&a, &b), std::make_pair(&b, &a)}) {
    if (auto ap = x->find("additionalProperties"); ap != x->end() && ap->is_object()) {
      const std::vector<std::string> mine = declared(*x);
      for (const std::string& k : declared(*y)) {
        if (std::find(mine.begin(), mine.end(), k) == mine.end()) {
          return Refuse("allOf", pointer,
                        "one part's additionalProperties schema applies to another part's "
                        "property \"" +
                            k + "\"");
        }
      }
    }
    if (x->contains("items") && !x->contains("prefixItems") && y->contains("prefixItems")) {
      return Refuse("allOf", pointer, "one part's items and another part's prefixItems");
    }
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string& key = it.key();
    const ojson& v = it.value();
    if (!out.contains(key)) {
      out[key] = v;
      continue;
    }
    ojson& mine = out[key];
    if (mine == v || Classify(key) == KeywordClass::kAnnotation) continue;
    if (key == "type") {
      std::vector<std::string> ta = Types(a), tb = Types(b), both;
      for (const auto& t : ta) {
        for (const auto& u : tb) {
          if (t == u || (t == "integer" && u == "number")) both.push_back(t);
          if (t == "number" && u == "integer") both.push_back(u);
        }
      }
      if (both.empty()) return Unsatisfiable(pointer, "allOf parts allow no common type");
      mine = both.size() == 1 ? ojson(both[0]) : ojson(both);
    } else if (key == "properties") {
      for (auto p = v.begin(); p != v.end(); ++p) {
        if (mine.contains(p.key())) {
          GL_ASSIGN_OR_RETURN(mine[p.key()],
                              Merge(root, mine[p.key()], p.value(),
                                    pointer + "/properties/" + PointerToken(p.key()), depth + 1));
        } else {
          mine[p.key()] = p.value();
        }
      }
    } else if (key == "required") {
      for (const auto& r : v) {
        if (std::find(mine.begin(), mine.end(), r) == mine.end()) mine.push_back(r);
      }
    } else if (key == "minimum" || key == "exclusiveMinimum" || key == "minLength" ||
               key == "minItems" || key == "minProperties") {
      if (v.get<double>() > mine.get<double>()) mine = v;
    } else if (key == "maximum" || key == "exclusiveMaximum" || key == "maxLength" ||
               key == "maxItems" || key == "maxProperties") {
      if (v.get<double>() < mine.get<double>()) mine = v;
    } else if (key == "enum" || key == "const") {
      ojson ea = key == "enum" ? mine : ojson::array({mine});
      ojson kept = ojson::array();
      for (const auto& x : ea) {
        if (key == "enum" ? std::find(v.begin(), v.end(), x) != v.end() : x == v) kept.push_back(x);
      }
      if (kept.empty()) return Unsatisfiable(pointer, "allOf parts share no \"" + key + "\" value");
      out.erase(key);
      out["enum"] = kept;
    } else if (key == "pattern") {
      out["x-gl-patterns"].push_back(v);
    } else if (key == "items" || key == "additionalProperties") {
      GL_ASSIGN_OR_RETURN(mine, Merge(root, mine, v, pointer + "/" + key, depth + 1));
    } else if (key == "anyOf" || key == "oneOf" || key == "x-gl-patterns") {
      if (key == "x-gl-patterns") {
        for (const auto& p : v) mine.push_back(p);
      } else {
        return cannot(key);
      }
    } else if (Classify(key) == KeywordClass::kValidated) {
      continue;  // checked after generation against the whole schema
    } else {
      return cannot(key);
    }
  }
  // Keys one side closes off are not allowed even if the other side declares them.
  for (const auto* closed : {&a_closed, &b_closed}) {
    if (!*closed || !out.contains("properties")) continue;
    ojson kept = ojson::object();
    for (auto p = out["properties"].begin(); p != out["properties"].end(); ++p) {
      if (std::find((*closed)->begin(), (*closed)->end(), p.key()) != (*closed)->end()) {
        kept[p.key()] = p.value();
      }
    }
    out["properties"] = kept;
    out["additionalProperties"] = false;
    if (out.contains("required")) {
      for (const auto& r : out["required"]) {
        if (!kept.contains(r.get<std::string>())) {
          return Unsatisfiable(pointer, "required property \"" + r.get<std::string>() +
                                            "\" is excluded by additionalProperties false");
        }
      }
    }
  }
  return out;
}

}  // namespace gemma_local::constrain::schema_internal
