// libFuzzer target: any bytes as a Jinja template must parse to a value or an error, and a parsed
// template must render (against a small fixed chat context) to a value or an error: no crash,
// hang, leak or unbounded memory. Limits are tighter than the defaults to keep runs fast.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "text/jinja/template.h"

namespace {

const gemma_local::jinja::Value& Context() {
  static const gemma_local::jinja::Value* ctx = [] {
    const auto j = nlohmann::ordered_json::parse(R"({
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Hi \u00e9 "}]},
        {"role": "assistant", "content": "<|channel>x<channel|>Hello", "tool_calls": [
          {"id": "c1", "type": "function",
           "function": {"name": "f", "arguments": {"a": 1, "b": [true, null, 1.5]}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\": true}"}
      ],
      "tools": [{"type": "function", "function": {"name": "f", "description": "d",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}},
                       "required": ["a"]}}}],
      "documents": null, "add_generation_prompt": true, "bos_token": "<bos>",
      "eos_token": "<eos>", "enable_thinking": false
    })");
    return new gemma_local::jinja::Value(*gemma_local::jinja::Value::FromJson(j));
  }();
  return *ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  auto tmpl = gemma_local::jinja::Template::Parse(source);
  if (!tmpl.ok()) return 0;
  gemma_local::jinja::RenderOptions options;
  options.max_output_bytes = 1 << 20;
  options.max_container_items = 1 << 16;
  options.max_loop_iterations = 100000;
  options.max_call_depth = 64;
  options.now = 0;
  auto out = tmpl->Render(Context(), options);
  (void)out;
  return 0;
}
