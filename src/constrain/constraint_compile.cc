#include "constrain/constraint_compile.h"

#include "constrain/gbnf.h"
#include "constrain/json_schema_compiler.h"
#include "constrain/regex_parse.h"

namespace gemma_local {

Constraint Constraint::JsonSchema(nlohmann::ordered_json schema, bool best_effort) {
  Constraint c;
  c.kind = Kind::kJsonSchema;
  c.schema = std::move(schema);
  c.best_effort = best_effort;
  return c;
}
Constraint Constraint::AnyJson() { return Constraint{}; }
Constraint Constraint::Regex(std::string pattern) {
  Constraint c;
  c.kind = Kind::kRegex;
  c.pattern = std::move(pattern);
  return c;
}
Constraint Constraint::Gbnf(std::string grammar) {
  Constraint c;
  c.kind = Kind::kGrammar;
  c.grammar = std::move(grammar);
  return c;
}
Constraint Constraint::Choice(std::vector<std::string> choices) {
  Constraint c;
  c.kind = Kind::kChoice;
  c.choices = std::move(choices);
  return c;
}

}  // namespace gemma_local

namespace gemma_local::constrain {
namespace {

constexpr size_t kMaxChoices = 10000;

}  // namespace

Result<std::shared_ptr<const CompiledConstraint>> CompileConstraint(const Constraint& constraint) {
  auto out = std::make_shared<CompiledConstraint>();
  switch (constraint.kind) {
    case Constraint::Kind::kJsonSchema: {
      SchemaCompileOptions options;
      options.best_effort = constraint.best_effort;
      GL_ASSIGN_OR_RETURN(CompiledSchema compiled, CompileJsonSchema(constraint.schema, options));
      out->grammar = std::move(compiled.grammar);
      out->validator = std::move(compiled.validator);
      out->validated_after = std::move(compiled.validated_after);
      out->not_enforced = std::move(compiled.not_enforced);
      out->json = true;
      break;
    }
    case Constraint::Kind::kJsonObject:
      out->grammar = AnyJsonGrammar();
      out->json = true;
      break;
    case Constraint::Kind::kRegex: {
      auto arena = std::make_shared<RegexArena>();
      Result<RegexId> r = ParseEcmaRegex(*arena, constraint.pattern, RegexMode::kFullMatch);
      if (!r.ok()) return Status(r.status().code(), "regex constraint: " + r.status().message());
      GL_ASSIGN_OR_RETURN(out->grammar, RegularGrammar(arena, *r));
      break;
    }
    case Constraint::Kind::kGrammar: {
      Result<std::shared_ptr<const Grammar>> g = CompileGbnf(constraint.grammar);
      if (!g.ok()) return g.status();
      out->grammar = std::move(*g);
      break;
    }
    case Constraint::Kind::kChoice: {
      if (constraint.choices.empty()) return InvalidArgumentError("choice constraint: no choices");
      if (constraint.choices.size() > kMaxChoices) {
        return InvalidArgumentError("choice constraint: more than 10000 choices");
      }
      auto arena = std::make_shared<RegexArena>();
      std::vector<RegexId> literals;
      for (const std::string& c : constraint.choices) literals.push_back(arena->Literal(c));
      GL_ASSIGN_OR_RETURN(out->grammar, RegularGrammar(arena, arena->Or(literals)));
      break;
    }
  }
  out->min_bytes = out->grammar->min_yield(Symbol::Rule(out->grammar->start()));
  return std::shared_ptr<const CompiledConstraint>(out);
}

ConstraintOutcome JudgeOutput(const CompiledConstraint& constraint, bool complete,
                              const std::string& text) {
  ConstraintOutcome outcome;
  outcome.complete = complete;
  outcome.validated_after = constraint.validated_after;
  outcome.not_enforced = constraint.not_enforced;
  outcome.valid = complete;
  if (!complete) {
    outcome.violations.push_back({"", "", "generation ended before the value was complete"});
    return outcome;
  }
  if (!constraint.json) return outcome;
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {  // cannot happen for a complete value; checked anyway
    outcome.valid = false;
    outcome.violations.push_back({"", "", "the output is not JSON"});
    return outcome;
  }
  if (constraint.validator) {
    for (SchemaError& e : constraint.validator->Validate(value)) {
      outcome.violations.push_back(
          {std::move(e.instance_pointer), std::move(e.schema_pointer), std::move(e.message)});
    }
  }
  outcome.valid = outcome.violations.empty();
  return outcome;
}

}  // namespace gemma_local::constrain

namespace gemma_local {

nlohmann::ordered_json ConstraintOutcome::ToJson() const {
  auto issues = [](const std::vector<ConstraintIssue>& list) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const ConstraintIssue& i : list) {
      out.push_back({{"keyword", i.keyword}, {"pointer", i.pointer}, {"message", i.message}});
    }
    return out;
  };
  nlohmann::ordered_json violations_json = nlohmann::ordered_json::array();
  for (const ConstraintViolation& v : violations) {
    violations_json.push_back({{"instance_pointer", v.instance_pointer},
                               {"schema_pointer", v.schema_pointer},
                               {"message", v.message}});
  }
  return {{"complete", complete},
          {"valid", valid},
          {"violations", std::move(violations_json)},
          {"validated_after", issues(validated_after)},
          {"not_enforced", issues(not_enforced)}};
}

Result<ConstraintReport> InspectConstraint(const Constraint& constraint) {
  GL_ASSIGN_OR_RETURN(std::shared_ptr<const constrain::CompiledConstraint> compiled,
                      constrain::CompileConstraint(constraint));
  ConstraintReport report;
  report.min_bytes = compiled->min_bytes;
  report.validated_after = compiled->validated_after;
  report.not_enforced = compiled->not_enforced;
  return report;
}

}  // namespace gemma_local
