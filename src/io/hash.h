// SHA-256 content hashes (OpenSSL's libcrypto): the index's change detection and the model fingerprint. And the
// checksum of the index's caches (XXH3-128, libxxhash): it tells whether a cache file still holds the bytes that were
// written, fast enough for every open of a search (820 MB in 97 ms, where SHA-256 took 657 ms even with the SHA
// instructions: `search_bench --store-n 100000`). It detects damage, not forgery: whoever can write an index's folder
// can write its catalog, where the checksums are kept, too.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace oe::io {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& update(const void* data, size_t n);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  // Feeds the file's bytes; IoError naming the file when it cannot be read or is not a regular file.
  Sha256& update_file(const std::filesystem::path& path);
  // Lower-case hex of the digest; the object cannot be updated afterwards.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::filesystem::path& path);

// XXH3-128 as 32 lower-case hex digits (XXH128's canonical big-endian form).
class CacheChecksum {
 public:
  CacheChecksum();
  ~CacheChecksum();
  CacheChecksum(const CacheChecksum&) = delete;
  CacheChecksum& operator=(const CacheChecksum&) = delete;

  CacheChecksum& update(const void* data, size_t n);
  CacheChecksum& update_file(const std::filesystem::path& path);  // IoError as Sha256::update_file
  std::string hex() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string cache_checksum_hex(std::string_view data);
std::string cache_checksum_file_hex(const std::filesystem::path& path);

}  // namespace oe::io
