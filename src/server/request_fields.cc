#include "server/request_fields.h"

#include <algorithm>
#include <cmath>

namespace gemma_local::server {
namespace {

std::string Range(double lo, double hi) {
  auto text = [](double v) {
    if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    return nlohmann::json(v).dump();
  };
  return "[" + text(lo) + ", " + text(hi) + "]";
}

}  // namespace

bool ReadFloat(const nlohmann::ordered_json& body, const char* field, double lo, double hi, float* out,
               ApiError* error) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number()) {
    *error = BadField(field, "expected a number, got " + std::string(it->type_name()));
    return false;
  }
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    *error = BadField(field, "must be in " + Range(lo, hi) + ", got " + it->dump());
    return false;
  }
  *out = static_cast<float>(v);
  return true;
}

bool ReadInt(const nlohmann::ordered_json& body, const char* field, int64_t lo, int64_t hi, int64_t* out,
             ApiError* error) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return true;
  bool integral = it->is_number_integer();
  if (it->is_number_float()) {
    const double v = it->get<double>();
    integral = std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9e15;
  }
  if (!integral) {
    *error = BadField(field, it->is_number() ? "expected an integer, got " + it->dump()
                                             : "expected an integer, got " +
                                                   std::string(it->type_name()));
    return false;
  }
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    v = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    v = static_cast<int64_t>(it->get<double>());
  }
  if (v < lo || v > hi) {
    *error = BadField(field, "must be in " + Range(static_cast<double>(lo), static_cast<double>(hi)) +
                                 ", got " + it->dump());
    return false;
  }
  *out = v;
  return true;
}

bool ReadBool(const nlohmann::ordered_json& body, const char* field, bool* out, ApiError* error) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    *error = BadField(field, "expected true or false, got " + std::string(it->type_name()));
    return false;
  }
  *out = it->get<bool>();
  return true;
}

bool ReadCommonFields(const nlohmann::ordered_json& body, int max_n, CommonFields* out, ApiError* error) {
  SamplingParams& s = out->request.sampling;
  s.temperature = 1.0f;  // OpenAI's default
  int64_t top_k = 0;
  int64_t seed = 0;
  int64_t n = 1;
  if (!ReadFloat(body, "temperature", 0, 2, &s.temperature, error) ||
      !ReadFloat(body, "top_p", 0, 1, &s.top_p, error) ||
      !ReadInt(body, "top_k", 0, INT32_MAX, &top_k, error) ||
      !ReadFloat(body, "min_p", 0, 1, &s.min_p, error) ||
      !ReadFloat(body, "presence_penalty", -2, 2, &s.presence_penalty, error) ||
      !ReadFloat(body, "frequency_penalty", -2, 2, &s.frequency_penalty, error) ||
      !ReadFloat(body, "repetition_penalty", 0.01, 10, &s.repetition_penalty, error) ||
      !ReadInt(body, "seed", INT64_MIN, INT64_MAX, &seed, error) ||
      !ReadInt(body, "n", 1, max_n, &n, error) || !ReadBool(body, "stream", &out->stream, error) ||
      !ReadBool(body, "ignore_eos", &out->request.ignore_model_stop_tokens, error)) {
    return false;
  }
  s.top_k = static_cast<int32_t>(top_k);
  s.seed = static_cast<uint64_t>(seed);
  out->n = static_cast<int>(n);
  // max_completion_tokens is the newer name; either may come.
  if (!ReadInt(body, "max_tokens", 1, INT64_MAX, &out->max_tokens, error) ||
      !ReadInt(body, "max_completion_tokens", 1, INT64_MAX, &out->max_tokens, error)) {
    return false;
  }
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) {
      *error = BadField("stream_options", "expected an object");
      return false;
    }
    if (!ReadBool(*so, "include_usage", &out->include_usage, error)) {
      error->param = "stream_options.include_usage";
      return false;
    }
  }
  if (auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    auto& r = out->request;
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4 &&
               std::all_of(stop->begin(), stop->end(), [](const auto& x) {
                 return x.is_string() && !x.template get_ref<const std::string&>().empty();
               })) {
      for (const auto& x : *stop) r.stop.push_back(x.get<std::string>());
    } else {
      *error = BadField("stop", "expected a string or an array of up to 4 non-empty strings");
      return false;
    }
    r.stop.erase(std::remove(r.stop.begin(), r.stop.end(), std::string()), r.stop.end());
  }
  if (Status v = s.Validate(); !v.ok()) {
    *error = ApiError{};
    error->message = v.message();
    error->code = "invalid_sampling";
    return false;
  }
  return true;
}

bool FitContext(int64_t prompt_tokens, int64_t context_limit, int64_t max_tokens,
                int64_t* settled, ApiError* error, const char* prompt_field) {
  const int64_t room = context_limit - prompt_tokens;
  if (room <= 0 || (max_tokens > 0 && max_tokens > room)) {
    *error = ApiError{};
    error->code = "context_length_exceeded";
    if (room <= 0) {
      error->message = "the prompt has " + std::to_string(prompt_tokens) +
                       " tokens, the context holds " + std::to_string(context_limit) +
                       ": it is over by " + std::to_string(1 - room) +
                       " (at least one generated token must fit); shorten it";
      error->param = prompt_field;
    } else {
      error->message = "this model's context holds " + std::to_string(context_limit) +
                       " tokens, but " + std::to_string(prompt_tokens + max_tokens) +
                       " were requested (" + std::to_string(prompt_tokens) + " in the prompt, " +
                       std::to_string(max_tokens) + " for the completion): over by " +
                       std::to_string(max_tokens - room) + "; lower max_tokens or shorten the prompt";
      error->param = "max_tokens";
    }
    return false;
  }
  *settled = max_tokens > 0 ? max_tokens : room;
  return true;
}

}  // namespace gemma_local::server
