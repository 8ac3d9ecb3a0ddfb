#include "serve/browse.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "core/process.h"
#include "io/read.h"
#include "serve/api_error.h"
#include "serve/web_assets.h"

namespace oe::serve {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A non-negative decimal integer (the whole string), nullopt otherwise.
std::optional<int64_t> non_negative(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool page_compiled_in() { return web::N_ASSETS > 0; }

std::optional<PageFile> page_file(const std::string& path, const std::filesystem::path& web_root) {
  const std::string name = path == "/" ? "/index.html" : path;
  if (!web_root.empty()) {
    // Only the page's own three files, never another name under the folder.
    if (name != "/index.html" && name != "/app.js" && name != "/style.css") return std::nullopt;
    const auto file = web_root / name.substr(1);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
    return PageFile{content_type_for(file), io::read_file(file, io::ReadCap{int64_t{8} << 20, "page file"})};
  }
  for (size_t i = 0; i < web::N_ASSETS; ++i) {
    const auto& a = web::ASSETS[i];
    if (name == a.path) return PageFile{a.content_type, std::string(reinterpret_cast<const char*>(a.data), a.size)};
  }
  return std::nullopt;
}

std::string content_type_for(const std::filesystem::path& file) {
  static const std::map<std::string, std::string> TYPES = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".txt", "text/plain; charset=utf-8"},
      {".md", "text/plain; charset=utf-8"},  {".json", "application/json"},
      {".jsonl", "text/plain; charset=utf-8"},
      {".png", "image/png"},                 {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},               {".webp", "image/webp"},
      {".gif", "image/gif"},                 {".bmp", "image/bmp"},
      {".tif", "image/tiff"},                {".tiff", "image/tiff"},
      {".wav", "audio/wav"},                 {".mp3", "audio/mpeg"},
      {".flac", "audio/flac"},               {".ogg", "audio/ogg"},
      {".oga", "audio/ogg"},                 {".opus", "audio/ogg"},
      {".m4a", "audio/mp4"},                 {".aac", "audio/aac"},
      {".mp4", "video/mp4"},                 {".m4v", "video/mp4"},
      {".mov", "video/quicktime"},           {".webm", "video/webm"},
      {".mkv", "video/x-matroska"},          {".ogv", "video/ogg"},
      {".avi", "video/x-msvideo"}};
  const auto it = TYPES.find(lower(file.extension().string()));
  return it == TYPES.end() ? "application/octet-stream" : it->second;
}

std::optional<std::string> query_param(const std::string& target, const std::string& name) {
  const size_t q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string cookie_value(const std::string& header, const std::string& name) {
  std::string_view rest(header);
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view pair = trim(rest.substr(0, semi));
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return percent_decode(pair.substr(eq + 1), false);
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return "";
}

std::optional<ByteRange> parse_range(const std::string& header, int64_t size) {
  std::string_view h = trim(header);
  if (h.empty()) return std::nullopt;
  if (h.substr(0, 6) != "bytes=") return std::nullopt;  // another unit: RFC 9110 lets the server ignore it
  h.remove_prefix(6);
  h = trim(h.substr(0, h.find(',')));  // of several ranges, the first
  const size_t dash = h.find('-');
  if (dash == std::string_view::npos) throw_api(400, fmt::format("Range: not a byte range: {}", header), "Range");
  const auto first = non_negative(trim(h.substr(0, dash)));
  const auto last = non_negative(trim(h.substr(dash + 1)));
  ByteRange r;
  if (!first) {  // "-n": the last n bytes
    if (!last || *last == 0) throw_api(400, fmt::format("Range: not a byte range: {}", header), "Range");
    r.first = std::max<int64_t>(0, size - *last);
    r.last = size - 1;
  } else {
    if (dash + 1 < h.size() && !last) throw_api(400, fmt::format("Range: not a byte range: {}", header), "Range");
    if (last && *last < *first) throw_api(400, fmt::format("Range: the range ends before it starts: {}", header), "Range");
    r.first = *first;
    r.last = last ? std::min(*last, size - 1) : size - 1;
  }
  if (size == 0 || r.first >= size)
    throw_api(416, fmt::format("Range: {} is outside the file's {} bytes", header, size), "Range", "range_not_satisfiable");
  return r;
}

std::string Thumbnails::get(const std::filesystem::path& file, bool video, double seconds, int size,
                            const std::string& key) {
  // Seek before opening for a video's frame (fast, to the key frame before, then decoded to the time); the scale
  // keeps the aspect ratio and never enlarges.
  std::vector<std::string> args;
  if (video && seconds > 0) args = {"-ss", fmt::format("{:.3f}", seconds)};
  args.insert(args.end(), {"-i", file.string(), "-frames:v", "1", "-an", "-vf",
                           fmt::format("scale='min({0},iw)':'min({0},ih)':force_original_aspect_ratio=decrease", size),
                           "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "-"});
  return make(file, args, "thumbnail|" + key, options_.timeout_seconds, int64_t{8} << 20, "thumbnail");
}

std::string Thumbnails::preview(const std::filesystem::path& file, bool video, double start, double seconds,
                                const std::string& key) {
  std::vector<std::string> args = {"-ss", fmt::format("{:.3f}", start), "-t", fmt::format("{:.3f}", seconds),
                                   "-i", file.string()};
  if (video)
    args.insert(args.end(), {"-vf", "scale=-2:'min(360,trunc(ih/2)*2)'", "-c:v", "libvpx", "-deadline", "realtime",
                             "-cpu-used", "8", "-b:v", "800k"});
  else
    args.push_back("-vn");
  // To a file, not a pipe: the WebM muxer writes the duration and the seek index only into a seekable output, and a
  // player shows a preview without them as endless and unseekable. -fs bounds the file as max_output_bytes does a pipe.
  std::string tmpl = (std::filesystem::temp_directory_path() / "omni-embed-preview-XXXXXX.webm").string();
  const int fd = ::mkstemps(tmpl.data(), 5);
  if (fd < 0) throw_api(500, "no temporary file for a preview could be created", "", "internal_error", "server_error");
  ::close(fd);
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{tmpl};
  args.insert(args.end(), {"-sn", "-dn", "-c:a", "libopus", "-b:a", "64k", "-ac", "2", "-fs",
                           std::to_string(options_.max_preview_bytes), "-f", "webm", "-y", tmpl});
  return make(file, args, "preview|" + key, options_.preview_timeout_seconds, options_.max_preview_bytes, "preview",
              tmpl);
}

std::string Thumbnails::make(const std::filesystem::path& file, const std::vector<std::string>& args,
                             const std::string& key, double timeout_seconds, int64_t max_output_bytes,
                             const char* what, const std::string& output_file) {
  {
    std::lock_guard lock(mutex_);
    const auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  std::vector<std::string> argv = {options_.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessLimits limits;
  limits.wall_seconds = timeout_seconds;
  limits.cpu_seconds = static_cast<int64_t>(std::ceil(timeout_seconds));
  limits.address_space_bytes = options_.memory_bytes;
  limits.max_output_bytes = max_output_bytes;
  ProcessResult r = run_captured(argv, limits);
  if (!output_file.empty() && r.ok()) {
    std::error_code ec;
    if (std::filesystem::file_size(output_file, ec) > static_cast<uintmax_t>(max_output_bytes) || ec)
      r.output_too_large = !ec;
    else
      r.out = io::read_file(output_file, io::ReadCap{static_cast<uint64_t>(max_output_bytes), "preview"});
  }
  if (r.not_found)
    throw_api(501, fmt::format("{}s need the ffmpeg program, which was not found (install Debian's ffmpeg)", what), "",
              "ffmpeg_missing", "server_error");
  if (!r.ok() || r.out.empty()) {
    std::string why = r.timed_out          ? fmt::format("it took longer than {} s", timeout_seconds)
                      : r.output_too_large ? fmt::format("it would be larger than {} bytes", max_output_bytes)
                      : r.signal != 0 ? fmt::format("FFmpeg was stopped by signal {} (out of its memory or time)", r.signal)
                      : r.out.empty() && r.exit_code == 0 ? std::string("FFmpeg gave no output")
                                                          : std::string(trim(r.err.substr(0, r.err.find('\n'))));
    if (why.empty()) why = fmt::format("FFmpeg exited with status {}", r.exit_code);
    throw_api(422, fmt::format("{}: no {} could be made: {}", file.string(), what, why), "", fmt::format("{}_failed", what));
  }
  std::lock_guard lock(mutex_);
  if (!by_key_.count(key) && static_cast<int64_t>(r.out.size()) <= options_.cache_bytes) {
    lru_.emplace_front(key, r.out);
    by_key_[key] = lru_.begin();
    bytes_ += static_cast<int64_t>(r.out.size());
    while (bytes_ > options_.cache_bytes) {
      bytes_ -= static_cast<int64_t>(lru_.back().second.size());
      by_key_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }
  return r.out;
}

int64_t Thumbnails::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace oe::serve
