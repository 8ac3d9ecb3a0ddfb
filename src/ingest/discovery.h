// What a user points `index` at becomes sources: folders (walked recursively), single files, and JSONL manifests
// ({"id": ..., "title": ..., "text": ..., "image": ..., "audio": ..., "video": ...} per line, pipeline/item.h). Each
// file or manifest entry is one source with a stable key, the path a hit shows, and the canonical JSON that its
// content hash covers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/modality.h"
#include "pipeline/item.h"

namespace oe::ingest {

// One thing to index.
struct SourceSpec {
  std::string key;       // absolute file path, or "<manifest>#<id>"
  std::string id;        // the manifest entry's id ("" for files)
  std::string path;      // shown in hits
  std::string origin;    // the folder, file or manifest it came from
  Modality modality = Modality::Text;
  pipeline::EmbedItem item;    // the manifest entry's text and media; a file's own media (a text file: read later)
  bool text_from_file = false;
  std::string manifest_line;   // canonical JSON of the manifest entry (part of the content hash)
  std::filesystem::path file;  // the file itself, for file sources
};

struct Discovery {
  std::vector<SourceSpec> sources;
  std::vector<std::string> origins;  // absolute, one per input
  std::vector<std::string> errors;   // unreadable folders, bad manifest lines (the rest goes on)
  int64_t ignored = 0;               // files of unknown type
};

// The modality of a file by its extension (nullopt when it is not a known text or media type).
std::optional<Modality> modality_of_file(const std::filesystem::path& path);

// Walks folders (sorted, hidden entries and `skip` excluded), takes single files as they are, and reads *.jsonl
// inputs as manifests (media paths relative to the manifest's folder; ids required and unique; a BEIR corpus line's
// title joined to its text; lines of at most `max_line_bytes`). InvalidInput when an input does not exist.
Discovery discover(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& skip = {},
                   int64_t max_line_bytes = pipeline::ItemFormat{}.max_line_bytes);

}  // namespace oe::ingest
