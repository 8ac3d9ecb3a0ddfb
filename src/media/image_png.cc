// The metadata of PNG files (spec: PNG 1.2 §4.2.3 and §4.2.2.4): the compressed ancillary chunks, which a decoder
// inflates whole. Pillow (PngImagePlugin) caps each at MAX_TEXT_CHUNK (1 MiB) and all text at MAX_TEXT_MEMORY
// (64 MiB) and refuses the file beyond; the same caps here, checked before FFmpeg sees the file.
#include <zlib.h>

#include <array>
#include <cstring>

#include "core/error.h"
#include "media/image_internal.h"

namespace oe::media::detail {
namespace {

constexpr uint64_t MAX_CHUNK_INFLATED = uint64_t{1} << 20;
constexpr uint64_t MAX_TOTAL_INFLATED = uint64_t{64} << 20;

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Bytes `data` inflates to, counting no further than `limit` + 1 (the output goes to a scratch buffer). A stream
// that is not valid zlib counts what it gave before the error (the decoder then fails or skips the chunk itself).
uint64_t inflated_size(std::span<const uint8_t> data, uint64_t limit) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw std::bad_alloc();
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  std::array<Bytef, 64 * 1024> scratch;
  uint64_t total = 0;
  for (;;) {
    z.next_out = scratch.data();
    z.avail_out = static_cast<uInt>(scratch.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    total += scratch.size() - z.avail_out;
    if (rc != Z_OK || total > limit || (z.avail_in == 0 && z.avail_out != 0)) break;
  }
  inflateEnd(&z);
  return total;
}

// Where the compressed stream of a zTXt, iTXt or iCCP chunk starts, or npos when it has none (an uncompressed iTXt).
size_t compressed_start(const char* type, std::span<const uint8_t> d) {
  const auto nul = [&](size_t from) {
    const void* p = from < d.size() ? std::memchr(d.data() + from, 0, d.size() - from) : nullptr;
    return p ? static_cast<size_t>(static_cast<const uint8_t*>(p) - d.data()) : std::string::npos;
  };
  const size_t key_end = nul(0);  // keyword or profile name, then NUL
  if (key_end == std::string::npos) return std::string::npos;
  if (std::strcmp(type, "iTXt") != 0) return key_end + 2;  // compression method byte, then the stream
  // iTXt: compression flag, method, language tag NUL, translated keyword NUL, text.
  if (key_end + 2 >= d.size() || d[key_end + 1] == 0) return std::string::npos;
  const size_t lang_end = nul(key_end + 3);
  const size_t trans_end = lang_end == std::string::npos ? lang_end : nul(lang_end + 1);
  return trans_end == std::string::npos ? trans_end : trans_end + 1;
}

}  // namespace

void check_png_chunks(std::span<const uint8_t> bytes) {
  uint64_t total = 0;
  for (size_t pos = 8; pos + 12 <= bytes.size();) {  // after the signature: length, type, data, CRC
    const uint64_t length = be32(bytes.data() + pos);
    char type[5] = {};
    std::memcpy(type, bytes.data() + pos + 4, 4);
    if (length > bytes.size() - pos - 12) return;  // truncated: the decoder reports it
    const std::span<const uint8_t> data = bytes.subspan(pos + 8, static_cast<size_t>(length));
    if (!std::strcmp(type, "zTXt") || !std::strcmp(type, "iTXt") || !std::strcmp(type, "iCCP")) {
      const size_t start = compressed_start(type, data);
      if (start != std::string::npos && start < data.size()) {
        const uint64_t n = inflated_size(data.subspan(start), MAX_CHUNK_INFLATED);
        if (n > MAX_CHUNK_INFLATED)
          throw InvalidInput(fmt::format("a PNG {} chunk inflates to more than 1 MiB (a decompression bomb in the "
                                         "metadata; Pillow refuses it too)",
                                         type));
        if ((total += n) > MAX_TOTAL_INFLATED)
          throw InvalidInput("the PNG's compressed metadata inflates to more than 64 MiB in all (a decompression bomb; "
                             "Pillow refuses it too)");
      }
    }
    if (!std::strcmp(type, "IEND")) return;
    pos += 12 + static_cast<size_t>(length);
  }
}

}  // namespace oe::media::detail
