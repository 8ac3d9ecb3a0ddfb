#include "index/vector_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "core/modality.h"
#include "io/hash.h"

namespace oe::index {
namespace {

namespace fs = std::filesystem;

constexpr char FLAT_MAGIC[8] = {'O', 'E', 'F', 'L', 'A', 'T', '0', '1'};
constexpr uint8_t UNKNOWN_MODALITY_CODE = 7;
constexpr size_t HEADER_BYTES = 24;  // magic, dim, count

size_t padded_codes_bytes(int64_t count) { return (static_cast<size_t>(count) + 7) / 8 * 8; }

size_t flat_file_bytes(int64_t count, int64_t dim) {
  const size_t codes = padded_codes_bytes(count);
  return HEADER_BYTES + 8 * static_cast<size_t>(count) + codes +
         4 * static_cast<size_t>(count) * static_cast<size_t>(dim);
}

// Removes the flat files of every generation but the one at `keep` (not the temporary files of other writers).
void remove_other_generations(const fs::path& dir, const fs::path& keep) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("flat-", 0) == 0 && e.path() != keep && name.find(".tmp") == std::string::npos)
      fs::remove(e.path());
  }
}

}  // namespace

uint8_t flat_modality_code(std::string_view name) {
  const std::optional<Modality> m = modality_from_name(name);
  return m ? static_cast<uint8_t>(*m) : UNKNOWN_MODALITY_CODE;
}

VectorCache::VectorCache(fs::path dir) : dir_(std::move(dir)) {}

VectorCache::~VectorCache() { unmap(); }

void VectorCache::unmap() {
  if (!map_) return;
  ::munmap(map_, bytes_);
  map_ = nullptr;
}

bool VectorCache::map(int64_t generation, int64_t dim, const std::function<Contents()>& contents,
                      const Checksums& sums) {
  if (map_ && generation_ == generation) return true;
  unmap();
  const std::string name = fmt::format("flat-{}.bin", generation);
  const fs::path path = dir_ / name;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string checksum;
    if (!fs::exists(path)) {
      try {
        checksum = write(path, generation, dim, contents(), sums);
      } catch (const std::exception&) {
        return false;  // a read-only folder, a full disk: search from the catalog
      }
      if (checksum.empty()) return false;
    } else {
      checksum = sums.recorded(name);
    }
    switch (open_mapped(path, generation, dim, checksum)) {
      case Opened::Mapped:
        return true;
      case Opened::Failed:
        return false;
      case Opened::Invalid:
        continue;  // removed: written again
    }
  }
  return false;
}

// Writes `c` under a temporary name, syncs it, records its checksum and renames it onto `path`; returns the checksum,
// or "" (and no file) when the bytes could not be written or their checksum not recorded. Throws
// std::filesystem_error when the rename or the removal of older files fails.
std::string VectorCache::write(const fs::path& path, int64_t generation, int64_t dim, const Contents& c,
                               const Checksums& sums) const {
  const size_t n = c.ids.size();
  std::vector<uint8_t> codes(padded_codes_bytes(static_cast<int64_t>(n)), 0);
  std::copy_n(c.codes.begin(), std::min(n, c.codes.size()), codes.begin());
  const fs::path tmp = dir_ / fmt::format("flat-{}.bin.{}.tmp", generation, ::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "";
  const int64_t header[2] = {dim, static_cast<int64_t>(n)};
  io::CacheChecksum hash;
  // An empty index has empty arrays whose data() may be null, which fwrite must never be given.
  auto put = [f, &hash](const void* data, size_t size, size_t count) {
    if (count == 0) return true;
    hash.update(data, size * count);
    return std::fwrite(data, size, count, f) == count;
  };
  bool ok = put(FLAT_MAGIC, 1, 8) && put(header, 8, 2) && put(c.ids.data(), 8, n) &&
            put(codes.data(), 1, codes.size()) && put(c.vectors.data(), 4, c.vectors.size());
  ok = std::fflush(f) == 0 && ok && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  const std::string checksum = hash.hex();
  if (!ok || !sums.record(path.filename().string(), checksum)) {
    fs::remove(tmp);
    return "";
  }
  fs::rename(tmp, path);
  remove_other_generations(dir_, path);
  return checksum;
}

// Maps `path` when its magic, dim and size match its header and its bytes have the checksum `checksum`; Invalid (and
// the file removed) when they do not, or when no checksum is known; Failed when it cannot be opened or mapped.
VectorCache::Opened VectorCache::open_mapped(const fs::path& path, int64_t generation, int64_t dim,
                                             const std::string& checksum) {
  auto invalid = [&] {
    std::error_code ec;
    fs::remove(path, ec);  // not ours, torn, damaged or unverifiable: written again
    return Opened::Invalid;
  };
  if (checksum.empty()) return invalid();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Opened::Failed;
  struct stat sb {};
  char magic[8];
  int64_t header[2] = {0, 0};
  const bool readable = ::fstat(fd, &sb) == 0 && ::pread(fd, magic, 8, 0) == 8 && ::pread(fd, header, 16, 8) == 16 &&
                        std::memcmp(magic, FLAT_MAGIC, 8) == 0 && header[0] == dim && header[1] >= 0 &&
                        header[1] <= sb.st_size / 8 &&  // flat_file_bytes cannot overflow
                        static_cast<size_t>(sb.st_size) == flat_file_bytes(header[1], dim);
  if (!readable) {
    ::close(fd);
    return invalid();
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(sb.st_size), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Opened::Failed;
  const std::string_view bytes(static_cast<const char*>(p), static_cast<size_t>(sb.st_size));
  if (io::cache_checksum_hex(bytes) != checksum) {
    ::munmap(p, static_cast<size_t>(sb.st_size));
    return invalid();
  }
  map_ = p;
  bytes_ = static_cast<size_t>(sb.st_size);
  count_ = header[1];
  generation_ = generation;
  return Opened::Mapped;
}

const int64_t* VectorCache::ids() const {
  return reinterpret_cast<const int64_t*>(static_cast<const char*>(map_) + HEADER_BYTES);
}

const uint8_t* VectorCache::codes() const {
  return reinterpret_cast<const uint8_t*>(static_cast<const char*>(map_) + HEADER_BYTES + 8 * count_);
}

const float* VectorCache::vectors() const {
  return reinterpret_cast<const float*>(static_cast<const char*>(map_) + HEADER_BYTES + 8 * count_ +
                                        padded_codes_bytes(count_));
}

std::vector<uint8_t> VectorCache::allowed(const std::vector<std::string>& modalities) const {
  std::vector<uint8_t> wanted;
  for (const auto& mod : modalities) wanted.push_back(flat_modality_code(mod));
  const uint8_t* row_codes = codes();
  std::vector<uint8_t> allow(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i)
    allow[i] = std::find(wanted.begin(), wanted.end(), row_codes[i]) != wanted.end();
  return allow;
}

}  // namespace oe::index
