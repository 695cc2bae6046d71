#include "server/request_body.h"

#include <string>

namespace gemma_local::server {

bool ParseBody(std::string_view text, const BodyLimits& limits, nlohmann::ordered_json* out,
               ApiError* error) {
  using Event = nlohmann::ordered_json::parse_event_t;
  bool too_deep = false;
  bool too_long = false;
  // The callback sees every container start and every key and value as it is parsed; returning
  // false for a container start drops its contents instead of building them.
  auto check = [&](int depth, Event event, nlohmann::ordered_json& parsed) {
    if ((event == Event::object_start || event == Event::array_start) &&
        depth >= limits.max_json_depth) {
      too_deep = true;
      return false;
    }
    if ((event == Event::key || event == Event::value) && parsed.is_string() &&
        static_cast<int64_t>(parsed.get_ref<const std::string&>().size()) >
            limits.max_string_bytes) {
      too_long = true;
      return false;
    }
    return true;
  };
  try {
    *out = nlohmann::ordered_json::parse(text.begin(), text.end(), check,
                                        /*allow_exceptions=*/true);
  } catch (const nlohmann::ordered_json::exception& e) {
    *error = ApiError{};
    error->message = std::string("the body is not valid JSON: ") + e.what();
    error->code = "invalid_json";
    return false;
  }
  if (too_deep) {
    *error = ApiError{};
    error->message = "the body nests objects and arrays deeper than " +
                     std::to_string(limits.max_json_depth) + " levels";
    error->code = "json_too_deep";
    return false;
  }
  if (too_long) {
    *error = ApiError{};
    error->message =
        "a string in the body is longer than " + std::to_string(limits.max_string_bytes) + " bytes";
    error->code = "string_too_long";
    return false;
  }
  return true;
}

}  // namespace gemma_local::server
