#include "serve/media.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <system_error>

#include "core/error.h"
#include "io/read.h"

namespace oe::serve {
namespace {

namespace fs = std::filesystem;

constexpr char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The value of a base64 character (both alphabets), -1 for whitespace, -2 for anything else.
int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  if (c == ' ' || c == '\n' || c == '\r' || c == '\t') return -1;
  return -2;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Writes `bytes` to a new file of mode 0600 in the spool folder.
fs::path spool_file(const std::string& bytes, const SpoolDir& spool, const std::string& what) {
  std::string name = (spool.path() / "m-XXXXXX").string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw IoError(fmt::format("{}: cannot create a file for the inline media in {}", what, spool.path().string()));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(name.c_str());
      throw IoError(fmt::format("{}: cannot write the inline media ({} bytes) to {}", what, bytes.size(), name));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return name;
}

}  // namespace

std::string decode_base64(std::string_view text, const std::string& what) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0, symbols = 0;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '=') {
      ++pad;
      continue;
    }
    const int v = base64_value(c);
    if (v == -1) continue;
    if (v == -2 || pad > 0)
      throw InvalidInput(fmt::format("{}: not valid base64 (a byte {:#04x} at offset {})", what, c,
                                     static_cast<size_t>(&ch - text.data())));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++symbols;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (symbols % 4 == 1 || pad > 2) throw InvalidInput(fmt::format("{}: not valid base64 (its length is wrong)", what));
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(ALPHABET[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(ALPHABET[(v >> 18) & 63]);
    out.push_back(ALPHABET[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? ALPHABET[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

SpoolDir::SpoolDir(const fs::path& parent) {
  std::string tmpl = ((parent.empty() ? fs::temp_directory_path() : parent) / "omni-embed-serve-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw IoError(fmt::format("cannot create a private folder {}", tmpl));
  path_ = tmpl;
}

SpoolDir::~SpoolDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

MediaFiles::~MediaFiles() {
  for (const auto& f : files_)
    if (f.owned) ::unlink(f.path.c_str());
}

void MediaFiles::add(fs::path p, std::string what, bool owned) { files_.push_back({std::move(p), std::move(what), owned}); }

size_t MediaFiles::owned() const {
  size_t n = 0;
  for (const auto& f : files_) n += f.owned;
  return n;
}

std::string MediaFiles::redact(std::string message) const {
  for (const auto& f : files_) {
    const std::string p = f.path.string();
    for (size_t at = message.find(p); at != std::string::npos; at = message.find(p, at + f.what.size()))
      message.replace(at, p.size(), f.what);
  }
  return message;
}

fs::path path_under_root(const std::string& relative, const fs::path& root, const std::string& what) {
  if (root.empty())
    throw InvalidInput(fmt::format("{}: a file path was given but the server has no --media-root (send the bytes as "
                                   "a data: URI or base64)", what));
  const fs::path p(relative);
  if (p.empty()) throw InvalidInput(fmt::format("{}: the path is empty", what));
  for (const auto& part : p)
    if (part == "..") throw InvalidInput(fmt::format("{}: \"..\" is not allowed in a path", what));
  const fs::path joined = p.is_absolute() ? p : root / p;
  std::error_code ec;
  const fs::path real = fs::canonical(joined, ec);
  if (ec) throw InvalidInput(fmt::format("{}: no such file under the media root: {}", what, relative));
  // The canonical path (every symbolic link followed) must still be inside the canonical root.
  auto r = root.begin();
  auto q = real.begin();
  for (; r != root.end() && !r->empty(); ++r, ++q)
    if (q == real.end() || *q != *r)
      throw InvalidInput(fmt::format("{}: {} leads out of the media root", what, relative));
  try {
    io::check_regular_file(real);
  } catch (const Error&) {
    throw InvalidInput(fmt::format("{}: {} is not a regular file", what, relative));
  }
  return real;
}

fs::path resolve_media(const std::string& reference, bool plain_base64, const MediaSource& source, MediaFiles& files,
                       const std::string& what) {
  if (starts_with(reference, "data:")) {
    const size_t comma = reference.find(',');
    if (comma == std::string::npos) throw InvalidInput(fmt::format("{}: a data: URI needs a ',' before its data", what));
    const std::string header = reference.substr(5, comma - 5);
    if (header.size() < 7 || header.compare(header.size() - 7, 7, ";base64") != 0)
      throw InvalidInput(fmt::format("{}: only base64 data: URIs are accepted (\"data:<type>;base64,...\")", what));
    OE_CHECK(source.spool != nullptr, "inline media need a spool folder");
    fs::path p = spool_file(decode_base64(std::string_view(reference).substr(comma + 1), what), *source.spool, what);
    files.add(p, what, /*owned=*/true);
    return p;
  }
  if (starts_with(reference, "http:") || starts_with(reference, "https:"))
    throw InvalidInput(fmt::format("{}: remote URLs are not fetched; send the bytes as a data: URI or base64, or a "
                                   "path under the server's media root", what));
  if (plain_base64) {
    OE_CHECK(source.spool != nullptr, "inline media need a spool folder");
    fs::path p = spool_file(decode_base64(reference, what), *source.spool, what);
    files.add(p, what, /*owned=*/true);
    return p;
  }
  const std::string relative = starts_with(reference, "file://") ? reference.substr(7)
                               : starts_with(reference, "file:")  ? reference.substr(5)
                                                                  : reference;
  fs::path p = path_under_root(relative, source.root, what);
  files.add(p, what, /*owned=*/false);
  return p;
}

}  // namespace oe::serve
