// What the search page reads besides the JSON API: the page's own files (GET /, /app.js, /style.css), thumbnails of
// indexed images and video frames (GET /v1/thumbnail), the indexed files themselves in byte ranges for its players
// (GET /v1/media), and short WebM previews of a hit's time range for files a browser cannot play (GET /v1/preview).
//
// The page is compiled from web/ at build time (TypeScript, tsc) and its files are compiled into the binary
// (web_assets.cc, generated), so serving it needs no Node.js and no files beside the binary; --web-root DIR serves
// them from a folder instead (for working on the page).
//
// Only files the index names are ever read: a request names an item id (from a hit) or a path, and a path must be
// exactly a source path of the catalog; anything else is 404 before the file system is touched. Thumbnails and
// previews are made by FFmpeg in a child process (core/process.h) with bounded time, memory and output, so a hostile
// file can only make that child fail; they are kept in a byte-capped cache keyed by the file's content hash, the
// time and the size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace oe::serve {

struct PageFile {
  std::string content_type;
  std::string body;
};

// The page's file for a request path ("/" is "/index.html"): from `web_root` when given, else compiled in.
// nullopt when there is no such file.
std::optional<PageFile> page_file(const std::string& path, const std::filesystem::path& web_root);
// Whether this binary was built with the page (the build needs Node.js and `npm ci`'s TypeScript).
bool page_compiled_in();

// The Content-Type a browser needs to play or show a file, from its extension.
std::string content_type_for(const std::filesystem::path& file);

// The value of `name` in a request target's query string, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(const std::string& target, const std::string& name);
// The value of cookie `name` in a Cookie header, percent-decoded; "" when absent.
std::string cookie_value(const std::string& header, const std::string& name);

// One byte range of a file, both ends included.
struct ByteRange {
  int64_t first = 0, last = 0;
};
// Parses a Range header ("bytes=a-b", "bytes=a-", "bytes=-n"; of several ranges the first) against a file of `size`
// bytes. nullopt: no header, or a unit other than bytes (the whole file is answered). ApiException 416 for a range
// that does not overlap the file, 400 for a malformed one.
std::optional<ByteRange> parse_range(const std::string& header, int64_t size);

struct ThumbnailOptions {
  std::string ffmpeg = "ffmpeg";                   // the program (looked up on PATH)
  int64_t cache_bytes = int64_t{64} << 20;         // thumbnails kept in memory
  double timeout_seconds = 20;                     // one thumbnail's FFmpeg run
  double preview_timeout_seconds = 60;             // one preview's
  int64_t max_preview_bytes = int64_t{32} << 20;   // one preview's size
  int64_t memory_bytes = int64_t{1} << 30;         // its address space
};

class Thumbnails {
 public:
  explicit Thumbnails(ThumbnailOptions options) : options_(std::move(options)) {}
  // A JPEG of `file` (an image, or a video's frame at `seconds`) scaled to fit in size × size, from the cache when
  // `key` was made before. ApiException: 422 naming the file when FFmpeg cannot read it, 501 when FFmpeg is missing.
  std::string get(const std::filesystem::path& file, bool video, double seconds, int size, const std::string& key);
  // A short WebM any browser plays (VP8 at most 360 pixels high and Opus; Opus alone for sound) of `file` from
  // `start` for `seconds`: the player's fallback for a file the browser cannot play. Cached like thumbnails.
  std::string preview(const std::filesystem::path& file, bool video, double start, double seconds,
                      const std::string& key);
  int64_t cached_bytes() const;

 private:
  // Runs FFmpeg with `args` (after its common options) unless `key` is cached; caches and returns its standard
  // output, or what it wrote to `output_file` when one is given.
  std::string make(const std::filesystem::path& file, const std::vector<std::string>& args, const std::string& key,
                   double timeout_seconds, int64_t max_output_bytes, const char* what,
                   const std::string& output_file = "");
  ThumbnailOptions options_;
  mutable std::mutex mutex_;
  std::list<std::pair<std::string, std::string>> lru_;  // most recent first: key, JPEG
  std::map<std::string, std::list<std::pair<std::string, std::string>>::iterator> by_key_;
  int64_t bytes_ = 0;
};

}  // namespace oe::serve
