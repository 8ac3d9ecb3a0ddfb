// The index: one folder holding a SQLite catalog (catalog.sqlite) and, for approximate search, an HNSW graph built
// from it. The catalog is the single source of truth: each source (a file, or one entry of a JSONL manifest) is
// written together with all of its segments and their vectors in ONE transaction, so a process killed at any
// moment leaves either the old or the new state of that source, never a mix, and never a vector without its
// source. SQLite's write-ahead log makes the commit atomic; a re-run resumes by skipping the sources whose content
// hash is already stored. Exact search (the default) ranks the vectors of the catalog by inner product (knn.h); HNSW
// graphs are cached in the folder per catalog generation and rebuilt when stale.
//
//   DIR/catalog.sqlite   meta (format version, settings, generation), sources, items (+ vector BLOBs)
//   DIR/lock             held (flock) by the one process allowed to write
//   DIR/flat-<gen>.bin   the vectors of generation <gen> as one float32 matrix (ids, modality codes), memory-mapped
//                        by exact search: a cache of the catalog, rewritten when the catalog changes
//   DIR/hnsw-<gen>.bin   the HNSW graph of generation <gen> (only with vectors = "hnsw")
// The caches are trusted only through the catalog: it records the checksum of each one as written (XXH3-128), and a
// cache whose bytes differ (damaged, foreign, changed) or that has no record is built again from it, never read. A
// writer runs SQLite's quick check of the catalog before it changes anything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
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
  // Opens the index in `dir` for writing, creating it with `settings` when the folder is missing or empty. Takes the
  // folder's write lock (InvalidInput when another process holds it). An existing index must have this format
  // version (InvalidInput naming both versions otherwise) and the same model fingerprint, embedding settings and
  // dimension (InvalidInput saying which differs) unless `reset_on_mismatch`, which clears it (in one transaction)
  // and adopts the new settings. InvalidInput, and nothing written, when SQLite's quick check finds the catalog
  // damaged.
  static std::unique_ptr<Store> open_for_writing(const std::filesystem::path& dir, const IndexSettings& settings,
                                                 bool reset_on_mismatch = false);
  // Opens an existing index read-only (no lock; readers see the last committed state).
  static std::unique_ptr<Store> open(const std::filesystem::path& dir);
  ~Store();

  const std::filesystem::path& dir() const { return dir_; }
  const IndexSettings& settings() const { return settings_; }
  bool writable() const { return writable_; }

  std::optional<SourceRecord> find_source(const std::string& key) const;
  // The source a hit with this `path` comes from (the first by key when several share it).
  std::optional<SourceRecord> find_source_by_path(const std::string& path) const;
  std::vector<SourceRecord> sources() const;
  StoreStats stats() const;

  // Writes a batch of sources, each replacing the stored one with the same key, in one transaction.
  struct SourceUpdate {
    SourceRecord source;
    std::vector<Segment> segments;  // empty for a failed source
  };
  void put(const std::vector<SourceUpdate>& updates);
  // Removes sources (and their items) by key, in one transaction; returns how many existed.
  int64_t remove(const std::vector<std::string>& keys);

  // Top-k by inner product over all items, or over those of the given modalities. Exact unless the index was
  // created with vectors = "hnsw". Scores are float32 inner products (cosines: the vectors are unit length).
  std::vector<Hit> search(const float* query, int64_t k, const std::vector<std::string>& modalities = {},
                          int64_t hnsw_ef_search = 0) const;
  // Builds (or loads) what search reads for the current generation and caches it in the folder: the HNSW graph,
  // or for exact search the flat vector file that is memory-mapped instead of reading the catalog's BLOBs.
  void prepare_search() const;

  // Every stored vector of the given modalities (all when empty), in item id order.
  void load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                    const std::vector<std::string>& modalities = {}) const;
  std::vector<Hit> describe(const std::vector<int64_t>& item_ids) const;  // the catalog rows of these items
  // One item's stored vector (nullopt: no such item), and the number of items per modality.
  std::optional<std::vector<float>> vector_of(int64_t item_id) const;
  std::map<std::string, int64_t> items_by_modality() const;
  // item id -> its source's key, for every item.
  std::map<int64_t, std::string> item_keys() const;
  // Every item of the segments (source and segment number) that hold these items, with its stored vector: each item
  // together with the other views of its segment (a late-fusion video's frames and sound), each item once, segments
  // in the order of their first id, by item id within one; an id not stored gives nothing. What late fusion reads to
  // score the candidates of an HNSW search exactly (search/late_search.h), one catalog lookup per id.
  std::vector<StoredItem> segment_views(const std::vector<int64_t>& item_ids) const;

  // The catalog's consistency (Catalog::check), and whether the current generation's caches still have the
  // checksums the catalog records.
  CheckReport check() const;

 private:
  Store() = default;
  bool map_flat() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::filesystem::path dir_;
  IndexSettings settings_;
  bool writable_ = false;
};

// Reads only the settings of the index in `dir` (InvalidInput when it is not an index of this format).
IndexSettings read_settings(const std::filesystem::path& dir);

// Describes how `expected` and `actual` differ ("" when they match in model, embedding settings and dimension).
std::string settings_difference(const IndexSettings& stored, const IndexSettings& wanted);

}  // namespace oe::index
