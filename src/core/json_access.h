// Checked access to nlohmann::json values: typed reads that return Result<T> instead of throwing.
//
// Why: nlohmann's convenience accessors throw on hostile input (get<T>() and value(key, default)
// on a type mismatch, at() on a missing key, parse() on bad text) or assert (operator[] on a
// const value without the key). Library code must never throw for bad input (status.h), so every
// read of untrusted JSON (request messages, tokenizer.json, config files) goes through here.
//
// Contract, for every function below:
//  - it never throws and never asserts, whatever `v` / `obj` holds (any type, any nesting);
//  - `path` names the value in errors: "messages[3].content", "/m/tokenizer.json: model.vocab".
//    A member is named JsonPathKey(path, key), an element JsonPathIndex(path, i);
//  - errors read "<path>: expected <what>, got <json type>" (or "<path>: missing") with the
//    given `code`: kInvalidArgument for a caller's request, kCorruptData (default) for a file.
//    Type names are nlohmann's type_name() ("number", "string", "array", ...), as elsewhere;
//  - "Optional" reads treat an absent member and an explicit null alike (the default / nullptr),
//    as Hugging Face configs and OpenAI requests use null for "not given"; a wrong type is an
//    error, never silently the default.
// Works for nlohmann::json and nlohmann::ordered_json (instantiated in json_access.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "gemma_local/status.h"

namespace gemma_local {

template <typename Json>
concept AnyJson =
    std::is_same_v<Json, nlohmann::json> || std::is_same_v<Json, nlohmann::ordered_json>;

// The scalar types a JSON value can be read as. int64_t takes integers only (an unsigned value
// above INT64_MAX is an error); double takes any number.
template <typename T>
concept JsonScalar = std::is_same_v<T, std::string> || std::is_same_v<T, int64_t> ||
    std::is_same_v<T, double> || std::is_same_v<T, bool>;

// "path.key"; a path ending in ':' names a document, whose members are "path key" ("config.json:"
// -> "config.json: model"); an empty path gives just "key".
std::string JsonPathKey(const std::string& path, std::string_view key);
// "path[index]".
std::string JsonPathIndex(const std::string& path, size_t index);

// The member `key` of `obj`, or nullptr when `obj` is not an object or lacks the key.
template <AnyJson Json>
const Json* JsonFind(const Json& obj, std::string_view key);

// `v` as T; a wrong type is an error naming `path`.
template <JsonScalar T, AnyJson Json>
Result<T> JsonGet(const Json& v, const std::string& path,
                  StatusCode code = StatusCode::kCorruptData);
// `v` itself when it is an object (resp. an array).
template <AnyJson Json>
Result<const Json*> JsonGetObject(const Json& v, const std::string& path,
                                  StatusCode code = StatusCode::kCorruptData);
template <AnyJson Json>
Result<const Json*> JsonGetArray(const Json& v, const std::string& path,
                                 StatusCode code = StatusCode::kCorruptData);

// Required member `key` of the object `obj` (named `path`): an error when `obj` is not an object,
// the key is missing, or the value has another type (null included).
template <JsonScalar T, AnyJson Json>
Result<T> JsonField(const Json& obj, std::string_view key, const std::string& path,
                    StatusCode code = StatusCode::kCorruptData);
template <AnyJson Json>
Result<const Json*> JsonObjectField(const Json& obj, std::string_view key, const std::string& path,
                                    StatusCode code = StatusCode::kCorruptData);
template <AnyJson Json>
Result<const Json*> JsonArrayField(const Json& obj, std::string_view key, const std::string& path,
                                   StatusCode code = StatusCode::kCorruptData);

// Optional member: `def` (resp. nullptr) when absent or null; an error for another type or when
// `obj` is not an object.
template <JsonScalar T, AnyJson Json>
Result<T> JsonOptionalField(const Json& obj, std::string_view key, T def, const std::string& path,
                            StatusCode code = StatusCode::kCorruptData);
template <AnyJson Json>
Result<const Json*> JsonOptionalObjectField(const Json& obj, std::string_view key,
                                            const std::string& path,
                                            StatusCode code = StatusCode::kCorruptData);
template <AnyJson Json>
Result<const Json*> JsonOptionalArrayField(const Json& obj, std::string_view key,
                                           const std::string& path,
                                           StatusCode code = StatusCode::kCorruptData);

// OK when `v` nests at most `max_depth` arrays/objects (a scalar is depth 0, [] is 1, [[1]] is 2);
// else "<path>: nested deeper than <max_depth> levels". Iterative, so safe on any input. Why:
// nlohmann's copy, compare and dump() recurse once per level, so a deep hostile value overflows the
// stack; check before doing any of those to untrusted values.
template <AnyJson Json>
Status CheckJsonDepth(const Json& v, size_t max_depth, const std::string& path,
                      StatusCode code = StatusCode::kCorruptData);

// Compact JSON text of `v` for error messages, cut at `max_chars` (with "..."); invalid UTF-8 is
// replaced and values nested deeper than 64 levels print as "<deeply nested value>".
template <AnyJson Json>
std::string JsonSnippet(const Json& v, size_t max_chars = 200);

}  // namespace gemma_local
