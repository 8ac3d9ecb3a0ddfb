// Reading JSON files with errors that name the file (nlohmann::json underneath).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace oe::io {

// Parses a JSON file; IoError when unreadable, InvalidInput (with line/column) when malformed.
nlohmann::json read_json_file(const std::filesystem::path& path);
// Writes pretty JSON atomically (tmp + rename).
void write_json_file(const std::filesystem::path& path, const nlohmann::json& j);
// Whole file as a string: a regular file of at most 64 MiB (io/read.h JSON_FILE_CAP); IoError naming the path when
// unreadable or not a regular file, InvalidInput when larger.
std::string read_text_file(const std::filesystem::path& path);
void write_text_file(const std::filesystem::path& path, const std::string& text);

// j[key] as a positive integer, `fallback` when absent; a float with an integral value (3136.0, as some exporters
// write) is accepted. InvalidInput naming the key otherwise.
int64_t json_positive_int(const nlohmann::json& j, const char* key, int64_t fallback);
// j[key] (required) as a 64-bit integer. InvalidInput naming the key when it is absent, not an integer (2.5, 1e300:
// nlohmann would cast a float to int64, which is undefined past its range) or above int64's range.
int64_t json_integer(const nlohmann::json& j, const char* key);

}  // namespace oe::io
