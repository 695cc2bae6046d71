// JSON Schema (draft 2020-12, the part real APIs use) -> Grammar: the language of the grammar is a
// non-empty subset of the schema's valid instances, written compactly (no whitespace), with
// canonical strings (one escape per character) and bounded numbers (numeric_range.h).
//
// Fails closed. Every keyword is either enforced by the grammar, checked after generation by
// SchemaValidator (`validated_after`: the grammar over-approximates, the validator decides), an
// annotation, or refused: kUnsupported naming the keyword and its JSON pointer. With best_effort a
// refused keyword is dropped and listed in `not_enforced` instead.
//
// Choices where the schema leaves room (all keep the output valid):
// - properties come in the schema's order; additionalProperties absent means no extra keys
//   (true or a schema allows them after the declared ones);
// - numbers never use exponents and have at most 15 integer and 15 fraction digits.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/schema_validator.h"
#include "gemma_local/constraint.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

struct SchemaCompileOptions {
  bool best_effort = false;
};

struct CompiledSchema {
  std::shared_ptr<const Grammar> grammar;
  // Checks the finished value against the whole schema (nullable folded into type, OpenAPI
  // annotations dropped).
  std::shared_ptr<const SchemaValidator> validator;
  std::vector<ConstraintIssue> validated_after;
  std::vector<ConstraintIssue> not_enforced;
};

Result<CompiledSchema> CompileJsonSchema(const nlohmann::ordered_json& schema,
                                         const SchemaCompileOptions& options = {});

// Any JSON value (response_format json_object), in the same compact canonical form.
std::shared_ptr<const Grammar> AnyJsonGrammar();

// The canonical JSON encoding of `text` (valid UTF-8) with its quotes: the only spelling the
// grammars emit for that string.
std::string CanonicalJsonString(std::string_view text);

}  // namespace gemma_local::constrain
