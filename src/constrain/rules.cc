// Validation rules (gemma_local/rules.h): a YAML file (yaml-cpp) of jq expressions (libjq).
//
// libjq 1.6 is not thread-safe even across separate jq_state objects (process-wide allocator and
// number-formatting state; jqlang/jq#2483, fixed in 1.7), so every jq call in the process goes
// through one mutex. It is the one process-wide object here, because the state it guards is.
#include "gemma_local/rules.h"

extern "C" {
#include <jq.h>
#include <jv.h>
}
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

namespace gemma_local {
namespace {

std::mutex& JqMutex() {
  static std::mutex mutex;
  return mutex;
}

// Helpers every expression may use; one line, so jq's line numbers in messages stay the rule's.
constexpr std::string_view kPrelude =
    "def sum(f): reduce f as $x (0; . + $x); "
    "def count(f): [f] | length; "
    "def present(f): [f] | (length > 0) and all(. != null); "
    "def approx(a; b; tol): [a, b, tol] as [$a, $b, $t] "
    "| (if $a > $b then $a - $b else $b - $a end) <= $t; "
    "def date(s): s | strptime(\"%Y-%m-%d\") | mktime; ";

// Identifiers that reach outside the value (files, environment, the process).
const std::set<std::string, std::less<>>& RefusedIdentifiers() {
  static const std::set<std::string, std::less<>> kRefused = {
      "import",   "include",    "input",          "inputs",
      "$ENV",     "env",        "debug",          "stderr",
      "halt",     "halt_error", "input_filename", "get_search_list",
      "$__loc__", "modulemeta", "$__prog_args",   "input_line_number"};
  return kRefused;
}

// The first refused identifier outside string literals, or "".
std::string RefusedIdentifierIn(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {  // skip a string literal (interpolations are rare enough to scan as text)
      ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '#') {  // a comment runs to the end of the line
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$') {
      const size_t start = i++;
      while (i < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) {
        ++i;
      }
      const std::string_view word = text.substr(start, i - start);
      if (RefusedIdentifiers().count(word) > 0) return std::string(word);
      continue;
    }
    ++i;
  }
  return "";
}

std::string JvToString(jv value) {  // consumes `value`
  if (jv_get_kind(value) == JV_KIND_STRING) {
    std::string s(jv_string_value(value),
                  static_cast<size_t>(jv_string_length_bytes(jv_copy(value))));
    jv_free(value);
    return s;
  }
  jv dumped = jv_dump_string(value, 0);
  std::string s = jv_string_value(dumped);
  jv_free(dumped);
  return s;
}

// One compiled jq program. Callers hold JqMutex().
class JqProgram {
 public:
  JqProgram() = default;
  JqProgram(const JqProgram&) = delete;
  JqProgram& operator=(const JqProgram&) = delete;
  ~JqProgram() {
    if (state_ != nullptr) jq_teardown(&state_);
  }

  // "" on success, else jq's messages.
  std::string Compile(const std::string& expr) {
    state_ = jq_init();
    if (state_ == nullptr) return "jq could not start (out of memory)";
    std::string messages;
    jq_set_error_cb(
        state_,
        [](void* data, jv message) {
          std::string* out = static_cast<std::string*>(data);
          if (!out->empty()) *out += "; ";
          *out += JvToString(message);
        },
        &messages);
    const std::string program = std::string(kPrelude) + expr;
    const bool ok = jq_compile(state_, program.c_str()) != 0;
    jq_set_error_cb(state_, nullptr, nullptr);
    if (ok) return "";
    return messages.empty() ? "does not compile" : messages;
  }

  // Every output of the program on `input` (JSON text), or the first error.
  Status Run(const std::string& input, std::vector<jv>* outputs) {
    jv value = jv_parse_sized(input.data(), static_cast<int>(input.size()));
    if (!jv_is_valid(value)) {
      jv_free(value);
      return InvalidArgumentError("the value is not JSON");
    }
    jq_start(state_, value, 0);
    Status status;
    for (int n = 0;; ++n) {
      jv out = jq_next(state_);
      if (!jv_is_valid(out)) {
        if (jv_invalid_has_msg(jv_copy(out))) {
          status = InvalidArgumentError("jq error: " + JvToString(jv_invalid_get_msg(out)));
        } else {
          jv_free(out);
        }
        break;
      }
      if (n >= 16) {  // enough to say "more than one"; the rest are not needed
        jv_free(out);
        break;
      }
      outputs->push_back(out);
    }
    if (!status.ok()) {
      for (jv& o : *outputs) jv_free(o);
      outputs->clear();
    }
    return status;
  }

 private:
  jq_state* state_ = nullptr;
};

// One boolean from `program`, or an error naming what came instead.
Result<bool> RunBoolean(JqProgram& program, const std::string& input, const char* what) {
  std::vector<jv> outputs;
  GL_RETURN_IF_ERROR(program.Run(input, &outputs));
  std::optional<bool> result;
  std::string got;
  if (outputs.size() == 1) {
    const jv_kind kind = jv_get_kind(outputs[0]);
    if (kind == JV_KIND_TRUE || kind == JV_KIND_FALSE) result = kind == JV_KIND_TRUE;
    got = JvToString(outputs[0]);
  } else {
    for (jv& o : outputs) jv_free(o);
    got = std::to_string(outputs.size()) + " values";
  }
  if (!result) {
    return InvalidArgumentError(std::string(what) + " must yield one boolean, got " +
                                (got.size() > 80 ? got.substr(0, 80) + "..." : got));
  }
  return *result;
}

std::string Where(const std::string& source, const YAML::Mark& mark) {
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

struct RuleSet::Rule {
  std::string name;
  std::string severity = "error";
  std::string message;
  JqProgram expr;
  std::unique_ptr<JqProgram> when;
  std::unique_ptr<JqProgram> detail;
};

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() {
  std::lock_guard<std::mutex> lock(JqMutex());
  rules_.clear();
}

size_t RuleSet::size() const { return rules_.size(); }

nlohmann::ordered_json RuleResult::ToJson() const {
  return {{"name", name},         {"ok", ok},           {"skipped", skipped},
          {"severity", severity}, {"message", message}, {"detail", detail}};
}

bool AnyRuleFailed(const std::vector<RuleResult>& results) {
  for (const RuleResult& r : results) {
    if (!r.ok && r.severity == "error") return true;
  }
  return false;
}

Result<std::unique_ptr<RuleSet>> RuleSet::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("rules file " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return IoError("rules file " + path + ": read failed");
  return Parse(text.str(), path);
}

Result<std::unique_ptr<RuleSet>> RuleSet::Parse(std::string_view yaml,
                                                const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(Where(source_name, e.mark) + ": not YAML: " + e.msg);
  }
  auto bad = [&](const YAML::Node& node, const std::string& message) {
    return InvalidArgumentError(Where(source_name, node.Mark()) + ": " + message);
  };
  if (!root.IsMap()) return bad(root, "expected a mapping with `version: 1` and `rules`");
  std::unique_ptr<RuleSet> set(new RuleSet());
  std::set<std::string> names;
  try {
    for (const auto& entry : root) {
      const std::string key = entry.first.as<std::string>();
      if (key != "version" && key != "rules") {
        return bad(entry.first, "unknown key \"" + key + "\" (expected version, rules)");
      }
    }
    if (!root["version"] || !root["version"].IsScalar() ||
        root["version"].as<std::string>() != "1") {
      return bad(root["version"] ? root["version"] : root, "`version: 1` is required");
    }
    const YAML::Node rules = root["rules"];
    if (!rules || !rules.IsSequence()) return bad(rules ? rules : root, "`rules` must be a list");
    std::lock_guard<std::mutex> lock(JqMutex());
    for (const YAML::Node& node : rules) {
      if (!node.IsMap()) return bad(node, "a rule must be a mapping with name and expr");
      auto rule = std::make_unique<Rule>();
      std::string expr, when, detail;
      for (const auto& field : node) {
        const std::string key = field.first.as<std::string>();
        if (!field.second.IsScalar()) return bad(field.second, "`" + key + "` must be a string");
        const std::string value = field.second.as<std::string>();
        if (key == "name") {
          rule->name = value;
        } else if (key == "expr") {
          expr = value;
        } else if (key == "when") {
          when = value;
        } else if (key == "detail") {
          detail = value;
        } else if (key == "message") {
          rule->message = value;
        } else if (key == "severity") {
          if (value != "error" && value != "warning") {
            return bad(field.second, "severity must be error or warning, got \"" + value + "\"");
          }
          rule->severity = value;
        } else {
          return bad(field.first, "unknown key \"" + key +
                                      "\" (expected name, expr, when, message, detail, severity)");
        }
      }
      if (rule->name.empty()) return bad(node, "a rule needs a `name`");
      if (!names.insert(rule->name).second) {
        return bad(node["name"], "rule \"" + rule->name + "\" is defined twice");
      }
      if (expr.empty()) return bad(node, "rule \"" + rule->name + "\" needs an `expr`");
      auto compile = [&](const std::string& text, const char* key, JqProgram* program) -> Status {
        const std::string where =
            Where(source_name, node[key].Mark()) + " (rule \"" + rule->name + "\", " + key + "): ";
        if (std::string word = RefusedIdentifierIn(text); !word.empty()) {
          return InvalidArgumentError(where + "`" + word +
                                      "` is not allowed (rules see only the value)");
        }
        if (std::string error = program->Compile(text); !error.empty()) {
          return InvalidArgumentError(where + error);
        }
        return Status();
      };
      GL_RETURN_IF_ERROR(compile(expr, "expr", &rule->expr));
      if (!when.empty()) {
        rule->when = std::make_unique<JqProgram>();
        GL_RETURN_IF_ERROR(compile(when, "when", rule->when.get()));
      }
      if (!detail.empty()) {
        rule->detail = std::make_unique<JqProgram>();
        GL_RETURN_IF_ERROR(compile(detail, "detail", rule->detail.get()));
      }
      if (rule->message.empty()) rule->message = "rule \"" + rule->name + "\" does not hold";
      set->rules_.push_back(std::move(rule));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(Where(source_name, e.mark) + ": " + e.msg);
  }
  return set;
}

std::vector<RuleResult> RuleSet::Evaluate(const nlohmann::ordered_json& value) const {
  const std::string input = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::vector<RuleResult> results;
  std::lock_guard<std::mutex> lock(JqMutex());
  for (const std::unique_ptr<Rule>& rule : rules_) {
    RuleResult r;
    r.name = rule->name;
    r.severity = rule->severity;
    if (rule->when) {
      Result<bool> applies = RunBoolean(*rule->when, input, "`when`");
      if (!applies.ok()) {
        r.ok = false;
        r.message = applies.status().message();
        results.push_back(std::move(r));
        continue;
      }
      if (!*applies) {
        r.skipped = true;
        results.push_back(std::move(r));
        continue;
      }
    }
    Result<bool> holds = RunBoolean(rule->expr, input, "`expr`");
    if (!holds.ok()) {
      r.ok = false;
      r.message = holds.status().message();
    } else if (!*holds) {
      r.ok = false;
      r.message = rule->message;
      if (rule->detail) {
        std::vector<jv> outputs;
        if (rule->detail->Run(input, &outputs).ok()) {
          for (jv& o : outputs) {
            if (!r.detail.empty()) r.detail += " ";
            r.detail += JvToString(o);
          }
        }
      }
    }
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace gemma_local
