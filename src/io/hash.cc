#include "io/hash.h"

#include "io/read.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace oe::io {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  OE_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1, "SHA-256 initialisation failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

Sha256& Sha256::update(const void* data, size_t n) {
  OE_CHECK(!impl_->finished, "Sha256 updated after hex()");
  OE_CHECK(EVP_DigestUpdate(impl_->ctx, data, n) == 1, "SHA-256 update failed");
  return *this;
}

namespace {

// Feeds the bytes of a regular file to `update`, a megabyte at a time.
template <typename Update>
void feed_file(const std::filesystem::path& path, Update&& update) {
  check_regular_file(path);  // a FIFO or /dev/zero would block or never end
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) update(buf.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw IoError(fmt::format("cannot read {}", path.string()));
}

std::string lower_hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

}  // namespace

Sha256& Sha256::update_file(const std::filesystem::path& path) {
  feed_file(path, [&](const char* data, size_t n) { update(data, n); });
  return *this;
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  OE_CHECK(!impl_->finished && EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1, "SHA-256 finalisation failed");
  impl_->finished = true;
  return lower_hex(md, len);
}

std::string sha256_hex(std::string_view data) { return Sha256().update(data).hex(); }

std::string sha256_file_hex(const std::filesystem::path& path) { return Sha256().update_file(path).hex(); }

struct CacheChecksum::Impl {
  XXH3_state_t* state = nullptr;
};

CacheChecksum::CacheChecksum() : impl_(std::make_unique<Impl>()) {
  impl_->state = XXH3_createState();
  OE_CHECK(impl_->state && XXH3_128bits_reset(impl_->state) == XXH_OK, "XXH3 initialisation failed");
}

CacheChecksum::~CacheChecksum() { XXH3_freeState(impl_->state); }

CacheChecksum& CacheChecksum::update(const void* data, size_t n) {
  OE_CHECK(XXH3_128bits_update(impl_->state, data, n) == XXH_OK, "XXH3 update failed");
  return *this;
}

CacheChecksum& CacheChecksum::update_file(const std::filesystem::path& path) {
  feed_file(path, [&](const char* data, size_t n) { update(data, n); });
  return *this;
}

std::string CacheChecksum::hex() const {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(impl_->state));
  return lower_hex(c.digest, sizeof(c.digest));
}

std::string cache_checksum_hex(std::string_view data) { return CacheChecksum().update(data.data(), data.size()).hex(); }

std::string cache_checksum_file_hex(const std::filesystem::path& path) {
  return CacheChecksum().update_file(path).hex();
}

}  // namespace oe::io
