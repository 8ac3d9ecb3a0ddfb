// The one error a route answers with: an HTTP status and OpenAI's error body
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// so existing clients raise their usual exceptions (BadRequestError, AuthenticationError, RateLimitError, ...).
#pragma once

#include <string>

namespace oe::serve {

struct ApiError {
  int status = 400;
  std::string message;  // names the input: "input[2].content[1].image_url: ..."
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault ("" when none: written as null)
  std::string code;   // a stable machine-readable code ("" when none: written as null)

  // The JSON body (invalid UTF-8 in a quoted input is replaced, never fatal).
  std::string body() const;
};

// An exception carrying an ApiError, thrown while a request is read and answered.
struct ApiException {
  ApiError error;
};

[[noreturn]] void throw_api(int status, std::string message, std::string param = "", std::string code = "",
                            std::string type = "");

}  // namespace oe::serve
