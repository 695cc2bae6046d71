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
#include <memory>
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
    kGrammar,     // `grammar`: GBNF text (llama.cpp's format), generation starts at `root`
  };
  Kind kind = Kind::kJsonObject;
  nlohmann::ordered_json schema;
  std::string pattern;
  std::vector<std::string> choices;
  std::string grammar;
  bool best_effort = false;  // drop (and report) schema keywords that cannot be enforced

  static Constraint JsonSchema(nlohmann::ordered_json schema, bool best_effort = false);
  static Constraint AnyJson();
  static Constraint Regex(std::string pattern);
  static Constraint Choice(std::vector<std::string> choices);
  static Constraint Gbnf(std::string grammar);
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
  // {"complete", "valid", "violations": [{"instance_pointer", "schema_pointer", "message"}],
  //  "validated_after": [{"keyword", "pointer", "message"}], "not_enforced": [...]}: what `run
  // --json` prints and `serve` adds to a constrained choice.
  nlohmann::ordered_json ToJson() const;
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

class Tokenizer;

// What a constraint costs on a tokenizer's vocabulary (benchmarks; bench/constrain_bench.cc).
struct ConstraintProfile {
  double compile_us = 0;              // schema (or pattern) to grammar, validator included
  std::vector<double> first_mask_us;  // the first walk's masks: a schema's first request
  std::vector<double> mask_us;        // the other walks' masks: later requests, lexer tables warm
  int64_t walks_complete = 0;         // walks that ended in a complete value
};

// Replays what decoding does without a model: each walk starts a fresh matcher (as a request
// does, sharing the compiled constraint's lexer tables as the engine's requests with one schema
// do), computes the mask, takes a random allowed token (seeded) for the first half of
// `max_tokens` and then steers to the shortest completion, until a stop id is taken.
class ConstraintProfiler {
 public:
  ~ConstraintProfiler();
  // Indexes the vocabulary once (vocab_index_ms); `stop_ids` end a value.
  static Result<std::unique_ptr<ConstraintProfiler>> Create(
      std::shared_ptr<const Tokenizer> tokenizer, std::vector<int32_t> stop_ids);
  double vocab_index_ms() const;
  Result<ConstraintProfile> Profile(const Constraint& constraint, int walks, int max_tokens,
                                    uint64_t seed) const;

 private:
  struct State;
  explicit ConstraintProfiler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace gemma_local
