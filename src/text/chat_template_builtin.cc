// Built-in fallback chat formats for checkpoints that carry no chat template (see
// src/text/chat_template.h). They are written for this project, cover plain text conversations
// only, and render those byte-identically to the official Gemma 3 / Gemma 4 templates (tested in
// tests/text/chat_template_builtin_test.cc). Anything else (tools, tool calls, media) raises a
// template error that says to pass --template: guessing such formats would silently mislead the
// model.
#include <filesystem>
#include <string>
#include <string_view>

#include "core/json_access.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "text/chat_template.h"

namespace gemma_local {
namespace {

namespace fs = std::filesystem;

// Shared macro: the text of a message's content (a string, or a list of text parts).
constexpr std::string_view kTextMacro = R"JINJA(
{%- macro fallback_text(content, strip) -%}
    {%- if content is string -%}
        {{- content | trim if strip else content -}}
    {%- elif content is sequence -%}
        {%- for part in content -%}
            {%- if part['type'] != 'text' -%}
                {{- raise_exception('the built-in fallback chat template supports text content only; pass --template FILE') -}}
            {%- endif -%}
            {{- part['text'] | trim if strip else part['text'] -}}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro -%}
{%- for message in messages -%}
    {%- if message.get('tool_calls') or message.get('tool_responses') or message['role'] == 'tool' -%}
        {{- raise_exception('the built-in fallback chat template supports plain text conversations only; pass --template FILE') -}}
    {%- endif -%}
{%- endfor -%}
{%- if tools -%}
    {{- raise_exception('the built-in fallback chat template does not support tools; pass --template FILE') -}}
{%- endif -%}
)JINJA";

// Gemma 3: the system text (untrimmed) + a blank line opens the first user turn; roles alternate.
constexpr std::string_view kGemma3Body = R"JINJA(
{{- bos_token -}}
{%- set ns = namespace(prefix='', first=0) -%}
{%- if messages | length > 0 and messages[0]['role'] == 'system' -%}
    {%- set ns.prefix = fallback_text(messages[0]['content'], false) ~ '\n\n' -%}
    {%- set ns.first = 1 -%}
{%- endif -%}
{%- for message in messages[ns.first:] -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
    {%- endif -%}
    {{- '<start_of_turn>' ~ ('model' if message['role'] == 'assistant' else message['role']) ~ '\n' -}}
    {%- if loop.first -%}
        {{- ns.prefix -}}
    {%- endif -%}
    {{- fallback_text(message['content'], true) -}}
    {{- '<end_of_turn>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<start_of_turn>model\n' -}}
{%- endif -%}
)JINJA";

// Gemma 4: a system turn when thinking is on or a system/developer message comes first; model
// turns drop any <|channel>...<channel|> span; consecutive model messages share one turn opening;
// without thinking the generation prompt pre-closes an empty thought channel.
constexpr std::string_view kGemma4Body = R"JINJA(
{%- macro fallback_visible(text) -%}
    {%- set acc = namespace(text='') -%}
    {%- for chunk in text.split('<channel|>') -%}
        {%- set acc.text = acc.text ~ chunk.split('<|channel>')[0] -%}
    {%- endfor -%}
    {{- acc.text | trim -}}
{%- endmacro -%}
{%- set thinking = enable_thinking is defined and enable_thinking -%}
{%- set ns = namespace(first=0, prev_role='') -%}
{{- bos_token -}}
{%- set has_system = messages | length > 0 and messages[0]['role'] in ['system', 'developer'] -%}
{%- if thinking or has_system -%}
    {{- '<|turn>system\n' -}}
    {%- if thinking -%}
        {{- '<|think|>\n' -}}
    {%- endif -%}
    {%- if has_system -%}
        {%- set ns.first = 1 -%}
        {%- if messages[0]['content'] is string -%}
            {{- messages[0]['content'] | trim -}}
        {%- else -%}
            {%- for part in messages[0]['content'] -%}
                {{- fallback_text([part], true) ~ ' ' -}}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{- '<turn|>\n' -}}
{%- endif -%}
{%- for message in messages[ns.first:] -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {%- if not (role == 'model' and ns.prev_role == 'model') -%}
        {{- '<|turn>' ~ role ~ '\n' -}}
    {%- endif -%}
    {%- set ns.prev_role = role -%}
    {%- if role == 'model' and message['content'] is string -%}
        {{- fallback_visible(message['content']) -}}
    {%- elif role == 'model' -%}
        {%- for part in message['content'] -%}
            {{- fallback_visible(fallback_text([part], false)) -}}
        {%- endfor -%}
    {%- else -%}
        {{- fallback_text(message['content'], true) -}}
    {%- endif -%}
    {{- '<turn|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|turn>model\n' -}}
    {%- if not thinking -%}
        {{- '<|channel>thought\n<channel|>' -}}
    {%- endif -%}
{%- endif -%}
)JINJA";

// "gemma3" / "gemma4" from a model_type or architecture string, else "".
std::string FamilyOf(std::string_view name) {
  if (name.rfind("gemma3", 0) == 0 || name.rfind("Gemma3", 0) == 0) return "gemma3";
  if (name.rfind("gemma4", 0) == 0 || name.rfind("Gemma4", 0) == 0) return "gemma4";
  return "";
}

std::string FamilyFromConfigJson(const fs::path& config) {
  std::error_code ec;
  if (!fs::is_regular_file(config, ec)) return "";
  Result<std::string> text = ReadSmallFile(config.string(), 16u << 20);
  if (!text.ok()) return "";
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  // Best effort: any key of an unexpected type is skipped (the family is then unknown).
  for (const nlohmann::json* cfg : {&j, JsonFind(j, "text_config")}) {
    if (cfg == nullptr) continue;
    const nlohmann::json* model_type = JsonFind(*cfg, "model_type");
    if (model_type != nullptr && model_type->is_string()) {
      const std::string f = FamilyOf(model_type->get_ref<const std::string&>());
      if (!f.empty()) return f;
    }
  }
  const nlohmann::json* architectures = JsonFind(j, "architectures");
  if (architectures != nullptr && architectures->is_array()) {
    for (const auto& a : *architectures) {
      if (!a.is_string()) continue;
      const std::string f = FamilyOf(a.get_ref<const std::string&>());
      if (!f.empty()) return f;
    }
  }
  return "";
}

std::string FamilyFromGguf(const fs::path& path) {
  Result<gguf::GgufFile> f = gguf::GgufFile::Open(path.string());
  if (!f.ok()) return "";
  Result<std::string> arch = f->GetString("general.architecture");
  return arch.ok() ? FamilyOf(*arch) : "";
}

}  // namespace

std::string ModelFamilyForTemplate(const std::string& model_path) {
  std::error_code ec;
  const fs::path p(model_path);
  if (p.extension() == ".gguf") return FamilyFromGguf(p);
  const fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
  if (std::string f = FamilyFromConfigJson(dir / "config.json"); !f.empty()) return f;
  if (!fs::is_directory(p, ec)) return "";
  for (const auto& entry : fs::directory_iterator(p, ec)) {
    if (entry.path().extension() != ".gguf") continue;
    if (std::string f = FamilyFromGguf(entry.path()); !f.empty()) return f;
  }
  return "";
}

std::optional<std::string> BuiltinChatTemplate(std::string_view family) {
  if (family == "gemma3") return std::string(kTextMacro) + std::string(kGemma3Body);
  if (family == "gemma4") return std::string(kTextMacro) + std::string(kGemma4Body);
  return std::nullopt;
}

}  // namespace gemma_local
