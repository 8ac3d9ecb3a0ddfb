// Helpers of the src/eval tests: writing and reading small files (run_stdout comes from common/run_command.h).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "common/run_command.h"

namespace oe::testing {

inline std::filesystem::path write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace oe::testing
