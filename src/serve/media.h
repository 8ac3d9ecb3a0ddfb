// Where the media of a request come from. A client sends them inline, as a data: URI ("data:image/png;base64,...")
// or plain base64, or names a file under the server's media root (a relative path or a file: URI). Inline bytes are
// written to a private file (mode 0600, in a folder of mode 0700 that the server owns) so that they go through the
// same decoders and limits as every other file; the files of a request are removed when its work is done. Paths
// are canonicalised and must stay under the media root: no "..", no symbolic link that leads out, regular files
// only. Remote URLs (http:, https:) are never fetched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace oe::serve {

// Decodes standard or URL-safe base64 (padding optional, whitespace ignored). InvalidInput naming `what` for any
// other character or a bad length.
std::string decode_base64(std::string_view text, const std::string& what);
std::string encode_base64(std::string_view bytes);

// The private folder inline media are written to, removed with what is left in it when the last owner goes away.
class SpoolDir {
 public:
  // A fresh folder under `parent` (the system's temporary folder when empty). IoError when it cannot be made.
  explicit SpoolDir(const std::filesystem::path& parent = {});
  ~SpoolDir();
  SpoolDir(const SpoolDir&) = delete;
  SpoolDir& operator=(const SpoolDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The media files of one request, each with the name of the request field it came from; the files it wrote
// (inline media) are removed when it goes away.
class MediaFiles {
 public:
  MediaFiles() = default;
  ~MediaFiles();
  MediaFiles(const MediaFiles&) = delete;
  MediaFiles& operator=(const MediaFiles&) = delete;
  void add(std::filesystem::path p, std::string what, bool owned);
  size_t owned() const;
  // `message` with every file path replaced by the field it came from: a client is told about its input, never
  // about the server's folders.
  std::string redact(std::string message) const;

 private:
  struct File {
    std::filesystem::path path;
    std::string what;
    bool owned = false;
  };
  std::vector<File> files_;
};

struct MediaSource {
  std::shared_ptr<SpoolDir> spool;  // where inline bytes go (required for inline media)
  std::filesystem::path root;       // --media-root, canonical ("" : paths are refused)
};

// The file to decode for one media reference (`what` names it in errors: "input[0].content[1].image_url").
// `reference` is a data: URI, a path or file: URI under the media root, or (with `plain_base64`) bare base64.
// InvalidInput naming `what` for anything refused; inline files are recorded in `files`.
std::filesystem::path resolve_media(const std::string& reference, bool plain_base64, const MediaSource& source,
                                    MediaFiles& files, const std::string& what);

// A path under the root, canonical; InvalidInput naming `what` when it leads out, does not exist or is not a
// regular file.
std::filesystem::path path_under_root(const std::string& relative, const std::filesystem::path& root,
                                      const std::string& what);

}  // namespace oe::serve
