// Validation rules: checks a JSON Schema cannot express (totals that must add up, dates in order,
// a field required when another is set), written as jq expressions in a YAML file and evaluated on
// a finished value. `gemma-local extract` runs them and retries with feedback when one fails.
//
// The file (docs/structured-output.md, "Validation rules"):
//
//   version: 1
//   rules:
//     - name: subtotal_matches_items          # required, unique
//       expr: 'approx(sum(.line_items[].amount); .subtotal; 0.01)'   # required: one boolean
//       when: '.line_items != null'           # optional: the rule is skipped unless true
//       message: "subtotal must equal the sum of the line item amounts"
//       detail: '"items sum to \(sum(.line_items[].amount))"'        # optional: jq, for feedback
//       severity: error                       # error (default: fails the value) | warning
//
// Expressions are jq (https://jqlang.github.io/jq/manual/) with a prelude of helpers: sum(f),
// approx(a; b; tol), count(f), present(f), date(s) (an ISO date's Unix time). Module and
// environment access (import, include, input, inputs, $ENV, env, input_filename, debug, stderr,
// halt, halt_error) is refused. jq has no step limit: an expression that never ends (repeat(.))
// never returns; rules are the operator's own configuration, like a config file.
//
// Thread-safety: a RuleSet may be used from any number of threads. libjq 1.6 keeps process-wide
// state that is not thread-safe, so every jq call of the process (all RuleSets) is serialized.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "gemma_local/status.h"

namespace gemma_local {

struct RuleResult {
  std::string name;
  bool ok = true;        // true when the rule held or was skipped
  bool skipped = false;  // its `when` was false
  std::string severity;  // "error" or "warning"
  std::string message;   // the rule's message (jq's error when the expression failed)
  std::string detail;    // the evaluated `detail` ("" when none or the rule held)
  nlohmann::ordered_json ToJson() const;  // {name, ok, skipped, severity, message, detail}
};

class RuleSet {
 public:
  struct Rule;
  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  // Reads and compiles a rule file. Errors name the file, line and column, the rule and the key
  // (kInvalidArgument for a bad file or expression, kNotFound / kIoError for an unreadable one).
  static Result<std::unique_ptr<RuleSet>> Load(const std::string& path);
  // The same from YAML text; `source_name` stands for the file in messages.
  static Result<std::unique_ptr<RuleSet>> Parse(std::string_view yaml,
                                                const std::string& source_name);

  // Every rule on `value`, in file order. An expression that errors or does not yield exactly
  // one boolean fails its rule with the reason in `message`.
  std::vector<RuleResult> Evaluate(const nlohmann::ordered_json& value) const;

  size_t size() const;

 private:
  RuleSet();
  std::vector<std::unique_ptr<Rule>> rules_;
};

// True when any result failed with severity "error".
bool AnyRuleFailed(const std::vector<RuleResult>& results);

}  // namespace gemma_local
