// Image headers read by hand: the format from the magic bytes, the size (so that a decompression bomb is refused
// before any decoder allocates), and the facts that decide Pillow's mode. Every read is bounds-checked.
#include <webp/decode.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "media/image_internal.h"

namespace oe::media::detail {

namespace {

constexpr uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

[[noreturn]] void malformed(ImageFormat format, const std::string& what) {
  throw InvalidInput(fmt::format("malformed {} header: {}", format_name(format), what));
}

// PNG: the IHDR chunk must come first. Pillow's modes (PngImagePlugin _MODES) make colour type 6 (RGBA, 8 or 16
// bits) and 16-bit grey+alpha (type 4, read as "LA;16B" into an RGBA image) the only RGBA cases.
ImageHeader png_header(const ByteReader& r) {
  if (r.u32(8) != 13u || !r.matches(12, "IHDR") || !r.has(16, 13)) malformed(ImageFormat::Png, "no IHDR chunk");
  ImageHeader h;
  h.format = ImageFormat::Png;
  h.width = *r.u32(16);
  h.height = *r.u32(20);
  const uint32_t depth = *r.u8(24), colour_type = *r.u8(25);
  h.pillow_rgba = colour_type == 6 || (colour_type == 4 && depth == 16);
  // FFmpeg's frame: the samples of each pixel at 8 or 16 bits (palette and grey under 8 bits: one byte).
  const int samples = colour_type == 2 ? 3 : colour_type == 4 ? 2 : colour_type == 6 ? 4 : 1;
  h.decoder_bytes_per_pixel = samples * (depth == 16 ? 2 : 1);
  return h;
}

bool is_jpeg_frame_marker(uint32_t code) {
  return code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC;
}

bool is_progressive_frame(uint32_t code) { return code == 0xC2 || code == 0xC6 || code == 0xCA || code == 0xCE; }

// libjpeg's memory beside our output: a progressive image, or one whose first scan does not hold every component,
// is decoded through whole-image coefficient buffers, 2 bytes per sample of each component at its sampling.
// `sampling` holds each component's h·v factors; `first_scan_components` is 0 when the scan header was not reached.
double jpeg_coefficient_bytes_per_pixel(bool progressive, const std::vector<uint32_t>& sampling,
                                        uint32_t first_scan_components) {
  const bool multi_scan =
      progressive || (first_scan_components != 0 && first_scan_components < sampling.size());
  if (!multi_scan || sampling.empty()) return 0;
  const uint32_t max_hv = *std::max_element(sampling.begin(), sampling.end());
  double samples = 0;
  for (uint32_t hv : sampling) samples += static_cast<double>(hv) / std::max(max_hv, 1u);
  return 2 * samples;
}

// JPEG: walks the marker segments up to the first frame header (SOF0..SOF15), then to the first scan header.
ImageHeader jpeg_header(const ByteReader& r) {
  size_t pos = 2;
  std::optional<ImageHeader> frame;
  bool progressive = false;
  std::vector<uint32_t> sampling;  // per component: h·v
  // The frame header without a scan header after it: libjpeg will say what is wrong; memory as for one scan.
  const auto finish = [&](uint32_t first_scan_components) {
    ImageHeader h = *frame;
    h.output_bytes_per_pixel = std::max<int>(3, static_cast<int>(sampling.size()));
    h.decoder_bytes_per_pixel = jpeg_coefficient_bytes_per_pixel(progressive, sampling, first_scan_components);
    return h;
  };
  for (;;) {
    // libjpeg skips stray bytes before a marker (with a warning); so do we.
    while (r.u8(pos) && *r.u8(pos) != 0xFF) ++pos;
    while (r.u8(pos) == 0xFFu) ++pos;
    const auto code = r.u8(pos++);
    if (!code) {
      if (frame) return finish(0);
      malformed(ImageFormat::Jpeg, "the data ends before the frame header (SOF)");
    }
    if (*code == 0xD8 || *code == 0x01 || (*code >= 0xD0 && *code <= 0xD7)) continue;  // markers without length
    if (frame && *code == 0xDA) return finish(r.u8(pos + 2).value_or(0));
    if (frame && *code == 0xD9) return finish(0);
    if (*code == 0xD9 || *code == 0xDA) malformed(ImageFormat::Jpeg, "no frame header (SOF) before the scan");
    const auto length = r.u16(pos);
    if (!length || *length < 2) {
      if (frame) return finish(0);
      malformed(ImageFormat::Jpeg, "truncated marker segment");
    }
    if (!frame && is_jpeg_frame_marker(*code)) {
      const auto height = r.u16(pos + 3), width = r.u16(pos + 5);
      if (!height || !width) malformed(ImageFormat::Jpeg, "truncated frame header");
      frame.emplace();
      frame->format = ImageFormat::Jpeg;
      frame->width = *width;
      frame->height = *height;
      progressive = is_progressive_frame(*code);
      const uint32_t n = r.u8(pos + 7).value_or(0);
      for (uint32_t i = 0; i < n; ++i) {
        const auto factors = r.u8(pos + 8 + 3 * i + 1);
        if (!factors) break;
        sampling.push_back(std::max(1u, *factors >> 4) * std::max(1u, *factors & 15));
      }
    }
    pos += *length;
  }
}

// Skips GIF data sub-blocks (a length byte, that many bytes, ..., a zero length); returns the offset after them.
size_t skip_gif_sub_blocks(const ByteReader& r, size_t pos) {
  for (;;) {
    const auto length = r.u8(pos);
    if (!length) malformed(ImageFormat::Gif, "the data ends inside a block");
    pos += 1 + *length;
    if (*length == 0) return pos;
  }
}

std::vector<uint8_t> read_gif_palette(const ByteReader& r, size_t pos, uint32_t flags) {
  const size_t n = size_t{2} << (flags & 7);
  const auto table = r.slice(pos, 3 * n);
  if (table.empty()) malformed(ImageFormat::Gif, "truncated colour table");
  return {table.begin(), table.end()};
}

// GIF: the logical screen, then the blocks up to the first image (Pillow GifImagePlugin reads the same ones).
ImageHeader gif_header(const ByteReader& r) {
  ImageHeader h;
  h.format = ImageFormat::Gif;
  const auto flags = r.u8(10);
  if (!flags) malformed(ImageFormat::Gif, "truncated logical screen descriptor");
  h.width = *r.u16(6);
  h.height = *r.u16(8);
  size_t pos = 13;
  std::vector<uint8_t> global;
  bool restore_previous = false;
  if (*flags & 0x80) {
    global = read_gif_palette(r, pos, *flags);
    pos += global.size();
  }
  for (;;) {
    const auto block = r.u8(pos);
    if (!block || *block == 0x3B) malformed(ImageFormat::Gif, "no image in the file");
    if (*block == 0x21) {
      if (r.u8(pos + 1) == 0xF9u && r.u8(pos + 2) == 4u) {
        const uint32_t gce = r.u8(pos + 3).value_or(0);
        if (gce & 1) h.gif.transparent_index = static_cast<int>(r.u8(pos + 6).value_or(0));
        restore_previous = ((gce >> 2) & 7) == 3;
      }
      pos = skip_gif_sub_blocks(r, pos + 2);
    } else if (*block == 0x2C) {
      const auto image_flags = r.u8(pos + 9);
      if (!image_flags) malformed(ImageFormat::Gif, "truncated image descriptor");
      h.gif.left = *r.u16(pos + 1);
      h.gif.top = *r.u16(pos + 3);
      h.gif.width = *r.u16(pos + 5);
      h.gif.height = *r.u16(pos + 7);
      pos += 10;
      if (*image_flags & 0x80) {
        h.gif.palette = read_gif_palette(r, pos, *image_flags);
        pos += h.gif.palette.size();
      } else {
        h.gif.palette = global;
      }
      // Pillow refuses a first image whose data is cut short ("image file is truncated"); FFmpeg would not notice.
      skip_gif_sub_blocks(r, pos + 1);
      // FFmpeg's frame is 4 bytes a pixel; a frame to be restored after display ("restore to previous") is also
      // kept as a copy.
      h.decoder_bytes_per_pixel = restore_previous ? 8 : 4;
      return h;
    } else {
      malformed(ImageFormat::Gif, fmt::format("unknown block 0x{:02x} at byte {}", *block, pos));
    }
  }
}

// BMP: Pillow (BmpImagePlugin) opens only 32-bit BITFIELDS files with an alpha mask, and a 64/108/124-byte header
// that can hold it, as RGBA. A plain 32-bit BI_RGB file is "RGB" (its fourth byte is ignored).
ImageHeader bmp_header(const ByteReader& r) {
  ImageHeader h;
  h.format = ImageFormat::Bmp;
  const auto header_size = r.u32(14);
  if (!header_size) malformed(ImageFormat::Bmp, "truncated file header");
  // FFmpeg's frame: a byte per pixel up to 8 bits (palette), else the pixel's bytes; 64-bit pixels are 8.
  const auto frame_bytes = [](uint32_t bits) { return bits <= 8 ? 1.0 : std::ceil(bits / 8.0); };
  if (*header_size == 12) {
    if (!r.u16(24)) malformed(ImageFormat::Bmp, "truncated core header");
    h.width = *r.u16(18);
    h.height = *r.u16(20);
    h.decoder_bytes_per_pixel = frame_bytes(*r.u16(24));
    return h;
  }
  if (*header_size < 40 || !r.has(14, *header_size)) malformed(ImageFormat::Bmp, "truncated info header");
  h.width = static_cast<int32_t>(*r.u32(18));
  const int64_t height = static_cast<int32_t>(*r.u32(22));
  h.height = height < 0 ? -height : height;  // negative: rows stored top-down
  const uint32_t bits = *r.u16(28), compression = *r.u32(30);
  h.decoder_bytes_per_pixel = frame_bytes(bits);
  const bool alpha_header = *header_size == 64 || *header_size == 108 || *header_size == 124;
  if (bits == 32 && compression == 3 && alpha_header) {
    const uint32_t red = *r.u32(54), green = *r.u32(58), blue = *r.u32(62), alpha = *r.u32(66);
    h.pillow_rgba = (red == 0xFF0000 && green == 0xFF00 && blue == 0xFF && alpha == 0xFF000000u) ||
                    (red == 0xFF && green == 0xFF00 && blue == 0xFF0000 && alpha == 0xFF000000u) ||
                    (red == 0xFF000000u && green == 0xFF0000 && blue == 0xFF00 && alpha == 0xFF) ||
                    (red == 0 && green == 0 && blue == 0 && alpha == 0);
  }
  return h;
}

// TIFF: Pillow (TiffImagePlugin OPEN_INFO) opens 8-bit RGB with 4 samples as RGBA unless ExtraSamples says 0
// (unspecified, mode RGBX); ExtraSamples = 1 (associated alpha) is read as "RGBa" and unpremultiplied.
ImageHeader tiff_header(std::span<const uint8_t> bytes) {
  const auto ifd = TiffIfd::parse(bytes);
  if (!ifd) malformed(ImageFormat::Tiff, "the first IFD is missing or cut off");
  const auto width = ifd->first_value(256), height = ifd->first_value(257);
  if (!width || !height) malformed(ImageFormat::Tiff, "no ImageWidth/ImageLength tags");
  ImageHeader h;
  h.format = ImageFormat::Tiff;
  h.width = *width;
  h.height = *height;
  const auto extra = ifd->first_value(338);
  h.pillow_rgba = ifd->first_value(262) == 2u && ifd->first_value(277) == 4u &&
                  ifd->first_value(258).value_or(1) == 8 && extra.value_or(2) != 0;
  h.premultiplied_alpha = h.pillow_rgba && extra == 1u;
  // FFmpeg's frame: the samples at their depth (at least a byte a pixel). Deflate strips are inflated into a buffer
  // of their own first (a strip may be the whole image). A layout FFmpeg does not give as packed RGB or grey (YCbCr,
  // CMYK, separate planes) is converted by libswscale into a second, 4-byte frame.
  const uint32_t bits = ifd->first_value(258).value_or(1), samples = ifd->first_value(277).value_or(1);
  const double row_bytes = std::ceil(static_cast<double>(h.width) * bits * samples / 8.0);
  h.decoder_bytes_per_pixel = std::max(1.0, row_bytes / static_cast<double>(h.width));
  const uint32_t compression = ifd->first_value(259).value_or(1), photometric = ifd->first_value(262).value_or(1);
  if (compression == 8 || compression == 32946) {
    const int64_t strip_rows = std::min<int64_t>(h.height, ifd->first_value(278).value_or(UINT32_MAX));
    h.decoder_extra_bytes = static_cast<int64_t>(row_bytes) * strip_rows;
  }
  if (photometric > 3 || ifd->first_value(284).value_or(1) == 2) h.decoder_bytes_per_pixel += 4;
  return h;
}

// WebP: libwebp parses the RIFF/VP8/VP8L/VP8X headers without decoding. Pillow's mode is RGBA exactly when the
// bitstream features say the image has alpha.
ImageHeader webp_header(std::span<const uint8_t> bytes) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) malformed(ImageFormat::WebP, fmt::format("libwebp status {}", int(status)));
  if (features.has_animation) throw Unsupported("animated WebP is not supported (only still images)");
  ImageHeader h;
  h.format = ImageFormat::WebP;
  h.width = features.width;
  h.height = features.height;
  h.pillow_rgba = features.has_alpha != 0;
  h.output_bytes_per_pixel = h.pillow_rgba ? 4 : 3;  // RGBA is decoded as such, then composited in place
  // libwebp decodes a lossless bitstream into an ARGB plane of its own (4 bytes a pixel) before writing ours; a
  // lossy one with alpha holds the alpha plane and its filtering rows.
  h.decoder_bytes_per_pixel = features.format == 2 ? 4 : h.pillow_rgba ? 2 : 0;
  return h;
}

}  // namespace

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::WebP: return "WebP";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Gif: return "GIF";
  }
  return "?";
}

std::optional<ImageFormat> detect_format(std::span<const uint8_t> bytes) {
  const ByteReader r(bytes);
  if (r.has(0, 8) && std::equal(PNG_SIGNATURE, PNG_SIGNATURE + 8, bytes.begin())) return ImageFormat::Png;
  if (r.u8(0) == 0xFFu && r.u8(1) == 0xD8u && r.u8(2) == 0xFFu) return ImageFormat::Jpeg;
  if (r.matches(0, "GIF87a") || r.matches(0, "GIF89a")) return ImageFormat::Gif;
  if (r.matches(0, "RIFF") && r.matches(8, "WEBP")) return ImageFormat::WebP;
  if (r.matches(0, "II") && r.u8(2) == 42u && r.u8(3) == 0u) return ImageFormat::Tiff;
  if (r.matches(0, "MM") && r.u8(2) == 0u && r.u8(3) == 42u) return ImageFormat::Tiff;
  if (r.matches(0, "BM")) return ImageFormat::Bmp;
  return std::nullopt;
}

ImageHeader read_header(std::span<const uint8_t> bytes, ImageFormat format) {
  ImageHeader h;
  const ByteReader r(bytes, /*little_endian=*/format == ImageFormat::Gif || format == ImageFormat::Bmp);
  switch (format) {
    case ImageFormat::Png: h = png_header(r); break;
    case ImageFormat::Jpeg: h = jpeg_header(r); break;
    case ImageFormat::Gif: h = gif_header(r); break;
    case ImageFormat::Bmp: h = bmp_header(r); break;
    case ImageFormat::Tiff: h = tiff_header(bytes); break;
    case ImageFormat::WebP: h = webp_header(bytes); break;
  }
  if (h.width <= 0 || h.height <= 0) {
    malformed(format, fmt::format("the image size is {}x{}", h.width, h.height));
  }
  return h;
}

std::optional<TiffIfd> TiffIfd::parse(std::span<const uint8_t> tiff) {
  const ByteReader probe(tiff);
  bool little_endian = false;
  if (probe.matches(0, "II")) {
    little_endian = true;
  } else if (!probe.matches(0, "MM")) {
    return std::nullopt;
  }
  TiffIfd ifd;
  ifd.reader_ = ByteReader(tiff, little_endian);
  const ByteReader& r = ifd.reader_;
  const auto offset = r.u32(4);
  if (r.u16(2) != 42u || !offset) return std::nullopt;
  const auto count = r.u16(*offset);
  if (!count) return std::nullopt;
  for (uint32_t i = 0; i < *count; ++i) {
    const size_t at = *offset + 2 + size_t{12} * i;
    if (!r.has(at, 12)) return std::nullopt;
    ifd.entries_.push_back({static_cast<uint16_t>(*r.u16(at)), static_cast<uint16_t>(*r.u16(at + 2)),
                            *r.u32(at + 4), at + 8});
  }
  return ifd;
}

std::optional<uint32_t> TiffIfd::first_value(uint16_t tag) const {
  for (const Entry& e : entries_) {
    if (e.tag != tag || e.count == 0) continue;
    const size_t type_size = e.type == 1 ? 1 : e.type == 3 ? 2 : e.type == 4 ? 4 : 0;
    if (type_size == 0) return std::nullopt;
    size_t at = e.value_offset;
    if (type_size * e.count > 4) {  // the values do not fit in the entry: it holds their offset
      const auto offset = reader_.u32(e.value_offset);
      if (!offset) return std::nullopt;
      at = *offset;
    }
    return type_size == 1 ? reader_.u8(at) : type_size == 2 ? reader_.u16(at) : reader_.u32(at);
  }
  return std::nullopt;
}

}  // namespace oe::media::detail
