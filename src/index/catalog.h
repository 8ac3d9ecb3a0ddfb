// The catalog of an index (DIR/catalog.sqlite), its single source of truth: meta (format version, settings,
// generation), sources, and items with their vectors as BLOBs. Each batch of sources is written or removed in ONE
// transaction, so a process killed at any moment leaves either the old or the new state of a source, never a mix,
// and never a vector without its source. Every change of sources or items advances the generation, which names the
// caches built from the catalog (store.h). Knows nothing of locks or caches: the Store decides who may write.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/sqlite.h"
#include "index/store.h"

namespace oe::index {

inline constexpr const char* CATALOG = "catalog.sqlite";

class Catalog {
 public:
  // Opens DIR/catalog.sqlite read-only; InvalidInput naming the folder when it has none.
  static std::unique_ptr<Catalog> open_existing(const std::filesystem::path& dir);
  // Writes a complete new catalog (schema, format version, `settings`, generation 0) into `dir`, replacing a blank
  // one; IoError when it cannot be renamed into place. Called with the writer's lock held.
  static void create(const std::filesystem::path& dir, const IndexSettings& settings);
  // Whether DIR/catalog.sqlite (which must exist) holds no table at all.
  static bool is_blank(const std::filesystem::path& dir);

  // Opens DIR/catalog.sqlite; for writing, in WAL mode with foreign keys on. IoError when SQLite cannot open it.
  Catalog(const std::filesystem::path& dir, bool read_only);

  // The stored settings, after checking the format version: InvalidInput naming the folder when the catalog is
  // blank, has no meta table, another format version, or unreadable settings.
  IndexSettings read_settings() const;
  // Replaces the stored settings (one transaction).
  void write_settings(const IndexSettings& settings);
  // Removes every source and item and stores `settings`, in one transaction; a new generation.
  void reset(const IndexSettings& settings);
  int64_t generation() const;

  std::optional<SourceRecord> find_source(const std::string& key) const;
  // The first source (by key) whose `path` is exactly this: what a hit names.
  std::optional<SourceRecord> find_source_by_path(const std::string& path) const;
  std::vector<SourceRecord> sources() const;  // ordered by key
  StoreStats stats() const;

  // Each update replaces the stored source with the same key, in one transaction; a new generation. InternalError
  // (and nothing written) when a vector does not have `dim` floats.
  void put(const std::vector<Store::SourceUpdate>& updates, int64_t dim);
  // Removes sources (and their items) by key, in one transaction; a new generation. Returns how many existed.
  int64_t remove(const std::vector<std::string>& keys);

  // Every stored vector of the given modalities (all when empty), in item id order: ids [n], matrix [n, dim].
  // IoError naming the item when a stored vector does not have `dim` floats.
  void load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix, const std::vector<std::string>& modalities,
                    int64_t dim) const;
  // The stored vector of one item (nullopt when no item has this id); IoError as load_vectors.
  std::optional<std::vector<float>> vector_of(int64_t item_id, int64_t dim) const;
  // How many items each modality has.
  std::map<std::string, int64_t> items_by_modality() const;
  // The modality of every item, in item id order.
  std::vector<std::string> item_modalities() const;
  // item id -> its modality, for every item.
  std::unordered_map<int64_t, std::string> modality_by_item() const;
  // The catalog rows of these items, in their order (a Hit with only item_id set for an id not stored); scores 0.
  std::vector<Hit> describe(const std::vector<int64_t>& item_ids) const;
  // item id -> its source's key, for every item.
  std::map<int64_t, std::string> item_keys() const;
  // Every item of the segments that hold these items, with its vector (Store::segment_views); IoError as load_vectors.
  std::vector<StoredItem> segment_views(const std::vector<int64_t>& item_ids, int64_t dim) const;

  // The checksums of the caches built from the catalog (the flat vector file, the HNSW graph), by file name
  // ("flat-12.bin"): the io::CacheChecksum of the bytes the builder wrote, "" when none is recorded. A cache is used
  // only when its bytes still have it, so a damaged, foreign or changed file is built again instead of being read.
  std::string cache_checksum(const std::string& file) const;
  // Records the checksum of `file` and forgets those of the other files of its kind (the name up to its '-'). The one
  // write a reader makes: its own short transaction (on a second connection when this one is read-only) that touches
  // no source, item or generation. False when the catalog cannot be written now (a read-only folder, a writer busy
  // for more than a second): the cache then serves this process only, and the next one builds it again.
  bool record_cache_checksum(const std::string& file, const std::string& checksum) const;

  // SQLite's quick check (every page and index entry well formed; no cross-check of index contents): "" when it
  // passes, else SQLite's first complaint. Linear in the catalog's size: run before a writer changes anything.
  std::string quick_check() const;

  // SQLite's integrity check, then orphans, sources without items, failed sources with items, segment numbering,
  // and vectors that do not have `dim` floats or are not unit length.
  CheckReport check(int64_t dim) const;

 private:
  void bump_generation();
  // Read-only: lets a read-write connection recover what a killed writer left (see catalog.cc).
  void recover_for_reading();

  std::filesystem::path dir_;
  bool read_only_ = false;
  std::unique_ptr<Database> db_;
};

}  // namespace oe::index
