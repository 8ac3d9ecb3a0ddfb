#include "core/error.h"

namespace oe {

void Error::rethrow_with_context(const std::string& context) const {
  const std::string m = context + ": " + what();
  switch (kind_) {
    case ErrorKind::InvalidInput: throw InvalidInput(m);
    case ErrorKind::Io: throw IoError(m);
    case ErrorKind::Unsupported: throw Unsupported(m);
    case ErrorKind::Internal: throw InternalError(m);
  }
  throw Error(kind_, m);
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
