// Internals of the image decoder, shared by its files (not part of the public interface).
//
// Decoding runs in three steps: the header is read by hand (format from the magic bytes, the size for the
// decompression-bomb guard, and the facts that decide what Pillow would do: the mode it opens the file as, the GIF
// frame layout); one library decodes the pixels (libjpeg-turbo, libwebp or FFmpeg); the pixels are then brought to
// what `Image.open(...)` followed by the qwen-omni-utils RGB conversion gives.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "media/image.h"

namespace oe::media::detail {

enum class ImageFormat { Png, Jpeg, WebP, Bmp, Tiff, Gif };

const char* format_name(ImageFormat format);

// The format named by the first bytes, or nullopt for anything else.
std::optional<ImageFormat> detect_format(std::span<const uint8_t> bytes);

// The first frame of a GIF as Pillow sees it. Pillow keeps palette indices (mode "P"): pixels outside the frame
// rectangle hold the transparent index when there is one and index 0 otherwise, and transparent pixels keep their
// index, so both show a palette colour. FFmpeg paints a background colour there instead, which decode_ffmpeg undoes.
struct GifFrame {
  int64_t left = 0, top = 0, width = 0, height = 0;
  int transparent_index = -1;
  std::vector<uint8_t> palette;  // RGB triplets of the frame's palette: the local one if present, else the global
};

// What is known before any pixel is decoded.
struct ImageHeader {
  ImageFormat format = ImageFormat::Png;
  int64_t width = 0;
  int64_t height = 0;
  // Pillow opens the file in mode "RGBA", which qwen-omni-utils composites onto white; every other mode (LA, PA,
  // P or RGB with a transparency entry, RGBX, ...) goes through convert("RGB"), which drops the alpha.
  bool pillow_rgba = false;
  // The colour samples are premultiplied by alpha (TIFF ExtraSamples = 1), which Pillow undoes when it reads them
  // (raw mode "RGBa").
  bool premultiplied_alpha = false;
  GifFrame gif;
  // For the decoding-memory guard (decode_memory), from the header's fields: what the decoding library holds while
  // it decodes, in bytes per pixel of the image (its frame, or libjpeg's coefficients and libwebp's ARGB plane)
  // plus bytes that do not scale with the whole image (a TIFF strip it inflates into), and the bytes per pixel of
  // our own output buffer before it becomes RGB (a CMYK JPEG is decoded as 4 samples, then converted in place).
  double decoder_bytes_per_pixel = 0;
  int64_t decoder_extra_bytes = 0;
  int output_bytes_per_pixel = 3;
};

// Reads the header of `bytes` (already identified as `format`). Throws InvalidInput when it is malformed.
ImageHeader read_header(std::span<const uint8_t> bytes, ImageFormat format);

// The most memory decoding the image of `header` holds at once, in bytes: the file (`file_bytes`, and a copy of it
// when `copies_file`: FFmpeg needs padding after its input that a caller's span lacks), the library's buffers, our
// output with its alpha plane, and a turned copy when `rotated`. `frees_file` says the file is freed once FFmpeg
// has decoded the frame (decode_image from a path does so). An estimate from the header, checked against
// ImageDecodeOptions::max_decode_bytes before any decoder runs; bench/image_peak_memory.py measures it.
uint64_t decode_memory(const ImageHeader& header, uint64_t file_bytes, bool copies_file, bool frees_file,
                       bool rotated);

// Pixels straight from a decoder: RGB, plus the alpha plane when the header says Pillow's mode is RGBA.
struct DecodedImage {
  RgbImage rgb;
  std::vector<uint8_t> alpha;  // [height, width], empty when there is nothing to composite
};

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const ImageHeader& header);
DecodedImage decode_webp(std::span<const uint8_t> bytes, const ImageHeader& header);
// Zero bytes FFmpeg's decoders may read past the end of their input (AV_INPUT_BUFFER_PADDING_SIZE, checked where
// FFmpeg's headers are included).
inline constexpr size_t FFMPEG_INPUT_PADDING = 64;

// `file`, when not null, holds `bytes` followed by FFMPEG_INPUT_PADDING zero bytes: FFmpeg then reads them
// in place instead of from a padded copy, and `file` is freed once the frame is decoded, before it is converted.
DecodedImage decode_ffmpeg(std::span<const uint8_t> bytes, const ImageHeader& header, int64_t max_pixels,
                           std::string* file = nullptr);

// The compressed ancillary chunks of a PNG (zTXt, compressed iTXt, iCCP) inflate to at most 1 MiB each and 64 MiB in
// all, as Pillow allows (PngImagePlugin MAX_TEXT_CHUNK, MAX_TEXT_MEMORY): InvalidInput for a chunk that inflates
// further (a metadata decompression bomb, which FFmpeg's PNG decoder would inflate whole). Checked by inflating into
// a small buffer that is thrown away.
void check_png_chunks(std::span<const uint8_t> bytes);

// Pillow's `background.paste(image, mask=alpha)` onto white, with its integer blend (Paste.c / ImagingUtils.h):
// t = 255 * (255 - a) + v * a + 128, result (t + (t >> 8)) >> 8.
RgbImage composite_on_white(DecodedImage image);
// The same for one pixel: `rgb` composited with alpha `a` into `out` (which may be `rgb` or overlap it from below).
void composite_pixel_on_white(const uint8_t* rgb, uint8_t a, uint8_t* out);

// Pillow's "RGBa" unpacking: each colour sample becomes min(255, v * 255 / a) (integer division), 0 where a = 0.
void unpremultiply(DecodedImage& image);

// Pillow's CMYK -> RGB (Convert.c cmyk2rgb): with nk = 255 - k, each channel is nk - MULDIV255(c, nk), where
// MULDIV255(a, b) = (t + (t >> 8)) >> 8 with t = a * b + 128.
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int64_t n_pixels);

// The EXIF orientation tag (1..8) of the file, or 1 when it has none: JPEG APP1 "Exif", PNG eXIf, WebP EXIF chunk,
// TIFF IFD0. Malformed EXIF data is ignored (the image itself decodes regardless).
int exif_orientation(std::span<const uint8_t> bytes, ImageFormat format);

// Applies an EXIF orientation as Pillow's ImageOps.exif_transpose does (2 mirror, 3 rotate 180, 4 flip, 5 transpose,
// 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise).
RgbImage apply_orientation(const RgbImage& image, int orientation);

// Bounds-checked reads of big- and little-endian integers; every read outside the span is nullopt.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes, bool little_endian = false)
      : bytes_(bytes), little_endian_(little_endian) {}
  size_t size() const { return bytes_.size(); }
  bool has(size_t offset, size_t n) const { return offset <= bytes_.size() && n <= bytes_.size() - offset; }
  std::optional<uint32_t> u8(size_t offset) const { return read(offset, 1); }
  std::optional<uint32_t> u16(size_t offset) const { return read(offset, 2); }
  std::optional<uint32_t> u32(size_t offset) const { return read(offset, 4); }
  std::span<const uint8_t> slice(size_t offset, size_t n) const {
    return has(offset, n) ? bytes_.subspan(offset, n) : std::span<const uint8_t>();
  }
  bool matches(size_t offset, std::string_view text) const {
    if (!has(offset, text.size())) return false;
    for (size_t i = 0; i < text.size(); ++i) {
      if (bytes_[offset + i] != static_cast<uint8_t>(text[i])) return false;
    }
    return true;
  }

 private:
  std::optional<uint32_t> read(size_t offset, size_t n) const {
    if (!has(offset, n)) return std::nullopt;
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t byte = bytes_[offset + (little_endian_ ? n - 1 - i : i)];
      v = (v << 8) | byte;
    }
    return v;
  }

  std::span<const uint8_t> bytes_;
  bool little_endian_;
};

// The entries of the first IFD of a TIFF structure (a TIFF file, or the payload of an EXIF block).
class TiffIfd {
 public:
  // nullopt when `tiff` does not start with a valid TIFF header and IFD.
  static std::optional<TiffIfd> parse(std::span<const uint8_t> tiff);
  // The first value of `tag` (SHORT or LONG, inline or at its offset), or nullopt when absent or unreadable.
  std::optional<uint32_t> first_value(uint16_t tag) const;

 private:
  struct Entry {
    uint16_t tag = 0, type = 0;
    uint32_t count = 0;
    size_t value_offset = 0;  // where the value (or the offset of the values) is stored in the structure
  };
  ByteReader reader_{std::span<const uint8_t>()};
  std::vector<Entry> entries_;
};

}  // namespace oe::media::detail
