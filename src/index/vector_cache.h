// The flat vector cache of an index: DIR/flat-<gen>.bin holds the vectors of catalog generation <gen> as one float32
// matrix with their item ids and modality codes, memory-mapped by exact search so that it reads no BLOBs. A cache
// of the catalog, rewritten when the generation changes, but it knows nothing of the catalog: it is given the ids,
// codes and vectors to write.
//
// The flat vector file: "OEFLAT01", dim and count (int64), ids [count] (int64), modality codes [count] (uint8,
// padded to 8 bytes), vectors [count, dim] (float32). Written to a temporary name, synced and renamed, so a reader
// sees a complete file or none. Its checksum (io::CacheChecksum) is recorded in the catalog before the rename, and a
// file is mapped only when its header, size and checksum match: a damaged or foreign file is written again, never
// read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace oe::index {

// The code of a modality name in the file: its number in core/modality.h, 7 for a name that is none of them.
uint8_t flat_modality_code(std::string_view name);

// One folder's flat file, mapped for one generation at a time. Not thread-safe: the caller serialises its use.
class VectorCache {
 public:
  // What one file holds: ids [n], codes [n] (flat_modality_code), vectors [n, dim].
  struct Contents {
    std::vector<int64_t> ids;
    std::vector<uint8_t> codes;
    std::vector<float> vectors;
  };

  // The catalog's record of each file's checksum (Catalog::cache_checksum, record_cache_checksum), by file name.
  struct Checksums {
    std::function<std::string(const std::string& file)> recorded;  // "" when none
    std::function<bool(const std::string& file, const std::string& checksum)> record;  // false when it cannot
  };

  explicit VectorCache(std::filesystem::path dir);
  ~VectorCache();  // unmaps
  VectorCache(const VectorCache&) = delete;
  VectorCache& operator=(const VectorCache&) = delete;

  // Maps flat-<generation>.bin (vectors of `dim` floats), first writing it from contents() when it is missing; a
  // file whose header, size or checksum is wrong (not ours, torn, damaged or changed), or that has no recorded
  // checksum, is removed and written again once. Writing a file removes those of the other generations. False when
  // neither works: a read-only folder, a full disk, a checksum that could not be recorded, or contents() threw; the
  // caller then reads the catalog. A map of another generation is dropped first.
  bool map(int64_t generation, int64_t dim, const std::function<Contents()>& contents, const Checksums& sums);
  void unmap();

  // The mapped file (only while map() last returned true): count rows of ids [count], codes [count] and vectors
  // [count, dim], owned by the mapping and valid until the next map() or unmap().
  int64_t count() const { return count_; }
  const int64_t* ids() const;
  const uint8_t* codes() const;
  const float* vectors() const;
  // [count] flags: whether each row's modality is one of `modalities` (names, as the catalog stores them).
  std::vector<uint8_t> allowed(const std::vector<std::string>& modalities) const;

 private:
  enum class Opened { Mapped, Invalid, Failed };
  std::string write(const std::filesystem::path& path, int64_t generation, int64_t dim, const Contents& c,
                    const Checksums& sums) const;
  Opened open_mapped(const std::filesystem::path& path, int64_t generation, int64_t dim, const std::string& checksum);

  std::filesystem::path dir_;
  void* map_ = nullptr;
  size_t bytes_ = 0;
  int64_t generation_ = -1, count_ = 0;
};

}  // namespace oe::index
