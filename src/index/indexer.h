// Filling an index from what a user points at: folders (walked recursively), single files, and JSONL manifests
// ({"id": ..., "text": ..., "image": ..., "audio": ..., "video": ...} per line). Each file or manifest entry is one
// source; its content hash (SHA-256 of its bytes, its manifest line and the segmenting settings) decides whether it
// is skipped, embedded for the first time, or re-embedded. Long texts are cut into windows of tokens with overlap so
// hits point into the text. A source that fails (unreadable, wrong format, unsupported) is reported and recorded
// as failed without stopping the run; a previously indexed version of it is kept when its file cannot be read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "index/store.h"
#include "model/embedder.h"

namespace oe::index {

// In an index made with late fusion, a video segment has two vectors: its frames under the segment's modality, and
// its sound as a second item of the same segment with this modality. Search combines their scores (late_fusion.h).
inline constexpr const char* SOUND_VIEW = "video-sound";

// One thing to index.
struct SourceSpec {
  std::string key;     // absolute file path, or "<manifest>#<id>"
  std::string id;      // the manifest entry's id ("" for files)
  std::string path;    // shown in hits
  std::string origin;  // the folder, file or manifest it came from
  std::string modality;  // "text" | "image" | "audio" | "video" | "mixed"
  std::string text;      // manifest text (text files are read when embedded)
  bool text_from_file = false;
  std::vector<std::filesystem::path> images, audio, video;
  std::string manifest_line;  // canonical JSON of the manifest entry (part of the hash)
  std::filesystem::path file;  // the file itself, for file sources
};

struct Discovery {
  std::vector<SourceSpec> sources;
  std::vector<std::string> origins;  // absolute, one per input
  std::vector<std::string> errors;   // unreadable folders, bad manifest lines (the rest goes on)
  int64_t ignored = 0;               // files of unknown type
};

// The modality of a file by its extension ("" when it is not a known media or text type).
std::string modality_of_file(const std::filesystem::path& path);

// Walks folders (sorted, hidden entries and `skip` excluded), takes single files as they are, and reads *.jsonl
// inputs as manifests (media paths relative to the manifest's folder; "id" or "_id" required and unique).
// A BEIR corpus line ({"_id", "title", "text", ...}) is a manifest line; a non-empty title is joined to the text
// with a space, as BEIR does. InvalidInput when an input does not exist.
Discovery discover(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& skip = {});

// Cuts `text` into windows of at most `window` tokens (0: one window), consecutive windows sharing about `overlap`
// tokens, at word boundaries (a word is a whitespace run and the non-space run after it, as the pre-tokenizer
// splits). Offsets are byte offsets into `text`.
struct TextWindow {
  size_t begin = 0, end = 0;
};
std::vector<TextWindow> text_windows(const text::Tokenizer& tokenizer, const std::string& text, int64_t window,
                                     int64_t overlap);

struct IndexerOptions {
  int64_t batch_tokens = 4096;  // tokens per forward pass (and per committed transaction)
  bool prune = false;           // remove stored sources of these origins that were not found
  text::Role role = text::Role::Document;
};

struct IndexReport {
  int64_t added = 0, updated = 0, unchanged = 0, failed = 0, removed = 0, missing = 0, segments = 0;
  std::vector<std::pair<std::string, std::string>> failures;  // (path, why)
  double seconds = 0;
};

// Progress: sources done, total, the source being worked on.
using IndexProgress = std::function<void(int64_t done, int64_t total, const std::string& current)>;

class Indexer {
 public:
  Indexer(const model::Embedder& embedder, Store& store, IndexerOptions options);
  IndexReport run(const Discovery& found, const IndexProgress& progress = {});

 private:
  struct Pending;
  void flush(std::vector<Pending>& pending, IndexReport& report);
  // Embeds the prepared inputs of these sources (their vectors go to the matching segments) and drops the inputs.
  void embed_inputs(std::vector<Pending*> pending);
  // Cuts the source's one audio file into windows of media_window seconds (media_overlap shared) and prepares each
  // with the entry's text; long files are embedded as they are read.
  void add_audio_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                         const std::function<void(const std::string&)>& progress);
  const model::Embedder& embedder_;
  Store& store_;
  IndexerOptions options_;
};

// The canonical JSON of the settings that change document or query vectors (prompt layout, attention, limits), as
// recorded in an index; two runs with equal strings produce comparable vectors.
std::string embedding_settings_json(const model::EmbedOptions& options);
// The inverse: `base` with the recorded settings applied (InvalidInput when they cannot be read).
model::EmbedOptions embed_options_from_settings(const std::string& settings_json, model::EmbedOptions base);

}  // namespace oe::index
