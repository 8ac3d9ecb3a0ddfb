// WebP through libwebp, the library Pillow links (WebPImagePlugin decodes with libwebp's default options, RGBA
// output when the bitstream has alpha, RGB otherwise). Decoding goes straight into our buffer.
#include <webp/decode.h>

#include "core/error.h"
#include "media/image_internal.h"

namespace oe::media::detail {

DecodedImage decode_webp(std::span<const uint8_t> bytes, const ImageHeader& header) {
  const int64_t n_pixels = header.width * header.height;
  DecodedImage out;
  out.rgb.width = header.width;
  out.rgb.height = header.height;
  const char* failure = "corrupt or truncated WebP data (libwebp could not decode it)";
  if (!header.pillow_rgba) {
    out.rgb.pixels.resize(static_cast<size_t>(n_pixels) * 3);
    if (!WebPDecodeRGBInto(bytes.data(), bytes.size(), out.rgb.pixels.data(), out.rgb.pixels.size(),
                           static_cast<int>(header.width * 3))) {
      throw InvalidInput(failure);
    }
    return out;
  }
  // RGBA into our own buffer, composited onto white in place (pixel i's RGB goes to bytes 3i..3i+2, at or before
  // its RGBA at 4i), so no alpha plane or second buffer is needed. The fourth byte a pixel stays allocated until the
  // image is freed.
  std::vector<uint8_t>& rgba = out.rgb.pixels;
  rgba.resize(static_cast<size_t>(n_pixels) * 4);
  if (!WebPDecodeRGBAInto(bytes.data(), bytes.size(), rgba.data(), rgba.size(), static_cast<int>(header.width * 4))) {
    throw InvalidInput(failure);
  }
  uint8_t* p = rgba.data();
  for (int64_t i = 0; i < n_pixels; ++i) composite_pixel_on_white(p + 4 * i, p[4 * i + 3], p + 3 * i);
  rgba.resize(static_cast<size_t>(n_pixels) * 3);
  return out;
}

}  // namespace oe::media::detail
