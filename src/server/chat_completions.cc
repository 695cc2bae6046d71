#include "server/chat_completions.h"

#include <algorithm>
#include <utility>

namespace gemma_local::server {
namespace {

ApiError BadField(const std::string& field, const std::string& what) {
  ApiError e;
  e.message = "'" + field + "': " + what;
  e.param = field;
  e.code = "invalid_" + field;
  return e;
}

// Reads an optional number field into `out`; false (and `error`) when present but not a number.
template <typename T>
bool Number(const nlohmann::json& body, const char* field, T* out, ApiError* error) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number()) {
    *error = BadField(field, "expected a number, got " + std::string(it->type_name()));
    return false;
  }
  *out = it->get<T>();
  return true;
}

}  // namespace

nlohmann::json ApiError::Body() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}

Result<Request> ParseChatRequest(const nlohmann::json& body, ChatDelivery* delivery,
                                 ApiError* error) {
  auto fail = [&](ApiError e) {
    *error = std::move(e);
    return InvalidArgumentError(error->message);
  };
  if (!body.is_object()) return fail(BadField("body", "expected a JSON object"));
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array() || messages->empty()) {
    return fail(BadField("messages", "expected a non-empty array of messages"));
  }
  if (auto stream = body.find("stream"); stream != body.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return fail(BadField("stream", "expected true or false"));
    delivery->stream = stream->get<bool>();
  }
  if (auto so = body.find("stream_options"); so != body.end() && so->is_object()) {
    delivery->include_usage = so->value("include_usage", false);
  }
  ChatInput chat;
  chat.messages = nlohmann::ordered_json::parse(messages->dump());
  chat.openai_format = true;
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) return fail(BadField("tools", "expected an array"));
    chat.tools = nlohmann::ordered_json::parse(tools->dump());
  }
  Request r;
  r.input = RequestInput::Chat(std::move(chat));
  r.max_tokens = 1024;
  int64_t max_tokens = -1;
  if (!Number(body, "max_completion_tokens", &max_tokens, error))
    return InvalidArgumentError(error->message);
  if (max_tokens < 0 && !Number(body, "max_tokens", &max_tokens, error)) {
    return InvalidArgumentError(error->message);
  }
  if (max_tokens == 0 || max_tokens > (int64_t{1} << 20)) {
    return fail(BadField("max_tokens", "must be in [1, 1048576]"));
  }
  if (max_tokens > 0) r.max_tokens = max_tokens;
  SamplingParams& s = r.sampling;
  s.temperature = 1.0f;  // OpenAI's default
  if (!Number(body, "temperature", &s.temperature, error) ||
      !Number(body, "top_p", &s.top_p, error) || !Number(body, "top_k", &s.top_k, error) ||
      !Number(body, "min_p", &s.min_p, error) ||
      !Number(body, "presence_penalty", &s.presence_penalty, error) ||
      !Number(body, "frequency_penalty", &s.frequency_penalty, error) ||
      !Number(body, "repetition_penalty", &s.repetition_penalty, error) ||
      !Number(body, "seed", &s.seed, error)) {
    return InvalidArgumentError(error->message);
  }
  if (Status v = s.Validate(); !v.ok()) {
    ApiError e;
    e.message = v.message();
    e.code = "invalid_sampling";
    return fail(e);
  }
  if (auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4 &&
               std::all_of(stop->begin(), stop->end(),
                           [](const auto& x) { return x.is_string(); })) {
      for (const auto& x : *stop) r.stop.push_back(x.get<std::string>());
    } else {
      return fail(BadField("stop", "expected a string or an array of up to 4 strings"));
    }
  }
  return r;
}

nlohmann::json ChatCompletionBody(const Completion& c, const std::string& id,
                                  const std::string& model, int64_t created) {
  nlohmann::json message = {{"role", "assistant"}, {"content", c.text}};
  if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
  if (!c.tool_calls.empty()) {
    message["tool_calls"] = nlohmann::json::array();
    for (const ToolCall& t : c.tool_calls) {
      message["tool_calls"].push_back(nlohmann::json::parse(t.ToJson().dump()));
    }
  }
  const std::string finish = !c.tool_calls.empty() ? "tool_calls" : c.finish_reason;
  return {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices",
       {{{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", finish}}}},
      {"usage",
       {{"prompt_tokens", c.usage.prompt_tokens},
        {"completion_tokens", c.usage.completion_tokens},
        {"total_tokens", c.usage.prompt_tokens + c.usage.completion_tokens},
        {"prompt_tokens_details", {{"cached_tokens", c.usage.cached_tokens}}}}}};
}

std::vector<nlohmann::json> ChatChunks(const Event& e, const std::string& id,
                                       const std::string& model, int64_t created,
                                       bool include_usage, bool* first, int* tool_index) {
  std::vector<nlohmann::json> out;
  auto chunk = [&](nlohmann::json delta, nlohmann::json finish) {
    if (*first) {
      delta["role"] = "assistant";
      *first = false;
    }
    out.push_back(
        {{"id", id},
         {"object", "chat.completion.chunk"},
         {"created", created},
         {"model", model},
         {"choices",
          {{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}}}}});
  };
  bool tools = false;
  for (const ReplyEvent& d : e.deltas) {
    if (d.kind == ReplyEvent::Kind::kContent && !d.text.empty()) {
      chunk({{"content", d.text}}, nullptr);
    } else if (d.kind == ReplyEvent::Kind::kReasoning && !d.text.empty()) {
      chunk({{"reasoning_content", d.text}}, nullptr);
    } else if (d.kind == ReplyEvent::Kind::kToolCall) {
      nlohmann::json call = nlohmann::json::parse(d.tool_call.ToJson().dump());
      call["index"] = (*tool_index)++;
      chunk({{"tool_calls", {call}}}, nullptr);
      tools = true;
    }
  }
  if (e.final) {
    const std::string finish = *tool_index > 0 || tools ? "tool_calls" : e.finish_reason;
    chunk(nlohmann::json::object(), finish);
    if (include_usage) {
      out.push_back({{"id", id},
                     {"object", "chat.completion.chunk"},
                     {"created", created},
                     {"model", model},
                     {"choices", nlohmann::json::array()},
                     {"usage",
                      {{"prompt_tokens", e.usage.prompt_tokens},
                       {"completion_tokens", e.usage.completion_tokens},
                       {"total_tokens", e.usage.prompt_tokens + e.usage.completion_tokens},
                       {"prompt_tokens_details", {{"cached_tokens", e.usage.cached_tokens}}}}}});
    }
  }
  return out;
}

ApiError FromStatus(const Status& status) {
  ApiError e;
  e.message = status.message();
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      e.http_status = 400;
      break;
    case StatusCode::kNotFound:
      e.http_status = 404;
      break;
    case StatusCode::kResourceExhausted:
      e.http_status = 429;
      e.type = "rate_limit_error";
      break;
    case StatusCode::kDeadlineExceeded:
      e.http_status = 503;
      e.type = "server_error";
      break;
    default:
      e.http_status = 500;
      e.type = "server_error";
      break;
  }
  e.code = StatusCodeName(status.code());
  return e;
}

}  // namespace gemma_local::server
