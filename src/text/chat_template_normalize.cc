// OpenAI-style messages -> the shape the Gemma chat templates expect (see the facade header).
#include <string>

#include "gemma_local/chat_template.h"

namespace gemma_local {

namespace {

using json = nlohmann::ordered_json;

Result<json> NormalizeContent(const json& content, const std::string& at) {
  if (content.is_null()) return json("");
  if (content.is_string()) return content;
  if (!content.is_array())
    return InvalidArgumentError(at + ": expected a string, a list of parts or null");
  json parts = json::array();
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    const std::string pat = at + "[" + std::to_string(j) + "]";
    if (!part.is_object()) return InvalidArgumentError(pat + ": expected an object");
    if (!part.contains("type") || !part["type"].is_string()) {
      return InvalidArgumentError(pat + ".type: expected a string");
    }
    const std::string type = part["type"].get<std::string>();
    if (type == "text") {
      if (!part.contains("text") || !part["text"].is_string()) {
        return InvalidArgumentError(pat + ".text: expected a string");
      }
      parts.push_back(json::object({{"type", "text"}, {"text", part["text"]}}));
    } else if (type == "image" || type == "image_url") {
      parts.push_back(json::object({{"type", "image"}}));
    } else if (type == "audio" || type == "input_audio") {
      parts.push_back(json::object({{"type", "audio"}}));
    } else if (type == "video" || type == "video_url") {
      parts.push_back(json::object({{"type", "video"}}));
    } else {
      return InvalidArgumentError(pat + ".type: unsupported content part type \"" + type + "\"");
    }
  }
  return parts;
}

// The text of a tool message's content (string, or the text parts joined).
std::string ToolText(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array()) {
    for (const auto& p : content) {
      // Checked access only: hostile content must not throw (value() throws on a type mismatch).
      if (p.is_object() && p.contains("type") && p["type"] == "text" && p.contains("text") &&
          p["text"].is_string()) {
        text += p["text"].get<std::string>();
      }
    }
  }
  return text;
}

}  // namespace

Result<json> NormalizeOpenAiMessages(const json& messages) {
  if (!messages.is_array()) return InvalidArgumentError("messages: expected a list");
  json out = json::array();
  // Index in `out` of the assistant message whose tool calls the following tool messages answer.
  std::optional<size_t> open_calls;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json& m = messages[i];
    if (!m.is_object()) return InvalidArgumentError(at + ": expected an object");
    if (!m.contains("role") || !m["role"].is_string()) {
      return InvalidArgumentError(at + ".role: expected a string");
    }
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" &&
        role != "tool") {
      return InvalidArgumentError(at + ".role: unknown role \"" + role + "\"");
    }
    json msg = m;
    if (role == "tool") {
      if (!open_calls) {
        return InvalidArgumentError(
            at + ": a tool message must follow an assistant message with tool_calls");
      }
      json& assistant = out[*open_calls];
      std::string name;
      if (m.contains("name") && m["name"].is_string()) name = m["name"].get<std::string>();
      if (m.contains("tool_call_id")) {
        for (const auto& tc : assistant["tool_calls"]) {
          if (tc.contains("id") && tc["id"] == m["tool_call_id"])
            name = tc["function"]["name"].get<std::string>();
        }
      }
      if (name.empty()) {
        return InvalidArgumentError(
            at + ".tool_call_id: matches no tool call of the preceding assistant message");
      }
      const std::string text = ToolText(m.value("content", json("")));
      json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
      json response = parsed.is_object() ? parsed : json(text);
      if (!assistant.contains("tool_responses")) assistant["tool_responses"] = json::array();
      assistant["tool_responses"].push_back(json::object({{"name", name}, {"response", response}}));
      continue;
    }
    open_calls.reset();
    GL_ASSIGN_OR_RETURN(msg["content"],
                        NormalizeContent(m.value("content", json(nullptr)), at + ".content"));
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      if (role != "assistant")
        return InvalidArgumentError(at + ".tool_calls: only assistant messages carry tool calls");
      if (!m["tool_calls"].is_array())
        return InvalidArgumentError(at + ".tool_calls: expected a list");
      json calls = json::array();
      for (size_t k = 0; k < m["tool_calls"].size(); ++k) {
        const std::string cat = at + ".tool_calls[" + std::to_string(k) + "]";
        json call = m["tool_calls"][k];
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) {
          return InvalidArgumentError(cat + ".function: expected an object");
        }
        json& fn = call["function"];
        if (!fn.contains("name") || !fn["name"].is_string()) {
          return InvalidArgumentError(cat + ".function.name: expected a string");
        }
        if (!fn.contains("arguments") || fn["arguments"].is_null()) {
          fn["arguments"] = json::object();
        } else if (fn["arguments"].is_string()) {
          const std::string text = fn["arguments"].get<std::string>();
          json args = text.empty() ? json::object()
                                   : json::parse(text, nullptr, /*allow_exceptions=*/false);
          if (!args.is_object()) {
            return InvalidArgumentError(cat + ".function.arguments: not a JSON object");
          }
          fn["arguments"] = std::move(args);
        } else if (!fn["arguments"].is_object()) {
          return InvalidArgumentError(cat +
                                      ".function.arguments: expected an object or a JSON string");
        }
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
