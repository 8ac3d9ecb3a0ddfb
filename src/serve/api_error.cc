#include "serve/api_error.h"

#include <nlohmann/json.hpp>

namespace oe::serve {
namespace {

// OpenAI's error types by status.
const char* default_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

std::string ApiError::body() const {
  nlohmann::ordered_json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
  e["code"] = code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code);
  nlohmann::ordered_json j;
  j["error"] = std::move(e);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void throw_api(int status, std::string message, std::string param, std::string code, std::string type) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = type.empty() ? default_type(status) : std::move(type);
  e.param = std::move(param);
  e.code = std::move(code);
  throw ApiException{std::move(e)};
}

}  // namespace oe::serve
