#include "server/chat_completions.h"

#include <algorithm>
#include <utility>

#include "server/token_text.h"

namespace gemma_local::server {
namespace {

ApiError Unsupported(const std::string& field, const std::string& what) {
  return BadField(field, what, "unsupported");
}

// The thinking switch: chat_template_kwargs.enable_thinking (as vLLM and llama-server take it)
// or reasoning_effort ("none" off, any other level on).
bool ReadThinking(const nlohmann::ordered_json& body, ChatInput* chat, ApiError* error) {
  if (auto kw = body.find("chat_template_kwargs"); kw != body.end() && !kw->is_null()) {
    if (!kw->is_object()) {
      *error = BadField("chat_template_kwargs", "expected an object");
      return false;
    }
    bool thinking = false;
    if (kw->contains("enable_thinking")) {
      if (!ReadBool(*kw, "enable_thinking", &thinking, error)) {
        error->param = "chat_template_kwargs.enable_thinking";
        return false;
      }
      chat->enable_thinking = thinking;
    }
  }
  if (auto effort = body.find("reasoning_effort"); effort != body.end() && !effort->is_null()) {
    if (!effort->is_string()) {
      *error = BadField("reasoning_effort", "expected a string");
      return false;
    }
    chat->enable_thinking = effort->get<std::string>() != "none";
  }
  return true;
}

// response_format (OpenAI): text; json_object (a JSON object); json_schema {schema, strict}.
// `strict: false` lets the engine drop schema keywords it cannot enforce (reported in the reply);
// otherwise such a keyword is a 400. llama-server's top-level "json_schema" and "grammar" (GBNF)
// are taken too.
bool ReadResponseFormat(const nlohmann::ordered_json& body, Request* request, ApiError* error) {
  if (auto schema = body.find("json_schema"); schema != body.end() && !schema->is_null()) {
    if (!schema->is_object() && !schema->is_boolean()) {
      *error = BadField("json_schema", "expected a JSON Schema (an object)");
      return false;
    }
    request->constraint = Constraint::JsonSchema(*schema);
  }
  // llama-server's top-level "grammar": GBNF text.
  if (auto grammar = body.find("grammar"); grammar != body.end() && !grammar->is_null()) {
    if (!grammar->is_string()) {
      *error = BadField("grammar", "expected GBNF grammar text (a string)");
      return false;
    }
    if (request->constraint) {
      *error = BadField("grammar", "give either grammar or json_schema, not both");
      return false;
    }
    request->constraint = Constraint::Gbnf(grammar->get<std::string>());
  }
  auto rf = body.find("response_format");
  if (rf == body.end() || rf->is_null()) return true;
  if (request->constraint && body.contains("grammar")) {
    const auto t = rf->is_object() ? rf->find("type") : rf->end();
    if (!(rf->is_object() && t != rf->end() && *t == "text")) {
      *error = BadField("grammar", "give either grammar or response_format, not both");
      return false;
    }
  }
  // find, never a const operator[] (undefined behaviour for a missing key).
  std::string type;
  if (rf->is_object()) {
    if (auto t = rf->find("type"); t != rf->end() && t->is_string()) type = t->get<std::string>();
  }
  if (type == "text") return true;
  if (type == "json_object") {
    request->constraint = Constraint::JsonSchema(
        nlohmann::ordered_json{{"type", "object"}, {"additionalProperties", true}});
    return true;
  }
  if (type == "json_schema") {
    const nlohmann::ordered_json* spec = rf->contains("json_schema") ? &(*rf)["json_schema"] : &*rf;
    if (!spec->is_object() || !spec->contains("schema") ||
        !((*spec)["schema"].is_object() || (*spec)["schema"].is_boolean())) {
      *error = BadField("response_format",
                        "type 'json_schema' needs json_schema.schema (a JSON Schema object)");
      return false;
    }
    const auto strict = spec->find("strict");
    const bool best_effort = strict != spec->end() && strict->is_boolean() && !strict->get<bool>();
    request->constraint = Constraint::JsonSchema((*spec)["schema"], best_effort);
    return true;
  }
  *error = BadField("response_format",
                    "expected {\"type\": \"text\" | \"json_object\" | \"json_schema\"}");
  return false;
}

}  // namespace

bool ParseChatRequest(const nlohmann::ordered_json& body, int max_messages, int max_n,
                      ChatRequest* out, ApiError* error) {
  if (!body.is_object()) {
    *error = BadField("body", "expected a JSON object", "invalid_request");
    return false;
  }
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty()) {
    *error = BadField("messages", "expected a non-empty array of messages");
    return false;
  }
  if (static_cast<int64_t>(messages->size()) > max_messages) {
    *error = BadField("messages",
                      "at most " + std::to_string(max_messages) + " messages, got " +
                          std::to_string(messages->size()),
                      "too_many_messages");
    return false;
  }
  if (!ReadCommonFields(body, max_n, &out->common, error)) return false;
  if (!ReadBool(body, "logprobs", &out->logprobs, error)) return false;
  int64_t top = 0;
  if (!ReadInt(body, "top_logprobs", 0, 20, &top, error)) return false;
  if (top > 0 && !out->logprobs) {
    *error = BadField("top_logprobs", "needs logprobs: true");
    return false;
  }
  out->top_logprobs = static_cast<int>(top);
  out->common.request.logprobs = out->logprobs ? out->top_logprobs : -1;

  if (!ReadResponseFormat(body, &out->common.request, error)) return false;
  if (auto bias = body.find("logit_bias"); bias != body.end() && !bias->is_null()) {
    if (!bias->is_object()) {
      *error = BadField("logit_bias", "expected an object");
      return false;
    }
    if (!bias->empty()) {
      *error = Unsupported("logit_bias", "not supported by this server");
      return false;
    }
  }
  ChatInput chat;
  chat.messages = *messages;
  chat.openai_format = true;
  bool tools_off = false;
  if (auto choice = body.find("tool_choice"); choice != body.end() && !choice->is_null()) {
    if (choice->is_string() && (*choice == "none" || *choice == "auto")) {
      tools_off = *choice == "none";
    } else if (choice->is_string() && *choice == "required") {
      *error = Unsupported("tool_choice",
                           "'required' needs constrained decoding (not yet here); "
                           "use 'auto' or 'none'");
      return false;
    } else if (choice->is_object()) {
      *error = Unsupported("tool_choice",
                           "naming a function needs constrained decoding (not yet "
                           "here); use 'auto' or 'none'");
      return false;
    } else {
      *error = BadField("tool_choice", "expected 'none', 'auto', 'required' or an object");
      return false;
    }
  }
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) {
      *error = BadField("tools", "expected an array");
      return false;
    }
    for (const auto& t : *tools) {
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
          !t["function"].contains("name") || !t["function"]["name"].is_string()) {
        *error = BadField("tools",
                          "each tool must be {\"type\": \"function\", \"function\": "
                          "{\"name\", ...}}");
        return false;
      }
    }
    if (!tools_off && !tools->empty()) chat.tools = *tools;
  }
  if (!ReadThinking(body, &chat, error)) return false;
  if (out->common.request.constraint && chat.enable_thinking.value_or(false)) {
    *error = BadField("response_format",
                      "structured output cannot be combined with thinking "
                      "(it would constrain the thoughts); turn thinking off");
    return false;
  }
  out->common.request.input = RequestInput::Chat(std::move(chat));
  return true;
}

nlohmann::json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

Usage SumUsage(const std::vector<Usage>& usages) {
  Usage total;
  for (const Usage& u : usages) {
    total.prompt_tokens = std::max(total.prompt_tokens, u.prompt_tokens);
    total.cached_tokens = std::max(total.cached_tokens, u.cached_tokens);
    total.completion_tokens += u.completion_tokens;
  }
  return total;
}

nlohmann::json UsageChunk(const ResponseHeader& h, const std::string& object, const Usage& usage) {
  return {{"id", h.id},
          {"object", object},
          {"created", h.created},
          {"model", h.model},
          {"choices", nlohmann::json::array()},
          {"usage", UsageJson(usage)}};
}

nlohmann::json ChatCompletionBody(const std::vector<Completion>& completions,
                                  const ResponseHeader& h, const Tokenizer* tokenizer,
                                  bool logprobs) {
  nlohmann::json choices = nlohmann::json::array();
  std::vector<Usage> usages;
  for (size_t i = 0; i < completions.size(); ++i) {
    const Completion& c = completions[i];
    nlohmann::json message = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
    if (!c.tool_calls.empty()) {
      message["tool_calls"] = nlohmann::json::array();
      for (const ToolCall& t : c.tool_calls) {
        message["tool_calls"].push_back(nlohmann::json(t.ToJson()));
      }
    }
    const std::string finish = !c.tool_calls.empty() ? "tool_calls" : c.finish_reason;
    choices.push_back({{"index", i},
                       {"message", message},
                       {"logprobs", logprobs ? ChatLogprobs(c.logprobs, tokenizer) : nullptr},
                       {"finish_reason", finish}});
    // Structured output's account (an extension field): whether the value passed the whole
    // schema, including the keywords only checked after generating, and what best effort
    // dropped.
    if (c.constraint) choices.back()["constraint"] = nlohmann::json(c.constraint->ToJson());
    usages.push_back(c.usage);
  }
  return {{"id", h.id},           {"object", "chat.completion"},
          {"created", h.created}, {"model", h.model},
          {"choices", choices},   {"usage", UsageJson(SumUsage(usages))}};
}

std::vector<nlohmann::json> ChatChunks(const Event& e, int index, const ResponseHeader& h,
                                       ChatChoiceStream* state, const Tokenizer* tokenizer,
                                       bool logprobs) {
  std::vector<nlohmann::json> out;
  auto chunk = [&](nlohmann::json delta, nlohmann::json finish, nlohmann::json lp) {
    if (state->first) {
      delta["role"] = "assistant";
      state->first = false;
    }
    out.push_back({{"id", h.id},
                   {"object", "chat.completion.chunk"},
                   {"created", h.created},
                   {"model", h.model},
                   {"choices",
                    {{{"index", index},
                      {"delta", delta},
                      {"logprobs", std::move(lp)},
                      {"finish_reason", finish}}}}});
  };
  // The step's log-probabilities ride on its first chunk (or a chunk of their own).
  nlohmann::json lp = logprobs && !e.logprobs.empty() ? ChatLogprobs(e.logprobs, tokenizer)
                                                      : nlohmann::json(nullptr);
  for (const ReplyEvent& d : e.deltas) {
    if (d.kind == ReplyEvent::Kind::kContent && !d.text.empty()) {
      chunk({{"content", d.text}}, nullptr, std::exchange(lp, nullptr));
    } else if (d.kind == ReplyEvent::Kind::kReasoning && !d.text.empty()) {
      chunk({{"reasoning_content", d.text}}, nullptr, std::exchange(lp, nullptr));
    } else if (d.kind == ReplyEvent::Kind::kToolCall) {
      nlohmann::json call(d.tool_call.ToJson());
      call["index"] = state->tool_index++;
      chunk({{"tool_calls", {call}}}, nullptr, std::exchange(lp, nullptr));
    }
  }
  if (!lp.is_null()) chunk({{"content", ""}}, nullptr, std::move(lp));
  if (e.final) {
    const std::string finish = state->tool_index > 0 ? "tool_calls" : e.finish_reason;
    chunk(nlohmann::json::object(), finish, nullptr);
    if (e.constraint) {
      out.back()["choices"][0]["constraint"] = nlohmann::json(e.constraint->ToJson());
    }
  }
  return out;
}

}  // namespace gemma_local::server
