#include "io/json.h"

#include "io/read.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"

namespace oe::io {

namespace {

// 1-based line and column of byte offset `pos` (nlohmann counts bytes read, so the error is at pos - 1).
std::pair<size_t, size_t> line_column(const std::string& text, size_t pos) {
  size_t end = std::min(pos > 0 ? pos - 1 : 0, text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

}  // namespace

std::string read_text_file(const std::filesystem::path& path) { return read_file(path, JSON_FILE_CAP); }

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    auto [line, column] = line_column(text, e.byte);
    // nlohmann's own message repeats the byte position; keep only its explanation after the "parse error ..." tag.
    std::string why = e.what();
    if (auto p = why.find(": syntax error"); p != std::string::npos) why = why.substr(p + 2);
    throw InvalidInput(fmt::format("{}:{}:{}: invalid JSON: {}", path.string(), line, column, why));
  } catch (const nlohmann::json::out_of_range& e) {  // a number past double's range, "1e999"
    throw InvalidInput(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
}

void write_json_file(const std::filesystem::path& path, const nlohmann::json& j) {
  std::string text;
  try {
    text = j.dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {  // a string that is not valid UTF-8
    throw InvalidInput(fmt::format("{}: cannot write JSON: {}", path.string(), e.what()));
  }
  write_text_file(path, text);
}

int64_t json_positive_int(const nlohmann::json& j, const char* key, int64_t fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  const bool integral = v.is_number_integer() ||
                        (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                         std::abs(v.get<double>()) < 9e15);
  if (!integral || v.get<double>() <= 0)
    throw InvalidInput(fmt::format("'{}' must be a positive integer, got {}", key, v.dump()));
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

int64_t json_integer(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) throw InvalidInput(fmt::format("'{}' is missing", key));
  const auto& v = j.at(key);
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
    throw InvalidInput(fmt::format("'{}' must be an integer, got {}", key, v.dump()));
  return v.get<int64_t>();
}

}  // namespace oe::io
