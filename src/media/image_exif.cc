// EXIF orientation: finding the tag in the containers Pillow reads it from, and applying it the way
// ImageOps.exif_transpose does. libexif is not a dependency: the EXIF payload is a TIFF structure whose first IFD
// holds the Orientation tag (274), which TiffIfd reads with bounds checks.
#include "media/image_internal.h"

namespace oe::media::detail {

namespace {

constexpr uint16_t ORIENTATION_TAG = 274;

// The orientation in a TIFF structure, optionally preceded by the "Exif\0\0" prefix of JPEG APP1 segments.
int orientation_in_exif(std::span<const uint8_t> exif) {
  if (ByteReader(exif).matches(0, std::string_view("Exif\0\0", 6))) exif = exif.subspan(6);
  const auto ifd = TiffIfd::parse(exif);
  if (!ifd) return 1;
  const auto value = ifd->first_value(ORIENTATION_TAG);
  return value && *value >= 1 && *value <= 8 ? static_cast<int>(*value) : 1;
}

// JPEG: the first APP1 segment that starts with "Exif\0\0", searched up to the first scan.
std::span<const uint8_t> jpeg_exif(std::span<const uint8_t> bytes) {
  const ByteReader r(bytes);
  size_t pos = 2;
  for (;;) {
    if (r.u8(pos) != 0xFFu) return {};
    while (r.u8(pos) == 0xFFu) ++pos;
    const auto code = r.u8(pos++);
    if (!code || *code == 0xDA || *code == 0xD9) return {};
    if (*code == 0x01 || (*code >= 0xD0 && *code <= 0xD8)) continue;
    const auto length = r.u16(pos);
    if (!length || *length < 2) return {};
    const auto payload = r.slice(pos + 2, *length - 2);
    if (*code == 0xE1 && ByteReader(payload).matches(0, std::string_view("Exif\0\0", 6))) return payload;
    pos += *length;
  }
}

// PNG: the eXIf chunk, anywhere in the file (Pillow reads the chunks after the image data as well).
std::span<const uint8_t> png_exif(std::span<const uint8_t> bytes) {
  const ByteReader r(bytes);
  size_t pos = 8;
  while (const auto length = r.u32(pos)) {
    if (r.matches(pos + 4, "IEND")) return {};
    if (r.matches(pos + 4, "eXIf")) return r.slice(pos + 8, *length);
    pos += size_t{12} + *length;
  }
  return {};
}

// WebP: the EXIF chunk of an extended (VP8X) RIFF file; chunks are padded to an even size.
std::span<const uint8_t> webp_exif(std::span<const uint8_t> bytes) {
  const ByteReader r(bytes, /*little_endian=*/true);
  size_t pos = 12;
  while (const auto length = r.u32(pos + 4)) {
    if (r.matches(pos, "EXIF")) return r.slice(pos + 8, *length);
    pos += size_t{8} + *length + (*length & 1);
  }
  return {};
}

}  // namespace

int exif_orientation(std::span<const uint8_t> bytes, ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg: return orientation_in_exif(jpeg_exif(bytes));
    case ImageFormat::Png: return orientation_in_exif(png_exif(bytes));
    case ImageFormat::WebP: return orientation_in_exif(webp_exif(bytes));
    case ImageFormat::Tiff: return orientation_in_exif(bytes);
    case ImageFormat::Bmp:
    case ImageFormat::Gif: return 1;
  }
  return 1;
}

RgbImage apply_orientation(const RgbImage& image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const int64_t w = image.width, h = image.height;
  const bool swaps_axes = orientation >= 5;
  RgbImage out;
  out.width = swaps_axes ? h : w;
  out.height = swaps_axes ? w : h;
  out.pixels.resize(image.pixels.size());
  for (int64_t y = 0; y < out.height; ++y) {
    for (int64_t x = 0; x < out.width; ++x) {
      int64_t sx = x, sy = y;  // the source pixel of output pixel (x, y)
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                       // mirror left-right
        case 3: sx = w - 1 - x, sy = h - 1 - y; break;       // rotate 180
        case 4: sy = h - 1 - y; break;                       // flip top-bottom
        case 5: sx = y, sy = x; break;                       // transpose
        case 6: sx = y, sy = h - 1 - x; break;               // rotate 90 clockwise
        case 7: sx = w - 1 - y, sy = h - 1 - x; break;       // transverse
        case 8: sx = w - 1 - y, sy = x; break;               // rotate 90 counter-clockwise
      }
      const uint8_t* src = &image.pixels[static_cast<size_t>((sy * w + sx) * 3)];
      uint8_t* dst = &out.pixels[static_cast<size_t>((y * out.width + x) * 3)];
      dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
    }
  }
  return out;
}

}  // namespace oe::media::detail
