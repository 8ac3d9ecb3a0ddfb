#include "io/read.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace oe::io {
namespace {

namespace fs = std::filesystem;

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

[[noreturn]] void too_large(const fs::path& path, const ReadCap& cap, const std::string& where = "") {
  throw InvalidInput(fmt::format("{}{}: the {} is larger than {} MiB{}", path.string(), where, cap.what,
                                 cap.max_bytes / MiB,
                                 *cap.raise ? fmt::format(" ({} raises the limit)", cap.raise) : std::string()));
}

}  // namespace

void check_regular_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    throw IoError(fmt::format("{}: is {}, expected a regular file", path.string(), kind_of(st.st_mode)));
}

std::string read_file(const fs::path& path, const ReadCap& cap) { return read_file_padded(path, cap, 0); }

std::string read_file_padded(const fs::path& path, const ReadCap& cap, size_t padding) {
  check_regular_file(path);
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read its size: {}", path.string(), ec.message()));
  if (size > cap.max_bytes) too_large(path, cap);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  std::string out;
  out.reserve(static_cast<size_t>(size) + padding);  // the padding fits in the same allocation
  out.resize(static_cast<size_t>(size));
  in.read(out.data(), static_cast<std::streamsize>(size));
  out.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path.string()));
  // A file that grew since its size was read: only what fits under the cap is taken.
  if (out.size() == size && in.peek() != std::char_traits<char>::eof()) {
    char buf[64 * 1024];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      if (out.size() + static_cast<size_t>(in.gcount()) > cap.max_bytes) too_large(path, cap);
      out.append(buf, static_cast<size_t>(in.gcount()));
    }
  }
  out.append(padding, '\0');
  return out;
}

std::string read_file_range(const fs::path& path, uint64_t offset, uint64_t length) {
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(static_cast<size_t>(length), '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path.string()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

bool read_line(std::istream& in, std::string& line, const ReadCap& cap, const std::string& name, int64_t line_number) {
  line.clear();
  std::istream::sentry ok(in, /*noskipws=*/true);
  if (!ok) return false;
  std::streambuf* sb = in.rdbuf();
  bool any = false;
  for (;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return any;
    }
    any = true;
    if (c == '\n') return true;
    if (line.size() >= cap.max_bytes)
      throw InvalidInput(fmt::format("{} line {}: the {} is longer than {} MiB{}", name, line_number, cap.what,
                                     cap.max_bytes / MiB,
                                     *cap.raise ? fmt::format(" ({} raises the limit)", cap.raise) : std::string()));
    line.push_back(static_cast<char>(c));
  }
}

void strip_utf8_bom(std::string& s) {
  if (s.size() >= 3 && static_cast<unsigned char>(s[0]) == 0xEF && static_cast<unsigned char>(s[1]) == 0xBB &&
      static_cast<unsigned char>(s[2]) == 0xBF)
    s.erase(0, 3);
}

LineReader::LineReader(const fs::path& path, const ReadCap& line_cap) : path_(path), cap_(line_cap) {
  check_regular_file(path);
  in_.open(path, std::ios::binary);
  if (!in_) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
}

bool LineReader::next(std::string& line) {
  if (!read_line(in_, line, cap_, path_.string(), line_number_ + 1)) {
    if (in_.bad()) throw IoError(fmt::format("{}: read failed", path_.string()));
    return false;
  }
  if (++line_number_ == 1) strip_utf8_bom(line);
  return true;
}

}  // namespace oe::io
