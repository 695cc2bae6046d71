#include "core/json_access.h"

#include <utility>
#include <vector>

namespace gemma_local {
namespace {

template <typename T>
constexpr const char* Expected() {
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, bool>) return "a boolean";
}

template <typename Json>
Status TypeError(const std::string& path, const char* expected, const Json& got, StatusCode code) {
  return Status(code, path + ": expected " + expected + ", got " + got.type_name());
}

// The member of an object, after checking that `obj` is one (a missing key gives nullptr).
template <typename Json>
Result<const Json*> Member(const Json& obj, std::string_view key, const std::string& path,
                           StatusCode code) {
  if (!obj.is_object()) return TypeError(path, "an object", obj, code);
  return JsonFind(obj, key);
}

}  // namespace

std::string JsonPathKey(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += path.back() == ':' ? ' ' : '.';
  out += key;
  return out;
}

std::string JsonPathIndex(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

template <AnyJson Json>
const Json* JsonFind(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

template <JsonScalar T, AnyJson Json>
Result<T> JsonGet(const Json& v, const std::string& path, StatusCode code) {
  // Each branch reads the value only after checking its type, so get<>() cannot throw.
  if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.template get_ref<const std::string&>();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        return TypeError(path, "an integer that fits int64", v, code);
      }
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.template get<int64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (v.is_number()) return v.template get<double>();
  } else {
    if (v.is_boolean()) return v.template get<bool>();
  }
  return TypeError(path, Expected<T>(), v, code);
}

template <AnyJson Json>
Result<const Json*> JsonGetObject(const Json& v, const std::string& path, StatusCode code) {
  if (!v.is_object()) return TypeError(path, "an object", v, code);
  return &v;
}

template <AnyJson Json>
Result<const Json*> JsonGetArray(const Json& v, const std::string& path, StatusCode code) {
  if (!v.is_array()) return TypeError(path, "an array", v, code);
  return &v;
}

template <JsonScalar T, AnyJson Json>
Result<T> JsonField(const Json& obj, std::string_view key, const std::string& path,
                    StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr) return Status(code, JsonPathKey(path, key) + ": missing");
  return JsonGet<T>(*m, JsonPathKey(path, key), code);
}

template <AnyJson Json>
Result<const Json*> JsonObjectField(const Json& obj, std::string_view key, const std::string& path,
                                    StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr) return Status(code, JsonPathKey(path, key) + ": missing");
  return JsonGetObject(*m, JsonPathKey(path, key), code);
}

template <AnyJson Json>
Result<const Json*> JsonArrayField(const Json& obj, std::string_view key, const std::string& path,
                                   StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr) return Status(code, JsonPathKey(path, key) + ": missing");
  return JsonGetArray(*m, JsonPathKey(path, key), code);
}

template <JsonScalar T, AnyJson Json>
Result<T> JsonOptionalField(const Json& obj, std::string_view key, T def, const std::string& path,
                            StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr || m->is_null()) return def;
  return JsonGet<T>(*m, JsonPathKey(path, key), code);
}

template <AnyJson Json>
Result<const Json*> JsonOptionalObjectField(const Json& obj, std::string_view key,
                                            const std::string& path, StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr || m->is_null()) return static_cast<const Json*>(nullptr);
  return JsonGetObject(*m, JsonPathKey(path, key), code);
}

template <AnyJson Json>
Result<const Json*> JsonOptionalArrayField(const Json& obj, std::string_view key,
                                           const std::string& path, StatusCode code) {
  GL_ASSIGN_OR_RETURN(const Json* m, Member(obj, key, path, code));
  if (m == nullptr || m->is_null()) return static_cast<const Json*>(nullptr);
  return JsonGetArray(*m, JsonPathKey(path, key), code);
}

template <AnyJson Json>
Status CheckJsonDepth(const Json& v, size_t max_depth, const std::string& path, StatusCode code) {
  // Depth-first over containers with an explicit stack: (container, its depth).
  std::vector<std::pair<const Json*, size_t>> stack;
  if (v.is_structured()) stack.emplace_back(&v, 1);
  while (!stack.empty()) {
    const auto [c, depth] = stack.back();
    stack.pop_back();
    if (depth > max_depth) {
      return Status(code, path + ": nested deeper than " + std::to_string(max_depth) + " levels");
    }
    for (const Json& child : *c) {
      if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    }
  }
  return Status::Ok();
}

template <AnyJson Json>
std::string JsonSnippet(const Json& v, size_t max_chars) {
  if (!CheckJsonDepth(v, 64, "").ok()) return "<deeply nested value>";
  // With error_handler_t::replace, dump() cannot throw on invalid UTF-8.
  std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > max_chars) {
    text.resize(max_chars);
    text += "...";
  }
  return text;
}

// Explicit instantiations: every function for both JSON types, the typed ones for every scalar.
#define GL_JSON_ACCESS_SCALAR(Json, T)                                                     \
  template Result<T> JsonGet<T, Json>(const Json&, const std::string&, StatusCode);        \
  template Result<T> JsonField<T, Json>(const Json&, std::string_view, const std::string&, \
                                        StatusCode);                                       \
  template Result<T> JsonOptionalField<T, Json>(const Json&, std::string_view, T,          \
                                                const std::string&, StatusCode);
#define GL_JSON_ACCESS(Json)                                                                     \
  template const Json* JsonFind<Json>(const Json&, std::string_view);                            \
  template Result<const Json*> JsonGetObject<Json>(const Json&, const std::string&, StatusCode); \
  template Result<const Json*> JsonGetArray<Json>(const Json&, const std::string&, StatusCode);  \
  template Result<const Json*> JsonObjectField<Json>(const Json&, std::string_view,              \
                                                     const std::string&, StatusCode);            \
  template Result<const Json*> JsonArrayField<Json>(const Json&, std::string_view,               \
                                                    const std::string&, StatusCode);             \
  template Result<const Json*> JsonOptionalObjectField<Json>(const Json&, std::string_view,      \
                                                             const std::string&, StatusCode);    \
  template Result<const Json*> JsonOptionalArrayField<Json>(const Json&, std::string_view,       \
                                                            const std::string&, StatusCode);     \
  template Status CheckJsonDepth<Json>(const Json&, size_t, const std::string&, StatusCode);     \
  template std::string JsonSnippet<Json>(const Json&, size_t);                                   \
  GL_JSON_ACCESS_SCALAR(Json, std::string)                                                       \
  GL_JSON_ACCESS_SCALAR(Json, int64_t)                                                           \
  GL_JSON_ACCESS_SCALAR(Json, double)                                                            \
  GL_JSON_ACCESS_SCALAR(Json, bool)

GL_JSON_ACCESS(nlohmann::json)
GL_JSON_ACCESS(nlohmann::ordered_json)

#undef GL_JSON_ACCESS
#undef GL_JSON_ACCESS_SCALAR

}  // namespace gemma_local
