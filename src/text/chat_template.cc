#include "text/chat_template.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/json_access.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "text/jinja/template.h"

namespace gemma_local {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxTemplateFileBytes = 16u << 20;

Result<nlohmann::ordered_json> ReadJsonFile(const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxTemplateFileBytes));
  nlohmann::ordered_json j =
      nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return CorruptDataError(path + ": not valid JSON");
  if (!j.is_object()) return CorruptDataError(path + ": expected a JSON object");
  return j;
}

// The string of token `id_key` in the GGUF vocabulary, if both exist.
std::optional<std::string> GgufTokenString(const gguf::GgufFile& f, const char* id_key) {
  const gguf::Value* tokens = f.Find("tokenizer.ggml.tokens");
  Result<int64_t> id = f.GetInt(id_key);
  if (tokens == nullptr || !id.ok() || *id < 0) return std::nullopt;
  const auto* arr = std::get_if<gguf::ArrayValue>(&tokens->data);
  if (arr == nullptr || static_cast<uint64_t>(*id) >= arr->elems.size()) return std::nullopt;
  const auto* s = std::get_if<std::string>(&arr->elems[static_cast<size_t>(*id)].data);
  if (s == nullptr) return std::nullopt;
  return *s;
}

Result<ChatTemplateSource> FromGguf(const std::string& path) {
  GL_ASSIGN_OR_RETURN(gguf::GgufFile f, gguf::GgufFile::Open(path));
  ChatTemplateSource out;
  if (f.Find("tokenizer.chat_template") != nullptr) {
    GL_ASSIGN_OR_RETURN(out.source, f.GetString("tokenizer.chat_template"));
    out.origin = path + " (tokenizer.chat_template)";
  }
  const std::pair<const char*, const char*> keys[] = {
      {"bos_token", "tokenizer.ggml.bos_token_id"},
      {"eos_token", "tokenizer.ggml.eos_token_id"},
      {"unk_token", "tokenizer.ggml.unknown_token_id"},
      {"sep_token", "tokenizer.ggml.seperator_token_id"},
      {"pad_token", "tokenizer.ggml.padding_token_id"},
  };
  for (const auto& [name, key] : keys) {
    if (auto s = GgufTokenString(f, key)) out.special_tokens[name] = *s;
  }
  return out;
}

// The default spdlog logger writes to stdout, which carries machine-readable output (--json,
// --jsonl); this warning goes to stderr through a logger of its own (no global registration).
void WarnBuiltinTemplate(const std::string& model_path, const std::string& family) {
  spdlog::logger log("gemma_local", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log.warn("{}: no chat template in the checkpoint; using the built-in {} format for plain text "
           "conversations (pass --template FILE for the model's own)",
           model_path, family == "gemma4" ? "Gemma 4" : "Gemma 3");
}

}  // namespace

Result<std::string> ChatTemplateFromConfigValue(const nlohmann::ordered_json& value,
                                                const std::string& where) {
  if (value.is_string()) return value.get_ref<const std::string&>();
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string at = JsonPathIndex(where, i);
      Result<std::string> name = JsonField<std::string>(value[i], "name", at);
      Result<std::string> tmpl = JsonField<std::string>(value[i], "template", at);
      if (!name.ok() || !tmpl.ok()) {
        return CorruptDataError(at + ": expected {\"name\": string, \"template\": string}");
      }
      if (*name == "default") return std::move(tmpl).value();
    }
    return NotFoundError(where + ": no template named \"default\" in the list");
  }
  return CorruptDataError(where + ": expected a string or a list of {name, template}");
}

nlohmann::ordered_json SpecialTokensFromConfig(const nlohmann::ordered_json& config) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  // Entries of another shape are skipped, as transformers would not see them as tokens either.
  auto token_string = [](const nlohmann::ordered_json& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get_ref<const std::string&>();
    const nlohmann::ordered_json* content = JsonFind(v, "content");
    if (content != nullptr && content->is_string()) return content->get_ref<const std::string&>();
    return std::nullopt;
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    const nlohmann::ordered_json* v = JsonFind(config, key);
    if (v == nullptr) continue;
    if (auto s = token_string(*v)) out[key] = *s;
  }
  const nlohmann::ordered_json* additional = JsonFind(config, "additional_special_tokens");
  if (additional != nullptr && additional->is_array()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& v : *additional) {
      if (auto s = token_string(v)) list.push_back(*s);
    }
    out["additional_special_tokens"] = list;
  }
  return out;
}

Result<ChatTemplateSource> FindChatTemplate(const std::string& model_path,
                                            const std::string& template_path) {
  std::error_code ec;
  ChatTemplateSource out;
  const fs::path p(model_path);
  const bool is_dir = fs::is_directory(p, ec);
  if (!is_dir && !fs::exists(p, ec))
    return NotFoundError(model_path + ": no such file or directory");
  std::vector<std::string> looked;

  auto try_config = [&](const std::string& cfg_path, bool take_template) -> Status {
    GL_ASSIGN_OR_RETURN(nlohmann::ordered_json cfg, ReadJsonFile(cfg_path));
    out.special_tokens = SpecialTokensFromConfig(cfg);
    const nlohmann::ordered_json* tmpl = JsonFind(cfg, "chat_template");
    if (take_template && out.source.empty() && tmpl != nullptr && !tmpl->is_null()) {
      GL_ASSIGN_OR_RETURN(out.source,
                          ChatTemplateFromConfigValue(*tmpl, cfg_path + ": chat_template"));
      out.origin = cfg_path + " (chat_template)";
    }
    return Status::Ok();
  };

  if (is_dir) {
    const fs::path jinja = p / "chat_template.jinja";
    const fs::path json = p / "chat_template.json";
    const fs::path cfg = p / "tokenizer_config.json";
    if (fs::exists(jinja, ec)) {
      GL_ASSIGN_OR_RETURN(out.source, ReadSmallFile(jinja.string(), kMaxTemplateFileBytes));
      out.origin = jinja.string();
    } else if (fs::exists(json, ec)) {
      GL_ASSIGN_OR_RETURN(nlohmann::ordered_json j, ReadJsonFile(json.string()));
      if (const nlohmann::ordered_json* tmpl = JsonFind(j, "chat_template")) {
        GL_ASSIGN_OR_RETURN(out.source,
                            ChatTemplateFromConfigValue(*tmpl, json.string() + ": chat_template"));
        out.origin = json.string() + " (chat_template)";
      }
    }
    looked = {jinja.string(), json.string(), cfg.string()};
    if (fs::exists(cfg, ec)) GL_RETURN_IF_ERROR(try_config(cfg.string(), true));
    if (out.source.empty() && template_path.empty()) {
      // A GGUF next to (or instead of) the HF files.
      for (const auto& entry : fs::directory_iterator(p, ec)) {
        if (entry.path().extension() != ".gguf") continue;
        looked.push_back(entry.path().string());
        GL_ASSIGN_OR_RETURN(ChatTemplateSource g, FromGguf(entry.path().string()));
        if (g.source.empty()) continue;
        out.source = std::move(g.source);
        out.origin = std::move(g.origin);
        if (out.special_tokens.empty()) out.special_tokens = std::move(g.special_tokens);
        break;
      }
    }
  } else if (p.extension() == ".gguf") {
    GL_ASSIGN_OR_RETURN(out, FromGguf(model_path));
    looked = {model_path + " (tokenizer.chat_template)"};
  } else {
    GL_RETURN_IF_ERROR(try_config(model_path, true));
    looked = {model_path + " (chat_template)"};
  }

  if (!template_path.empty()) {
    GL_ASSIGN_OR_RETURN(out.source, ReadSmallFile(template_path, kMaxTemplateFileBytes));
    out.origin = template_path;
  }
  if (out.source.empty()) {
    const std::string family = ModelFamilyForTemplate(model_path);
    if (std::optional<std::string> builtin = BuiltinChatTemplate(family)) {
      out.source = std::move(*builtin);
      out.origin = "built-in " + family + " chat format (fallback)";
      out.builtin = true;
      if (!out.special_tokens.contains("bos_token")) out.special_tokens["bos_token"] = "<bos>";
      WarnBuiltinTemplate(model_path, family);
      return out;
    }
    std::string where;
    for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
    return NotFoundError(model_path + ": no chat template found (looked in " + where +
                         "); pass --template FILE");
  }
  return out;
}

Status ValidateMessages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) return InvalidArgumentError("messages: expected a list");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return InvalidArgumentError(at + ": expected an object");
    const nlohmann::ordered_json* role = JsonFind(m, "role");
    if (role == nullptr) return InvalidArgumentError(at + ".role: missing");
    if (!role->is_string()) return InvalidArgumentError(at + ".role: expected a string");
  }
  return Status::Ok();
}

struct ChatTemplate::Impl {
  std::string source;
  std::string origin;
  nlohmann::ordered_json special_tokens;
  jinja::Template tmpl;
};

Result<ChatTemplate> ChatTemplate::FromSource(const std::string& source,
                                              const nlohmann::ordered_json& special_tokens,
                                              std::string origin) {
  Result<jinja::Template> t = jinja::Template::Parse(source);
  if (!t.ok()) return t.status().WithContext(origin);
  auto impl =
      std::make_shared<Impl>(Impl{source, std::move(origin), special_tokens, std::move(t).value()});
  ChatTemplate ct;
  ct.impl_ = std::move(impl);
  return ct;
}

Result<ChatTemplate> ChatTemplate::Load(const std::string& model_path,
                                        const std::string& template_path) {
  GL_ASSIGN_OR_RETURN(ChatTemplateSource src, FindChatTemplate(model_path, template_path));
  return FromSource(src.source, src.special_tokens, src.origin);
}

Result<std::string> ChatTemplate::Render(const ChatTemplateInputs& inputs) const {
  GL_RETURN_IF_ERROR(ValidateMessages(inputs.messages));
  if (inputs.tools && !inputs.tools->is_array() && !inputs.tools->is_null()) {
    return InvalidArgumentError("tools: expected a list");
  }
  if (!inputs.extra_kwargs.is_object())
    return InvalidArgumentError("template kwargs: expected an object");
  const StatusCode bad = StatusCode::kInvalidArgument;
  // Before the copies below (they recurse per level; jinja::Value::FromJson has the same cap but
  // would only see the value after the copy).
  GL_RETURN_IF_ERROR(CheckJsonDepth(inputs.messages, kMaxChatJsonDepth, "messages", bad));
  if (inputs.tools) {
    GL_RETURN_IF_ERROR(CheckJsonDepth(*inputs.tools, kMaxChatJsonDepth, "tools", bad));
  }
  GL_RETURN_IF_ERROR(
      CheckJsonDepth(inputs.extra_kwargs, kMaxChatJsonDepth, "template kwargs", bad));
  // Same keyword arguments, in the same precedence, as transformers' render_jinja_template.
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = inputs.messages;
  ctx["tools"] = inputs.tools ? *inputs.tools : nlohmann::ordered_json(nullptr);
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = inputs.add_generation_prompt;
  for (auto it = impl_->special_tokens.begin(); it != impl_->special_tokens.end(); ++it) {
    ctx[it.key()] = it.value();
  }
  if (inputs.enable_thinking) ctx["enable_thinking"] = *inputs.enable_thinking;
  for (auto it = inputs.extra_kwargs.begin(); it != inputs.extra_kwargs.end(); ++it) {
    ctx[it.key()] = it.value();
  }
  GL_ASSIGN_OR_RETURN(jinja::Value context, jinja::Value::FromJson(ctx));
  return impl_->tmpl.Render(context);
}

const std::string& ChatTemplate::source() const { return impl_->source; }
const std::string& ChatTemplate::origin() const { return impl_->origin; }
const nlohmann::ordered_json& ChatTemplate::special_tokens() const { return impl_->special_tokens; }

}  // namespace gemma_local
