// decode_image: the file's bytes -> the RGB pixels of the reference (spec §6.1.1): PIL.Image.open, then RGBA pasted
// onto white with its alpha as the mask, any other mode through convert("RGB").
#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "io/read.h"
#include "media/image_internal.h"

namespace oe::media {

namespace detail {

namespace {

// Pillow's DIV255 rounding of a 16-bit product (ImagingUtils.h): exact for the blend's range.
inline uint8_t div255(uint32_t t) { return static_cast<uint8_t>((t + (t >> 8)) >> 8); }

}  // namespace

void composite_pixel_on_white(const uint8_t* rgb, uint8_t alpha, uint8_t* out) {
  const uint32_t a = alpha;
  const uint32_t v[3] = {rgb[0], rgb[1], rgb[2]};  // read before any write: `out` may overlap `rgb`
  for (int c = 0; c < 3; ++c) out[c] = div255(255 * (255 - a) + v[c] * a + 128);
}

RgbImage composite_on_white(DecodedImage image) {
  if (image.alpha.empty()) return std::move(image.rgb);
  uint8_t* p = image.rgb.pixels.data();
  const size_t n = image.alpha.size();
  for (size_t i = 0; i < n; ++i) composite_pixel_on_white(p + 3 * i, image.alpha[i], p + 3 * i);
  return std::move(image.rgb);
}

void unpremultiply(DecodedImage& image) {
  uint8_t* p = image.rgb.pixels.data();
  for (size_t i = 0; i < image.alpha.size(); ++i) {
    const uint32_t a = image.alpha[i];
    for (int c = 0; c < 3; ++c) {
      p[3 * i + c] = a == 0 ? 0 : static_cast<uint8_t>(std::min(p[3 * i + c] * 255u / a, 255u));
    }
  }
}

void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int64_t n_pixels) {
  for (int64_t i = 0; i < n_pixels; ++i, cmyk += 4, rgb += 3) {
    const int nk = 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int v = nk - div255(static_cast<uint32_t>(cmyk[c] * nk + 128));
      rgb[c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

uint64_t decode_memory(const ImageHeader& header, uint64_t file_bytes, bool copies_file, bool frees_file,
                       bool rotated) {
  const double pixels = static_cast<double>(header.width) * static_cast<double>(header.height);
  const double decoder = header.decoder_bytes_per_pixel * pixels + static_cast<double>(header.decoder_extra_bytes);
  const double file = static_cast<double>(file_bytes);
  double output = header.output_bytes_per_pixel * pixels;
  double peak = 0;
  if (header.format == ImageFormat::Jpeg || header.format == ImageFormat::WebP) {
    // libjpeg and libwebp read the file in place and write into our output while they decode.
    peak = file + decoder + output;
  } else {
    // FFmpeg decodes the whole frame, which is then converted into our output (with the alpha plane that is
    // composited later); the file is gone by then when the caller let it be freed.
    const bool keeps_alpha = header.pillow_rgba || header.format == ImageFormat::Gif;
    output += keeps_alpha ? pixels : 0;
    const double while_decoding = file * (copies_file ? 2 : 1);
    const double while_converting = output + (frees_file ? 0 : file * (copies_file ? 2 : 1));
    peak = decoder + std::max(while_decoding, while_converting);
  }
  // Turning the image makes a copy of the RGB pixels beside the output buffer.
  if (rotated) peak = std::max(peak, header.output_bytes_per_pixel * pixels + 3 * pixels);
  return static_cast<uint64_t>(std::ceil(peak));
}

}  // namespace detail

namespace {

using detail::ImageFormat;

std::string mib(uint64_t bytes) { return fmt::format("{:.0f} MiB", std::ceil(bytes / double(1 << 20))); }

// Decompression-bomb guard: the size comes from the header, before any decoder allocates pixel memory.
void refuse_bomb(const detail::ImageHeader& header, ImageFormat format, const ImageDecodeOptions& options) {
  if (header.width > options.max_decoded_pixels / header.height) {
    throw InvalidInput(fmt::format(
        "{} image of {}x{} = {} pixels is over the limit of {} pixels (ImageDecodeOptions::max_decoded_pixels); "
        "refusing to decode it (possible decompression bomb)",
        detail::format_name(format), header.width, header.height,
        static_cast<uint64_t>(header.width) * static_cast<uint64_t>(header.height),  // sides < 2^32: no overflow
        options.max_decoded_pixels));
  }
}

// Memory guard: what decoding this header's image takes, before any decoder allocates (a 16-bit RGBA PNG within the
// pixel limit would otherwise hold 8 bytes a pixel in FFmpeg's frame beside our 4).
void refuse_memory(const detail::ImageHeader& header, ImageFormat format, uint64_t file_bytes, bool copies_file,
                   bool frees_file, bool rotated, const ImageDecodeOptions& options) {
  const uint64_t memory = detail::decode_memory(header, file_bytes, copies_file, frees_file, rotated);
  if (memory > static_cast<uint64_t>(options.max_decode_bytes)) {
    throw InvalidInput(fmt::format(
        "decoding this {}x{} {} image takes about {} of memory, over the limit of {} "
        "(ImageDecodeOptions::max_decode_bytes, --max-image-decode-bytes); refusing to decode it",
        header.width, header.height, detail::format_name(format), mib(memory),
        mib(static_cast<uint64_t>(options.max_decode_bytes))));
  }
}

// The first bytes of a large file, where its header usually is: an image that its header already refuses is refused
// from them, so that a refused file of 200 MB is not read whole first. Anything else (a header past these bytes, a
// TIFF whose directory is at the end, a file this cannot read) is left to the whole-file path, which checks
// everything again; the checks here can only refuse what that path refuses (the same header, the file's size, no
// rotation counted).
constexpr size_t HEAD_BYTES = size_t{1} << 20;

void refuse_from_head(const std::filesystem::path& path, const ImageDecodeOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size <= 4 * HEAD_BYTES || size > static_cast<uintmax_t>(options.max_file_bytes)) return;
  std::vector<uint8_t> head(HEAD_BYTES);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()))) return;
  const auto format = detail::detect_format(head);
  if (!format) return;
  detail::ImageHeader header;
  try {
    header = detail::read_header(head, *format);
  } catch (const Error&) {
    return;  // not all of the header is in the first bytes
  }
  refuse_bomb(header, *format, options);
  refuse_memory(header, *format, size, /*copies_file=*/false, /*frees_file=*/true, /*rotated=*/false, options);
}

// Everything after the file has been read; errors are InvalidInput/Unsupported without the file name (the caller
// adds it). `file`, when not null, is the storage of `bytes` with FFmpeg's padding after them (decode_image from a
// path), which FFmpeg reads in place and frees once it has decoded the frame.
RgbImage decode_bytes(std::span<const uint8_t> bytes, const ImageDecodeOptions& options, std::string* file) {
  if (bytes.empty()) throw InvalidInput("empty file (0 bytes), expected an image");
  const auto format = detail::detect_format(bytes);
  if (!format) {
    throw InvalidInput(
        "not an image in a supported format (PNG, JPEG, WebP, BMP, TIFF, GIF): the first bytes match none of them");
  }
  const detail::ImageHeader header = detail::read_header(bytes, *format);
  refuse_bomb(header, *format, options);
  // Pillow 9.4 turns a TIFF by its own Orientation tag when it loads the pixels (TiffImagePlugin.load_end), so the
  // reference's TIFF pixels are upright whatever the option says; other formats only with the option. (Pillow's
  // exif_transpose would turn a TIFF a second time; the option gives the upright image.) Read before decoding: the
  // file may be freed by then.
  const int orientation = options.apply_exif_orientation || *format == ImageFormat::Tiff
                              ? detail::exif_orientation(bytes, *format)
                              : 1;
  refuse_memory(header, *format, bytes.size(), /*copies_file=*/file == nullptr, /*frees_file=*/file != nullptr,
                orientation > 1, options);
  if (*format == ImageFormat::Png) detail::check_png_chunks(bytes);
  detail::DecodedImage decoded;
  switch (*format) {
    case ImageFormat::Jpeg: decoded = detail::decode_jpeg(bytes, header); break;
    case ImageFormat::WebP: decoded = detail::decode_webp(bytes, header); break;
    default: decoded = detail::decode_ffmpeg(bytes, header, options.max_decoded_pixels, file); break;
  }
  OE_CHECK(decoded.rgb.width * decoded.rgb.height * 3 == static_cast<int64_t>(decoded.rgb.pixels.size()));
  if (header.premultiplied_alpha) detail::unpremultiply(decoded);
  RgbImage rgb = detail::composite_on_white(std::move(decoded));
  if (orientation > 1) rgb = detail::apply_orientation(rgb, orientation);
  return rgb;
}

void check_options(const ImageDecodeOptions& options) {
  if (options.max_decoded_pixels <= 0) {
    throw InvalidInput(fmt::format("max_decoded_pixels must be positive, got {}", options.max_decoded_pixels));
  }
  if (options.max_decode_bytes <= 0) {
    throw InvalidInput(fmt::format("max_decode_bytes must be positive, got {}", options.max_decode_bytes));
  }
}

}  // namespace

RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name, const ImageDecodeOptions& options) {
  check_options(options);
  return with_context(name, [&] { return decode_bytes(bytes, options, nullptr); });
}

RgbImage decode_image(const std::filesystem::path& path, const ImageDecodeOptions& options) {
  check_options(options);
  with_context(path.string(), [&] { refuse_from_head(path, options); });
  // A regular file within the cap (IoError naming the path when it is not one or cannot be read), with the padding
  // FFmpeg's decoders need after their input, so that they read it in place.
  std::string file = io::read_file_padded(
      path, io::ReadCap{static_cast<uint64_t>(options.max_file_bytes), "image file", "--max-image-bytes"},
      detail::FFMPEG_INPUT_PADDING);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(file.data()),
                                       file.size() - detail::FFMPEG_INPUT_PADDING);
  return with_context(path.string(), [&] { return decode_bytes(bytes, options, &file); });
}

}  // namespace oe::media
