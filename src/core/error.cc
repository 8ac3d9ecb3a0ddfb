#include "core/error.h"

namespace oe {

Error Error::with_context(const std::string& context) const {
  return Error(kind_, context + ": " + what());
}

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidInput: return "invalid input";
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Internal: return "internal error";
  }
  return "error";
}

void check_failed(const char* expr, const char* file, int line, const std::string& message) {
  std::string m = fmt::format("check failed: {} at {}:{}", expr, file, line);
  if (!message.empty()) m += ": " + message;
  throw InternalError(m);
}

}  // namespace oe
