// OpenAI-style messages -> the shape the Gemma chat templates expect (see the facade header).
//
// The messages come straight from a request, so nothing here may throw: every read goes through
// core/json_access (typed, path-naming), nesting is bounded before any value is copied (nlohmann
// copies recurse), and user strings quoted in errors are escaped and cut short.
#include <cstdint>
#include <string>

#include "core/json_access.h"
#include "core/utf8.h"
#include "gemma_local/chat_template.h"

namespace gemma_local {

namespace {

using json = nlohmann::ordered_json;

constexpr StatusCode kBad = StatusCode::kInvalidArgument;

// Nesting allowed in one message field (content, tool call arguments, a parsed tool result). Real
// conversations nest a few levels; the bound keeps copies, comparisons and the template's JSON
// conversion (jinja caps at 200 levels) away from stack exhaustion.
constexpr size_t kMaxFieldDepth = 64;

// A required string member. Missing reads "<path>: expected a string" (the wording callers already
// match); another type adds ", got <type>".
Result<std::string> RequiredString(const json& obj, std::string_view key, const std::string& path) {
  const json* v = JsonFind(obj, key);
  if (v == nullptr) return InvalidArgumentError(JsonPathKey(path, key) + ": expected a string");
  return JsonGet<std::string>(*v, JsonPathKey(path, key), kBad);
}

// A user string inside an error message: escaped, at most 80 characters.
std::string Quoted(std::string_view s) { return "\"" + EscapeForMessage(s, 80) + "\""; }

Result<json> NormalizeContent(const json* content, const std::string& at) {
  if (content == nullptr || content->is_null()) return json("");
  if (content->is_string()) return *content;
  if (!content->is_array())
    return InvalidArgumentError(at + ": expected a string, a list of parts or null");
  json parts = json::array();
  for (size_t j = 0; j < content->size(); ++j) {
    const std::string pat = JsonPathIndex(at, j);
    GL_ASSIGN_OR_RETURN(const json* part, JsonGetObject((*content)[j], pat, kBad));
    GL_ASSIGN_OR_RETURN(const std::string type, RequiredString(*part, "type", pat));
    if (type == "text") {
      GL_ASSIGN_OR_RETURN(std::string text, RequiredString(*part, "text", pat));
      parts.push_back(json::object({{"type", "text"}, {"text", std::move(text)}}));
    } else if (type == "image" || type == "image_url") {
      parts.push_back(json::object({{"type", "image"}}));
    } else if (type == "audio" || type == "input_audio") {
      parts.push_back(json::object({{"type", "audio"}}));
    } else if (type == "video" || type == "video_url") {
      parts.push_back(json::object({{"type", "video"}}));
    } else {
      return InvalidArgumentError(pat + ".type: unsupported content part type " + Quoted(type));
    }
  }
  return parts;
}

// The text of normalized content: the string, or the text parts joined (others are dropped).
std::string ContentText(const json& content) {
  if (content.is_string()) return content.get_ref<const std::string&>();
  std::string text;
  for (const json& part : content) {
    const json* t = JsonFind(part, "text");
    if (t != nullptr && t->is_string()) text += t->get_ref<const std::string&>();
  }
  return text;
}

// JSON text that must be an object (tool call arguments); `what` ends the error message.
Result<json> ParseObject(const std::string& text, const std::string& path, const char* what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return InvalidArgumentError(path + ": " + what);
  GL_RETURN_IF_ERROR(CheckJsonDepth(parsed, kMaxFieldDepth, path, kBad));
  return parsed;
}

// One assistant tool call, checked and with its arguments as an object.
Result<json> NormalizeToolCall(const json& in, const std::string& cat) {
  GL_RETURN_IF_ERROR(JsonGetObject(in, cat, kBad).status());
  GL_RETURN_IF_ERROR(JsonOptionalField<std::string>(in, "id", "", cat, kBad).status());
  GL_RETURN_IF_ERROR(JsonOptionalField<std::string>(in, "type", "", cat, kBad).status());
  const std::string fat = cat + ".function";
  const json* fn = JsonFind(in, "function");
  if (fn == nullptr) return InvalidArgumentError(fat + ": expected an object");
  GL_RETURN_IF_ERROR(JsonGetObject(*fn, fat, kBad).status());
  GL_RETURN_IF_ERROR(RequiredString(*fn, "name", fat).status());
  json call = in;
  json& args = call["function"]["arguments"];
  if (args.is_null()) {
    args = json::object();
  } else if (args.is_string()) {
    const std::string& text = args.get_ref<const std::string&>();
    if (text.empty()) {
      args = json::object();
    } else {
      GL_ASSIGN_OR_RETURN(args, ParseObject(text, fat + ".arguments", "not a JSON object"));
    }
  } else if (!args.is_object()) {
    return InvalidArgumentError(fat + ".arguments: expected an object or a JSON string");
  }
  return call;
}

// Folds tool message `m` (at `at`) into `assistant`'s tool_responses.
Status FoldToolResult(const json& m, const std::string& at, json& assistant) {
  GL_ASSIGN_OR_RETURN(const std::string id,
                      JsonOptionalField<std::string>(m, "tool_call_id", "", at, kBad));
  GL_ASSIGN_OR_RETURN(std::string name, JsonOptionalField<std::string>(m, "name", "", at, kBad));
  if (!id.empty()) {
    // The assistant's calls passed NormalizeToolCall; read them checked all the same.
    for (const json& tc : assistant["tool_calls"]) {
      const json* tc_id = JsonFind(tc, "id");
      if (tc_id == nullptr || !tc_id->is_string() || tc_id->get_ref<const std::string&>() != id) {
        continue;
      }
      const json* fn = JsonFind(tc, "function");
      const json* fn_name = fn != nullptr ? JsonFind(*fn, "name") : nullptr;
      if (fn_name != nullptr && fn_name->is_string()) name = fn_name->get_ref<const std::string&>();
    }
  }
  if (name.empty()) {
    return InvalidArgumentError(at +
                                ".tool_call_id: matches no tool call of "
                                "the preceding assistant message");
  }
  GL_ASSIGN_OR_RETURN(const json content,
                      NormalizeContent(JsonFind(m, "content"), at + ".content"));
  const std::string text = ContentText(content);
  // A JSON object result is passed as the object, anything else as the text.
  json response = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (response.is_object()) {
    GL_RETURN_IF_ERROR(CheckJsonDepth(response, kMaxFieldDepth, at + ".content", kBad));
  } else {
    response = text;
  }
  if (!assistant.contains("tool_responses")) assistant["tool_responses"] = json::array();
  assistant["tool_responses"].push_back(
      json::object({{"name", std::move(name)}, {"response", std::move(response)}}));
  return Status::Ok();
}

}  // namespace

Result<json> NormalizeOpenAiMessages(const json& messages) {
  if (!messages.is_array()) return InvalidArgumentError("messages: expected a list");
  json out = json::array();
  // Index in `out` of the assistant message whose tool calls the following tool messages answer.
  // (An index, not std::optional: g++ 12 warns maybe-uninitialized on the optional here.)
  constexpr size_t kNone = SIZE_MAX;
  size_t open_calls = kNone;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string at = JsonPathIndex("messages", i);
    const json& m = messages[i];
    if (!m.is_object()) return InvalidArgumentError(at + ": expected an object");
    // Bound nesting before anything below copies or compares a value of this message.
    for (auto it = m.begin(); it != m.end(); ++it) {
      GL_RETURN_IF_ERROR(CheckJsonDepth(it.value(), kMaxFieldDepth,
                                        JsonPathKey(at, EscapeForMessage(it.key())), kBad));
    }
    GL_ASSIGN_OR_RETURN(const std::string role, RequiredString(m, "role", at));
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" &&
        role != "tool") {
      return InvalidArgumentError(at + ".role: unknown role " + Quoted(role));
    }
    GL_RETURN_IF_ERROR(JsonOptionalField<std::string>(m, "name", "", at, kBad).status());
    if (role == "tool") {
      if (open_calls == kNone) {
        return InvalidArgumentError(at +
                                    ": a tool message must follow an "
                                    "assistant message with tool_calls");
      }
      GL_RETURN_IF_ERROR(FoldToolResult(m, at, out[open_calls]));
      continue;
    }
    open_calls = kNone;
    json msg = m;
    GL_ASSIGN_OR_RETURN(msg["content"], NormalizeContent(JsonFind(m, "content"), at + ".content"));
    const json* tool_calls = JsonFind(m, "tool_calls");
    if (tool_calls != nullptr && !tool_calls->is_null()) {
      if (role != "assistant")
        return InvalidArgumentError(at + ".tool_calls: only assistant messages carry tool calls");
      if (!tool_calls->is_array()) return InvalidArgumentError(at + ".tool_calls: expected a list");
      json calls = json::array();
      for (size_t k = 0; k < tool_calls->size(); ++k) {
        GL_ASSIGN_OR_RETURN(
            json call, NormalizeToolCall((*tool_calls)[k], JsonPathIndex(at + ".tool_calls", k)));
        calls.push_back(std::move(call));
      }
      msg["tool_calls"] = std::move(calls);
      if (!msg["tool_calls"].empty()) open_calls = out.size();
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace gemma_local
