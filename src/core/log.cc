#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace oe {
namespace {

LogLevel level_from_env() {
  const char* v = std::getenv("OMNI_EMBED_LOG");
  if (!v) return LogLevel::Info;
  if (!std::strcmp(v, "debug")) return LogLevel::Debug;
  if (!std::strcmp(v, "warn")) return LogLevel::Warn;
  if (!std::strcmp(v, "error")) return LogLevel::Error;
  if (!std::strcmp(v, "off")) return LogLevel::Off;
  return LogLevel::Info;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_env())};
  return level;
}

}  // namespace

LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
void set_log_level(LogLevel level) { level_storage().store(static_cast<int>(level)); }

void log_message(LogLevel level, const std::string& message) {
  static const char* names[] = {"debug", "info", "warning", "error", ""};
  std::fprintf(stderr, "omni-embed: %s: %s\n", names[static_cast<int>(level)], message.c_str());
}

}  // namespace oe
