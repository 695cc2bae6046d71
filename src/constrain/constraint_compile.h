// A request's Constraint compiled for the scheduler: the grammar its matchers walk, and for
// schemas the validator that checks the finished value.
//
// Each compiled constraint belongs to one request (and its samples): matchers grow the grammar's
// regex arena as they lex, so all of them must run on one thread (the scheduler's).
#pragma once

#include <memory>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/matcher.h"
#include "constrain/schema_validator.h"
#include "gemma_local/constraint.h"
#include "gemma_local/status.h"

namespace gemma_local::constrain {

struct CompiledConstraint {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const SchemaValidator> validator;  // kJsonSchema only
  bool json = false;                                 // the output must parse as JSON
  int64_t min_bytes = 0;  // the shortest value's length: max_tokens below it cannot finish
  std::vector<ConstraintIssue> validated_after;
  std::vector<ConstraintIssue> not_enforced;
  // The grammar's lexer DFA and per-state masks, shared by every matcher of this compiled
  // constraint (and of the requests a compile cache hands it to). Mutable state: only matchers
  // on the grammar's one thread may touch it.
  std::shared_ptr<LexerTables> lexer = std::make_shared<LexerTables>();
};

// Errors: kUnsupported (a keyword or regex feature it will not enforce, with its pointer or
// offset), kInvalidArgument (malformed or unsatisfiable).
Result<std::shared_ptr<const CompiledConstraint>> CompileConstraint(const Constraint& constraint);

// The outcome of a finished constrained generation with text `text`.
ConstraintOutcome JudgeOutput(const CompiledConstraint& constraint, bool complete,
                              const std::string& text);

}  // namespace gemma_local::constrain
