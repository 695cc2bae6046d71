// Errors as OpenAI sends them: an HTTP status and {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gemma_local/status.h"

namespace gemma_local::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field ("" = none)
  std::string code;
  int retry_after_s = 0;  // > 0: a Retry-After header (over capacity, loading)
  nlohmann::json Body() const;
};

// A 400 naming `field` ("'field': what"), code "invalid_<field>" unless given.
ApiError BadField(const std::string& field, const std::string& what, const std::string& code = "");

// The HTTP status, type and code an engine Status maps to: bad input 400 (a prompt over the
// context: code context_length_exceeded), unknown things 404, a full queue 429 and a queue
// timeout or a stopping engine 503 (both with Retry-After), our own bugs 500.
ApiError FromStatus(const Status& status);

// JSON text for a response: invalid UTF-8 (a model can emit any bytes) becomes U+FFFD.
std::string Dump(const nlohmann::json& j);

}  // namespace gemma_local::server
