// Internals of the JSON Schema compiler shared by its files (not an API).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "constrain/json_pointer.h"
#include "constrain/json_schema_compiler.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain::schema_internal {

using ojson = nlohmann::ordered_json;

enum class KeywordClass { kAnnotation, kGrammar, kValidated, kRefused };
KeywordClass Classify(std::string_view key);

using constrain::PointerToken;  // RFC 6901 escaping (json_pointer.h)
Status Refuse(const std::string& keyword, const std::string& pointer, const std::string& why);
Status Unsatisfiable(const std::string& pointer, const std::string& why);

// What normalizing found: keywords dropped under best_effort, and keywords only the validator
// checks (uniqueItems, not, if/then/else, ...), each with its pointer.
struct NormalizeReport {
  std::vector<ConstraintIssue> not_enforced;
  std::vector<ConstraintIssue> validated_after;
};

// A copy of `schema` with `nullable` folded into `type`/`enum`, OpenAPI and x- annotations dropped,
// and refused keywords either reported (error) or, with best_effort, dropped and listed.
inline constexpr int kMaxSchemaDepth = 64;
Result<ojson> Normalize(const ojson& schema, const std::string& pointer, bool best_effort,
                        NormalizeReport* report, int depth = 0);

// Resolves a local "$ref" against `root`: the target and its pointer.
Result<std::pair<const ojson*, std::string>> ResolveRef(const ojson& root, const std::string& ref,
                                                        const std::string& pointer);

// The schema both `a` and `b` describe (allOf of two), for the keywords the grammar needs;
// kUnsupported naming the keyword when they cannot be combined. `$ref`s are inlined against
// `root` first. Extra patterns go in "x-gl-patterns".
Result<ojson> Merge(const ojson& root, const ojson& a, const ojson& b, const std::string& pointer,
                    int depth = 0);

// `s` with a top-level "$ref" and "allOf" folded in (merged), so the result has neither.
Result<ojson> Flatten(const ojson& root, const ojson& s, const std::string& pointer, int depth = 0);

}  // namespace gemma_local::constrain::schema_internal
