// Writing and reading small files from tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace oe::testing {

// Writes `text` to `path` (creating its folder) and returns the path.
inline std::filesystem::path write_file(const std::filesystem::path& path, const std::string& text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace oe::testing
