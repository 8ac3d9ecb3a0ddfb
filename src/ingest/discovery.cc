#include "ingest/discovery.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace oe::ingest {
namespace {

namespace fs = std::filesystem;

std::string absolute_string(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::weakly_canonical(fs::absolute(p), ec);
  return (ec ? fs::absolute(p).lexically_normal() : a).string();
}

// A manifest entry as a source: keyed by the manifest and the id, shown as its first media file (or MANIFEST#id).
SourceSpec entry_source(pipeline::EmbedItem item, const fs::path& manifest, const std::string& origin,
                        std::string canonical_line) {
  SourceSpec s;
  s.id = item.id_string();
  s.key = origin + "#" + s.id;
  s.origin = origin;
  s.manifest_line = std::move(canonical_line);
  s.modality = item.modality();
  s.path = !item.images.empty()   ? item.images[0].string()
           : !item.audios.empty() ? item.audios[0].string()
           : !item.videos.empty() ? item.videos[0].string()
                                  : manifest.filename().string() + "#" + s.id;
  s.item = std::move(item);
  return s;
}

void read_manifest(const fs::path& manifest, int64_t max_line_bytes, Discovery& d) {
  const std::string origin = absolute_string(manifest);
  pipeline::ItemFormat format;
  format.base = fs::path(origin).parent_path();
  format.role = text::Role::Document;
  format.catalogued = true;
  format.max_line_bytes = max_line_bytes;
  try {
    pipeline::read_item_lines(manifest, format, [&](pipeline::ItemLine line) {
      if (!line.item) {
        d.errors.push_back(std::move(line.error));
        return;
      }
      d.sources.push_back(entry_source(std::move(*line.item), manifest, origin, line.canonical));
    });
  } catch (const IoError& e) {
    d.errors.push_back(fmt::format("cannot read the manifest: {}", e.what()));
  } catch (const InvalidInput& e) {
    d.errors.push_back(fmt::format("{} (the entries after it are not read)", e.what()));
  }
}

SourceSpec file_source(const fs::path& file, Modality modality, const std::string& origin) {
  SourceSpec s;
  s.key = s.path = absolute_string(file);
  s.origin = origin;
  s.modality = modality;
  s.file = file;
  if (modality == Modality::Text) s.text_from_file = true;
  if (modality == Modality::Image) s.item.images = {file};
  if (modality == Modality::Audio) s.item.audios = {file};
  if (modality == Modality::Video) s.item.videos = {file};
  return s;
}

// The regular files under `folder`, sorted, hidden entries and `skip_abs` left out.
std::vector<fs::path> walk(const fs::path& folder, const std::string& skip_abs, Discovery& d) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) d.errors.push_back(fmt::format("{}: cannot read the folder ({})", folder.string(), ec.message()));
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    const bool dir = it->is_directory(ec);
    if ((!name.empty() && name[0] == '.') || (!skip_abs.empty() && absolute_string(p) == skip_abs)) {
      if (dir) it.disable_recursion_pending();
      continue;
    }
    if (!dir && it->is_regular_file(ec)) files.push_back(p);
  }
  if (ec) d.errors.push_back(fmt::format("{}: walking the folder stopped early ({})", folder.string(), ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::optional<Modality> modality_of_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  using M = Modality;
  static const std::map<std::string, Modality> table = {
      {".txt", M::Text},   {".md", M::Text},    {".markdown", M::Text}, {".png", M::Image},  {".jpg", M::Image},
      {".jpeg", M::Image}, {".webp", M::Image}, {".bmp", M::Image},     {".gif", M::Image},  {".tif", M::Image},
      {".tiff", M::Image}, {".wav", M::Audio},  {".mp3", M::Audio},     {".flac", M::Audio}, {".ogg", M::Audio},
      {".m4a", M::Audio},  {".opus", M::Audio}, {".mp4", M::Video},     {".mkv", M::Video},  {".webm", M::Video},
      {".mov", M::Video},  {".avi", M::Video}};
  auto it = table.find(ext);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

Discovery discover(const std::vector<fs::path>& inputs, const fs::path& skip, int64_t max_line_bytes) {
  Discovery d;
  const std::string skip_abs = skip.empty() ? "" : absolute_string(skip);
  for (const auto& input : inputs) {
    std::error_code ec;
    if (!fs::exists(input, ec)) throw InvalidInput(fmt::format("{} does not exist", input.string()));
    const std::string origin = absolute_string(input);
    d.origins.push_back(origin);
    if (fs::is_directory(input, ec)) {
      for (const auto& f : walk(input, skip_abs, d)) {
        if (const auto m = modality_of_file(f))
          d.sources.push_back(file_source(f, *m, origin));
        else
          ++d.ignored;
      }
    } else if (input.extension() == ".jsonl") {
      read_manifest(input, max_line_bytes, d);
    } else if (const auto m = modality_of_file(input)) {
      d.sources.push_back(file_source(input, *m, origin));
    } else {
      d.errors.push_back(fmt::format("{}: unknown file type (text: .txt .md; images: .png .jpg .webp .bmp .gif .tif; "
                                     "manifests: .jsonl)",
                                     input.string()));
    }
  }
  return d;
}

}  // namespace oe::ingest
