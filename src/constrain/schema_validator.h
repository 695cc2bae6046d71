// JSON Schema (draft 2020-12) validation of a finished value: the check after constrained
// generation for what a grammar cannot express (numeric ranges, counts, uniqueness, if/then/else).
//
// Fails closed: Compile refuses a schema that uses a keyword this validator does not enforce
// (e.g. $dynamicRef, unevaluatedProperties, a remote $ref), naming the keyword and its JSON
// pointer, rather than ignoring it. Annotations (title, description, default, examples, ...) are
// accepted; `format` is an annotation unless format assertion is switched on.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local::constrain {

struct SchemaError {
  std::string instance_pointer;  // where in the value ("" = the root), JSON pointer
  std::string schema_pointer;    // the failing keyword's place in the schema
  std::string message;
};

struct ValidatorOptions {
  bool assert_format = false;  // check date, time, date-time, email, uuid, uri, ...
};

class SchemaValidator {
 public:
  // Checks every keyword of `schema` (and its subschemas) up front; a keyword it cannot enforce
  // is kUnsupported "<keyword> at <pointer>: ...". The schema is copied.
  static Result<SchemaValidator> Compile(const nlohmann::json& schema,
                                         const ValidatorOptions& options = {});
  // Every violation (empty when `value` is valid).
  std::vector<SchemaError> Validate(const nlohmann::json& value) const;
  bool IsValid(const nlohmann::json& value) const { return Validate(value).empty(); }

  SchemaValidator(SchemaValidator&&) noexcept;
  SchemaValidator& operator=(SchemaValidator&&) noexcept;
  ~SchemaValidator();

 private:
  struct Impl;
  explicit SchemaValidator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gemma_local::constrain
