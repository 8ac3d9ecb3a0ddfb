// Errors of omni-embed (STYLE.md "Errors").
//  1. Programmer invariants: OE_CHECK (always on) and OE_DCHECK (debug builds only). They throw InternalError
//     naming the expression and the place; user input must never trigger them.
//  2. Operation-ending errors: the typed exceptions below. Each stage adds its context when it rethrows
//     (with_context), so the final message reads "loading text weights: model.safetensors: ...".
//  3. Expected per-item failures are result values in the caller's API, not exceptions.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace oe {

enum class ErrorKind { InvalidInput, Io, Unsupported, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  // Throws this error again with "context: " in front of the message, as the same derived type (so a caller can
  // still catch InvalidInput, IoError, ...).
  [[noreturn]] void rethrow_with_context(const std::string& context) const;

 private:
  ErrorKind kind_;
};

struct InvalidInput : Error {
  explicit InvalidInput(const std::string& m) : Error(ErrorKind::InvalidInput, m) {}
};
struct IoError : Error {
  explicit IoError(const std::string& m) : Error(ErrorKind::Io, m) {}
};
struct Unsupported : Error {
  explicit Unsupported(const std::string& m) : Error(ErrorKind::Unsupported, m) {}
};
struct InternalError : Error {
  explicit InternalError(const std::string& m) : Error(ErrorKind::Internal, m) {}
};

const char* error_kind_name(ErrorKind kind);

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& message);

// Runs f(); an oe::Error escaping it is rethrown with "context: " prepended.
template <typename F>
auto with_context(const std::string& context, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    e.rethrow_with_context(context);
  }
}

}  // namespace oe

#define OE_CHECK(cond, ...)                                                                \
  do {                                                                                     \
    if (!(cond)) ::oe::check_failed(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define OE_DCHECK(cond, ...) \
  do {                       \
  } while (0)
#else
#define OE_DCHECK(cond, ...) OE_CHECK(cond, __VA_ARGS__)
#endif
