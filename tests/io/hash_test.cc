#include "io/hash.h"

#include <fstream>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "core/error.h"

namespace oe::io {
namespace {

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalAndFileAgree) {
  oe::testing::TempDir dir;
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 9));
  std::ofstream(dir.path() / "blob", std::ios::binary) << data;
  Sha256 h;
  h.update(std::string_view(data).substr(0, 1000)).update(std::string_view(data).substr(1000));
  const std::string incremental = h.hex();
  EXPECT_EQ(incremental, sha256_hex(data));
  EXPECT_EQ(sha256_file_hex(dir.path() / "blob"), incremental);
}

TEST(Sha256, MissingFileNamesIt) {
  try {
    sha256_file_hex("/nonexistent/file.bin");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.bin"), std::string::npos);
  }
}

TEST(CacheChecksum, KnownVectorIncrementalFileAndOneBit) {
  // XXH3-128 of nothing, as xxHash's reference gives it (high word first).
  EXPECT_EQ(cache_checksum_hex(""), "99aa06d3014798d86001c324468d497f");
  oe::testing::TempDir dir;
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 9));
  std::ofstream(dir.path() / "blob", std::ios::binary) << data;
  CacheChecksum h;
  h.update(data.data(), 1000).update(data.data() + 1000, data.size() - 1000);
  const std::string incremental = h.hex();
  EXPECT_EQ(incremental.size(), 32u);
  EXPECT_EQ(incremental, cache_checksum_hex(data));
  EXPECT_EQ(cache_checksum_file_hex(dir.path() / "blob"), incremental);
  data[data.size() / 2] ^= 1;
  EXPECT_NE(cache_checksum_hex(data), incremental);
  EXPECT_THROW(cache_checksum_file_hex(dir.path() / "missing"), IoError);
}

}  // namespace
}  // namespace oe::io
