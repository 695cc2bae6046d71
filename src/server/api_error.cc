#include "server/api_error.h"

namespace gemma_local::server {

nlohmann::json ApiError::Body() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}

ApiError BadField(const std::string& field, const std::string& what, const std::string& code) {
  ApiError e;
  e.message = "'" + field + "': " + what;
  e.param = field;
  e.code = code.empty() ? "invalid_" + field : code;
  return e;
}

ApiError FromStatus(const Status& status) {
  ApiError e;
  e.message = status.message();
  e.code = StatusCodeName(status.code());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      e.code = "invalid_request";
      break;
    case StatusCode::kUnsupported:
      e.code = "unsupported";
      break;
    case StatusCode::kResourceExhausted:
      // Request-specific limits (the context, the KV pool, template budgets): retrying the same
      // request cannot help, so 400 as OpenAI answers an over-long prompt.
      e.code = "context_length_exceeded";
      break;
    case StatusCode::kNotFound:
      e.http_status = 404;
      e.code = "not_found";
      break;
    case StatusCode::kUnavailable:
      e.http_status = 429;
      e.type = "rate_limit_error";
      e.code = "over_capacity";
      e.retry_after_s = 1;
      break;
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kCancelled:
      e.http_status = 503;
      e.type = "server_error";
      e.code = status.code() == StatusCode::kCancelled ? "shutting_down" : "queue_timeout";
      e.retry_after_s = 1;
      break;
    default:
      e.http_status = 500;
      e.type = "server_error";
      e.code = "internal_error";
      break;
  }
  return e;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace gemma_local::server
