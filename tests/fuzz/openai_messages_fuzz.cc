// libFuzzer target: any bytes as an OpenAI chat request (a messages list, or an object with
// "messages" and optional "tools") must normalize (NormalizeOpenAiMessages) to a value or an
// error, and normalized messages must render to a value or an error, with a small template that
// reads every field normalization produces and with the built-in Gemma 4 fallback template. An
// exception, crash, hang or leak is a library bug (the server runs this path on request bodies).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "gemma_local/chat_template.h"
#include "text/chat_template.h"

namespace {

using json = nlohmann::ordered_json;

// Walks roles, content (strings and parts), tool calls (name, arguments) and folded tool
// responses, the way the Gemma templates do.
constexpr const char* kTemplate = R"JINJA({{ bos_token }}
{%- for m in messages -%}
<{{ m['role'] }}>
{%- if m['content'] is string -%}{{ m['content'] }}
{%- else -%}{%- for p in m['content'] -%}[{{ p['type'] }}
{%- if p['type'] == 'text' -%}:{{ p['text'] }}{%- endif -%}]{%- endfor -%}{%- endif -%}
{%- for tc in m['tool_calls'] | default([]) -%}
call:{{ tc['function']['name'] }}{{ tc['function']['arguments'] | tojson }}
{%- for k, v in tc['function']['arguments'] | items -%}{{ k }}={{ v }};{%- endfor -%}
{%- endfor -%}
{%- for r in m['tool_responses'] | default([]) -%}
response:{{ r['name'] }}{{ r['response'] | tojson }}
{%- endfor -%}
{%- endfor -%}
{%- if tools -%}{{ tools | tojson }}{%- endif -%}
{%- if add_generation_prompt -%}<model>{%- endif -%})JINJA";

const gemma_local::ChatTemplate& Template(bool builtin) {
  static const gemma_local::ChatTemplate* small = new gemma_local::ChatTemplate(
      *gemma_local::ChatTemplate::FromSource(kTemplate, json({{"bos_token", "<bos>"}})));
  static const gemma_local::ChatTemplate* gemma4 =
      new gemma_local::ChatTemplate(*gemma_local::ChatTemplate::FromSource(
          *gemma_local::BuiltinChatTemplate("gemma4"), json({{"bos_token", "<bos>"}})));
  return builtin ? *gemma4 : *small;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json request = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return 0;
  const json* messages = &request;
  gemma_local::ChatTemplateInputs in;
  if (request.is_object()) {
    const auto it = request.find("messages");
    if (it == request.end()) return 0;
    messages = &*it;
    const auto tools = request.find("tools");
    // Render checks the tools' type and nesting itself.
    if (tools != request.end()) in.tools = *tools;
  }
  auto normalized = gemma_local::NormalizeOpenAiMessages(*messages);
  if (!normalized.ok()) return 0;
  in.messages = std::move(normalized).value();
  in.add_generation_prompt = true;
  for (bool builtin : {false, true}) {
    auto rendered = Template(builtin).Render(in);
    (void)rendered;
  }
  return 0;
}
