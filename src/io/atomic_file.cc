#include "io/atomic_file.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace oe::io {

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
  tmp_ = path_;
  tmp_ += ".tmp";
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw IoError(fmt::format("{}: cannot create file: {}", tmp_.string(), std::strerror(errno)));
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t n) {
  OE_CHECK(f_ != nullptr, "write after commit to {}", path_.string());
  if (n == 0) return;
  if (std::fwrite(data, 1, n, f_) != n) {
    throw IoError(fmt::format("{}: write of {} bytes failed: {}", tmp_.string(), n, std::strerror(errno)));
  }
}

void AtomicFile::commit() {
  OE_CHECK(f_ != nullptr, "double commit of {}", path_.string());
  bool ok = std::fflush(f_) == 0;
  int err = errno;
  ok = (std::fclose(f_) == 0) && ok;
  if (!ok) err = errno;
  f_ = nullptr;
  if (!ok) {
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
    throw IoError(fmt::format("{}: closing failed: {}", tmp_.string(), std::strerror(err)));
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::string why = ec.message();
    std::filesystem::remove(tmp_, ec);
    throw IoError(fmt::format("{}: cannot rename {} onto it: {}", path_.string(), tmp_.filename().string(), why));
  }
}

}  // namespace oe::io
