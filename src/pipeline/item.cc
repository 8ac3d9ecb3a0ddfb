#include "pipeline/item.h"

#include <set>

#include "core/error.h"
#include "io/read.h"

namespace oe::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// "image": "PATH" or ["PATH", ...] (null: none); relative paths are relative to `base`.
std::vector<fs::path> media_paths(const json& v, const char* key, const ItemFormat& format) {
  std::vector<fs::path> out;
  auto add = [&](const json& e) {
    if (!e.is_string() || e.get<std::string>().empty())
      throw InvalidInput(fmt::format("\"{}\" must be a file path or a list of file paths", key));
    fs::path p = e.get<std::string>();
    out.push_back(p.is_absolute() ? p : format.base / p);
  };
  if (v.is_array()) {
    for (const auto& e : v) add(e);
  } else if (!v.is_null()) {
    add(v);
  }
  return out;
}

// A key with a value: null is the same as absent.
bool has(const json& entry, const char* key) { return entry.contains(key) && !entry[key].is_null(); }

std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A manifest entry's id: "id", else BEIR's "_id"; a string or an integer, not empty.
json catalogue_id(const json& entry) {
  const json* id = has(entry, "id") ? &entry["id"] : has(entry, "_id") ? &entry["_id"] : nullptr;
  if (!id || !(id->is_string() || id->is_number_integer()))
    throw InvalidInput("every entry needs an \"id\" (a string or an integer)");
  const std::string s = id->is_string() ? id->get<std::string>() : std::to_string(id->get<int64_t>());
  if (s.empty()) throw InvalidInput("\"id\" is empty");
  return s;
}

// BEIR's text: the title and the text joined with a space, stripped (as BEIR's loader and MTEB do).
std::string catalogue_text(const json& entry) {
  for (const char* k : {"title", "text"})
    if (has(entry, k) && !entry[k].is_string()) throw InvalidInput(fmt::format("\"{}\" must be a string", k));
  const std::string title = has(entry, "title") ? entry["title"].get<std::string>() : "";
  const std::string body = has(entry, "text") ? entry["text"].get<std::string>() : "";
  return strip(title.empty() ? body : title + " " + body);
}

}  // namespace

Modality EmbedItem::modality() const {
  const int kinds = !text.empty() + !images.empty() + !audios.empty() + !videos.empty();
  if (kinds > 1) return Modality::Mixed;
  if (!images.empty()) return Modality::Image;
  if (!audios.empty()) return Modality::Audio;
  if (!videos.empty()) return Modality::Video;
  return Modality::Text;
}

model::EmbedRequest EmbedItem::request() const {
  model::EmbedRequest r;
  r.role = role;
  r.text = text;
  r.images = images;
  r.audios = audios;
  r.videos = videos;
  return r;
}

std::string EmbedItem::id_string() const {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  return id.is_null() ? "" : id.dump();
}

EmbedItem parse_item(const json& entry, const ItemFormat& format) {
  if (!entry.is_object()) throw InvalidInput("expected a JSON object");
  EmbedItem it;
  if (format.catalogued) {
    it.id = catalogue_id(entry);
  } else if (has(entry, "id")) {
    it.id = entry["id"];
  }
  it.role = format.role ? *format.role : has(entry, "role") ? text::parse_role(entry["role"].get<std::string>())
                                                             : text::Role::Document;
  if (entry.contains("image")) it.images = media_paths(entry["image"], "image", format);
  if (entry.contains("audio")) it.audios = media_paths(entry["audio"], "audio", format);
  if (entry.contains("video")) it.videos = media_paths(entry["video"], "video", format);
  if (format.catalogued) {
    it.text = catalogue_text(entry);
    if (it.text.empty() && !it.has_media() && !has(entry, "text"))
      throw InvalidInput("the entry has no \"text\", \"image\", \"audio\" or \"video\"");
  } else if (has(entry, "text")) {
    if (!entry["text"].is_string()) throw InvalidInput("\"text\" must be a string");
    it.text = entry["text"].get<std::string>();
  } else if (it.role == text::Role::Query && !it.has_media()) {
    throw InvalidInput("a query needs \"text\", \"image\", \"audio\" or \"video\"");
  }
  return it;
}

void read_item_lines(const fs::path& file, const ItemFormat& format, const std::function<void(ItemLine)>& take) {
  io::LineReader in(file, io::ReadCap{static_cast<uint64_t>(format.max_line_bytes), "JSONL line", "--max-text-bytes"});
  std::set<std::string> ids;
  std::string line;
  while (in.next(line)) {
    const int64_t n = in.line_number();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ItemLine out;
    out.line = n;
    try {
      const json entry = json::parse(line);
      EmbedItem item = parse_item(entry, format);
      if (format.catalogued && !ids.insert(item.id_string()).second)
        throw InvalidInput(fmt::format("id \"{}\" appears twice", item.id_string()));
      out.item = std::move(item);
      out.canonical = entry.dump();
    } catch (const json::exception& e) {
      out.error = fmt::format("{} line {}: not valid JSON ({})", file.string(), n, e.what());
    } catch (const InvalidInput& e) {
      out.error = fmt::format("{} line {}: {}", file.string(), n, e.what());
    }
    take(std::move(out));
  }
}

}  // namespace oe::pipeline
