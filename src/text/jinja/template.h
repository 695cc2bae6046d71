// A parsed Jinja2 template and its renderer: the engine behind chat templates.
//
// Semantics are Python Jinja2 3.x as Hugging Face transformers configures it for
// apply_chat_template: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]) with autoescape off, the default (non-chainable) Undefined, the
// json.dumps-based `tojson` filter, and the `raise_exception` / `strftime_now` globals. The
// `{% generation %}` tag of transformers' AssistantTracker renders its body.
//
// Contract: Parse and Render never throw and never abort on any input; every failure (syntax, a
// runtime type error, raise_exception, an exceeded limit) is an error Status whose message names
// the template line and column. Rendering is bounded by RenderOptions. A Template is immutable
// after Parse and may be rendered concurrently from several threads.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gemma_local/status.h"
#include "text/jinja/value.h"

namespace gemma_local::jinja {

struct Stmt;

struct RenderOptions {
  size_t max_output_bytes = 64u << 20;       // rendered text, and any single string value
  size_t max_container_items = 1u << 20;     // elements of any single list built while rendering
  int max_call_depth = 200;                  // nested macro calls (recursion)
  int64_t max_loop_iterations = 10'000'000;  // all loop iterations of one render, together
  // The time strftime_now formats; the current local time when unset (tests pin it).
  std::optional<std::time_t> now;
};

class Template {
 public:
  static Result<Template> Parse(std::string_view source);

  // Renders with the given top-level variables (a dict Value; keys must be strings).
  Result<std::string> Render(const Value& context, const RenderOptions& options = {}) const;

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
};

}  // namespace gemma_local::jinja
