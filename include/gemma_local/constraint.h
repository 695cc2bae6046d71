// Structured output: a constraint on what a request may generate (a JSON Schema, any JSON value,
// a regular expression or a list of choices), enforced token by token so the output is always a
// value of the constraint's language; and what the engine reports about it.
//
// JSON is written compactly (no whitespace between tokens), with properties in the schema's
// order, canonical string escapes and numbers without exponents. Schemas fail closed: a keyword
// that is neither enforced while generating nor checked afterwards is refused at Submit
// (kUnsupported, naming the keyword and its JSON pointer) unless `best_effort` is set, in which
// case the outcome lists it under `not_enforced`. See docs/structured-output.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

struct Constraint {
  enum class Kind {
    kJsonSchema,  // `schema`, draft 2020-12
    kJsonObject,  // any JSON value (OpenAI's response_format json_object)
    kRegex,       // `pattern`: the whole output matches it (ECMA-262 syntax)
    kChoice,      // exactly one of `choices`
  };
  Kind kind = Kind::kJsonObject;
  nlohmann::ordered_json schema;
  std::string pattern;
  std::vector<std::string> choices;
  bool best_effort = false;  // drop (and report) schema keywords that cannot be enforced

  static Constraint JsonSchema(nlohmann::ordered_json schema, bool best_effort = false);
  static Constraint AnyJson();
  static Constraint Regex(std::string pattern);
  static Constraint Choice(std::vector<std::string> choices);
};

// A schema keyword the engine did not enforce while generating: checked after (`validated_after`)
// or dropped under best_effort (`not_enforced`).
struct ConstraintIssue {
  std::string keyword;
  std::string pointer;  // RFC 6901, into the schema ("" = the root)
  std::string message;
};

// A validation failure of the finished value.
struct ConstraintViolation {
  std::string instance_pointer;  // where in the value
  std::string schema_pointer;    // the failing keyword in the schema
  std::string message;
};

// The final event's account of a constrained request.
struct ConstraintOutcome {
  bool complete = false;  // the text is a whole value (ended by a stop token, not a length cut)
  bool valid = false;     // complete, and (schemas) the validator accepts it
  std::vector<ConstraintViolation> violations;
  std::vector<ConstraintIssue> validated_after;
  std::vector<ConstraintIssue> not_enforced;
};

// What a constraint compiles to, known before any request runs (`extract` checks its schema so).
struct ConstraintReport {
  int64_t min_bytes = 0;  // the shortest value's length in bytes
  std::vector<ConstraintIssue> validated_after;
  std::vector<ConstraintIssue> not_enforced;
};

// Compiles `constraint` as Submit would. Errors: kUnsupported (a keyword or regex feature that is
// not enforced, naming it and its JSON pointer or offset), kInvalidArgument (malformed or
// unsatisfiable).
Result<ConstraintReport> InspectConstraint(const Constraint& constraint);

}  // namespace gemma_local
