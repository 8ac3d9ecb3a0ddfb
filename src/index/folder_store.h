// The folder store: an index as one folder holding a SQLite catalog (catalog.sqlite) and, for approximate search, an HNSW graph built
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

#include <filesystem>
#include <memory>

#include "index/store.h"

namespace oe::index {

class FolderStore final : public Store {
 public:
  // Store::open_for_writing for a folder: created when missing or empty (InvalidInput when it is a file, or holds
  // other files), its write lock taken (a flock on DIR/lock), SQLite's quick check run before anything is written.
  static std::unique_ptr<FolderStore> open_for_writing(const std::filesystem::path& dir, const IndexSettings& settings,
                                                       bool reset_on_mismatch);
  // Store::open for a folder (no lock).
  static std::unique_ptr<FolderStore> open(const std::filesystem::path& dir);
  ~FolderStore() override;

  const std::filesystem::path& dir() const { return dir_; }
  std::string location() const override { return dir_.string(); }
  std::optional<SourceRecord> find_source(const std::string& key) const override;
  std::optional<SourceRecord> find_source_by_path(const std::string& path) const override;
  std::vector<SourceRecord> sources() const override;
  StoreStats stats() const override;
  void put(const std::vector<SourceUpdate>& updates) override;
  int64_t remove(const std::vector<std::string>& keys) override;
  std::vector<Hit> search(const float* query, int64_t k, const std::vector<std::string>& modalities = {},
                          int64_t hnsw_ef_search = 0) const override;
  // Builds (or loads) the caches of the current generation: the HNSW graph, or for exact search the flat vector
  // file that is memory-mapped instead of reading the catalog's BLOBs.
  void prepare_search() const override;
  void load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                    const std::vector<std::string>& modalities = {}) const override;
  std::vector<Hit> describe(const std::vector<int64_t>& item_ids) const override;
  std::optional<std::vector<float>> vector_of(int64_t item_id) const override;
  std::map<std::string, int64_t> items_by_modality() const override;
  std::map<int64_t, std::string> item_keys() const override;
  // One catalog lookup per id.
  std::vector<StoredItem> segment_views(const std::vector<int64_t>& item_ids) const override;
  // The catalog's consistency (Catalog::check), and whether the current generation's caches still have the
  // checksums the catalog records.
  CheckReport check() const override;

 private:
  FolderStore(std::filesystem::path dir, IndexSettings settings, bool writable);
  bool map_flat() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::filesystem::path dir_;
};

// Reads only the settings of the index folder `dir` (InvalidInput when it is not an index of this format).
IndexSettings read_settings(const std::filesystem::path& dir);

}  // namespace oe::index
