// Writing a file atomically: bytes go to `path` + ".tmp", which is renamed onto `path` by commit(). A writer that
// is destroyed without commit() (an exception, a failed fill) removes the .tmp, so no half-written file remains.
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>

namespace oe::io {

class AtomicFile {
 public:
  // Creates (truncates) path + ".tmp"; IoError naming it when that fails.
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends n bytes; IoError naming the file on a short write (disk full, ...).
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Flushes, closes and renames the .tmp onto the final path.
  void commit();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace oe::io
