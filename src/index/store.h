// An index: the sources embedded (each with its content hash and status), their segments with one vector per view,
// and the settings fixed when it was made. Store is what indexing, search, eval and serving read and write; an
// implementation keeps these promises:
//  - put() writes each source together with all of its segments in one transaction: a process killed at any moment
//    leaves the old or the new state of that source, never a mix, and never a vector without its source; a re-run
//    resumes by skipping the sources whose content hash is stored;
//  - one process writes at a time (open_for_writing refuses a second writer); readers need no lock and see the
//    last committed state;
//  - search() is exact (every vector scored) unless the index was made with vectors = "hnsw";
//  - check() reports every inconsistency it finds, and nothing is written by it.
// The implementation today is the index folder (folder_store.h: SQLite catalog, memory-mapped vectors, HNSW graph).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace oe::index {

inline constexpr int64_t FORMAT_VERSION = 1;

// Fixed when the index is created. A search or a later indexing run compares its own against them.
struct IndexSettings {
  std::string model;              // the model as the user named it (folder or Hub id), for messages
  std::string model_fingerprint;  // model::Model::fingerprint(): which weights made the vectors
  // Not stored: other fingerprints of the same weights (model::Model::fingerprint_aliases, what earlier versions
  // computed). An index that records one of them is the same model's, and records model_fingerprint once written.
  std::vector<std::string> fingerprint_aliases;
  // The LoRA adapter applied to the weights (model::Model::adapter_id; both empty: none): the folder as an absolute
  // path, for messages and for a search that is not given --adapter, and its content hash, which is compared.
  // Recorded only when there is one, so an index built without adapter reads and writes as before.
  std::string adapter;
  std::string adapter_id;
  std::string embedding;          // canonical JSON of the prompt layout and the preprocessing limits
  int64_t dim = 0;
  std::string vectors = "flat";   // "flat" (exact) | "hnsw"
  int64_t hnsw_m = 32;
  int64_t hnsw_ef_construction = 80;
  // Segmenting (recorded so hits can be interpreted, and so a re-run with other values re-segments).
  int64_t text_window = 512;      // tokens
  int64_t text_overlap = 64;
  double media_window = 30;       // seconds; 0: each audio whole, cut at the clip length
  double media_overlap = 0;
};

// One embedded piece of a source: a whole file or a window of it.
struct Segment {
  int64_t index = 0;
  std::string modality;  // "text" | "image" | "audio" | "video" | "mixed"
  double start = 0, end = 0;
  std::string unit;      // "" (whole source), "char" (text offsets) or "s" (seconds)
  std::string preview;   // the first characters of a text segment
  int64_t n_tokens = 0;
  std::vector<float> vector;
};

struct SourceRecord {
  int64_t id = 0;
  std::string key;           // unique: the absolute file path, or "<manifest path>#<id>"
  std::string path;          // what a hit shows (the file, or the manifest entry's first media file / id)
  std::string origin;        // the folder or manifest it was found through (for --prune)
  std::string content_hash;  // SHA-256 of the bytes (and of the manifest line)
  int64_t size = 0;
  std::string modality;
  double duration = 0;       // seconds, for audio and video
  std::string status;        // "ok" | "failed"
  std::string error;         // why it failed
};

struct Hit {
  int64_t item_id = 0;
  float score = 0;
  std::string path;
  std::string key;
  std::string modality;
  int64_t segment = 0;
  double start = 0, end = 0;
  std::string unit;
  std::string preview;
};

// A catalog item with its stored vector.
struct StoredItem {
  Hit hit;                    // its catalog row (score 0)
  std::vector<float> vector;  // [dim]
};

struct StoreStats {
  int64_t sources = 0, failed = 0, items = 0, generation = 0;
};

// Consistency of the catalog (for `omni-embed index --check` and the crash tests).
struct CheckReport {
  std::vector<std::string> problems;  // empty when consistent
  bool ok() const { return problems.empty(); }
};

class Store {
 public:
  // Opens the index at `location` (an index folder) for writing, creating it with `settings` when it does not exist.
  // An existing index must have this format version (InvalidInput naming both versions otherwise) and the same model
  // fingerprint, embedding settings and dimension (InvalidInput saying which differs) unless `reset_on_mismatch`,
  // which clears it (in one transaction) and adopts the new settings. InvalidInput when another process writes it,
  // and when it is damaged (nothing written).
  static std::unique_ptr<Store> open_for_writing(const std::filesystem::path& location, const IndexSettings& settings,
                                                 bool reset_on_mismatch = false);
  // Opens an existing index read-only.
  static std::unique_ptr<Store> open(const std::filesystem::path& location);
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Where the index is, as messages name it (the folder).
  virtual std::string location() const = 0;
  const IndexSettings& settings() const { return settings_; }
  bool writable() const { return writable_; }

  virtual std::optional<SourceRecord> find_source(const std::string& key) const = 0;
  // The source a hit with this `path` comes from (the first by key when several share it).
  virtual std::optional<SourceRecord> find_source_by_path(const std::string& path) const = 0;
  virtual std::vector<SourceRecord> sources() const = 0;
  virtual StoreStats stats() const = 0;

  // Writes a batch of sources, each replacing the stored one with the same key, in one transaction.
  struct SourceUpdate {
    SourceRecord source;
    std::vector<Segment> segments;  // empty for a failed source
  };
  virtual void put(const std::vector<SourceUpdate>& updates) = 0;
  // Removes sources (and their items) by key, in one transaction; returns how many existed.
  virtual int64_t remove(const std::vector<std::string>& keys) = 0;

  // Top-k by inner product over all items, or over those of the given modalities. Exact unless the index was
  // created with vectors = "hnsw". Scores are float32 inner products (cosines: the vectors are unit length).
  virtual std::vector<Hit> search(const float* query, int64_t k, const std::vector<std::string>& modalities = {},
                                  int64_t hnsw_ef_search = 0) const = 0;
  // Makes ready what search reads for the current state (the folder store builds or loads its caches).
  virtual void prepare_search() const = 0;

  // Every stored vector of the given modalities (all when empty), in item id order.
  virtual void load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                            const std::vector<std::string>& modalities = {}) const = 0;
  virtual std::vector<Hit> describe(const std::vector<int64_t>& item_ids) const = 0;  // the rows of these items
  // One item's stored vector (nullopt: no such item), and the number of items per modality.
  virtual std::optional<std::vector<float>> vector_of(int64_t item_id) const = 0;
  virtual std::map<std::string, int64_t> items_by_modality() const = 0;
  // item id -> its source's key, for every item.
  virtual std::map<int64_t, std::string> item_keys() const = 0;
  // Every item of the segments (source and segment number) that hold these items, with its stored vector: each item
  // together with the other views of its segment (a late-fusion video's frames and sound), each item once, segments
  // in the order of their first id, by item id within one; an id not stored gives nothing. What late fusion reads to
  // score the candidates of an HNSW search exactly (search/late_search.h).
  virtual std::vector<StoredItem> segment_views(const std::vector<int64_t>& item_ids) const = 0;

  // The index's consistency (for `omni-embed index --check` and the crash tests).
  virtual CheckReport check() const = 0;

 protected:
  Store(IndexSettings settings, bool writable) : settings_(std::move(settings)), writable_(writable) {}
  IndexSettings settings_;
  bool writable_ = false;
};

// Describes how `expected` and `actual` differ ("" when they match in model, embedding settings and dimension).
std::string settings_difference(const IndexSettings& stored, const IndexSettings& wanted);

}  // namespace oe::index
