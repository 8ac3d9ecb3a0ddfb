// decode_image: the file's bytes -> the RGB pixels of the reference (spec §6.1.1): PIL.Image.open, then RGBA pasted
// onto white with its alpha as the mask, any other mode through convert("RGB").
#include <algorithm>

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

RgbImage composite_on_white(DecodedImage image) {
  if (image.alpha.empty()) return std::move(image.rgb);
  uint8_t* p = image.rgb.pixels.data();
  const size_t n = image.alpha.size();
  for (size_t i = 0; i < n; ++i) {
    const uint32_t a = image.alpha[i];
    for (int c = 0; c < 3; ++c) p[3 * i + c] = div255(255 * (255 - a) + p[3 * i + c] * a + 128);
  }
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

}  // namespace detail

namespace {

using detail::ImageFormat;

// Everything after the file has been read; errors are InvalidInput/Unsupported without the file name (the caller
// adds it).
RgbImage decode_bytes(std::span<const uint8_t> bytes, const ImageDecodeOptions& options) {
  if (bytes.empty()) throw InvalidInput("empty file (0 bytes), expected an image");
  const auto format = detail::detect_format(bytes);
  if (!format) {
    throw InvalidInput(
        "not an image in a supported format (PNG, JPEG, WebP, BMP, TIFF, GIF): the first bytes match none of them");
  }
  const detail::ImageHeader header = detail::read_header(bytes, *format);
  // Decompression-bomb guard: the size comes from the header, before any decoder allocates pixel memory.
  if (header.width > options.max_decoded_pixels / header.height) {
    throw InvalidInput(fmt::format(
        "{} image of {}x{} = {} pixels is over the limit of {} pixels (ImageDecodeOptions::max_decoded_pixels); "
        "refusing to decode it (possible decompression bomb)",
        detail::format_name(*format), header.width, header.height,
        static_cast<uint64_t>(header.width) * static_cast<uint64_t>(header.height),  // sides < 2^32: no overflow
        options.max_decoded_pixels));
  }
  if (*format == ImageFormat::Png) detail::check_png_chunks(bytes);
  detail::DecodedImage decoded;
  switch (*format) {
    case ImageFormat::Jpeg: decoded = detail::decode_jpeg(bytes, header); break;
    case ImageFormat::WebP: decoded = detail::decode_webp(bytes, header); break;
    default: decoded = detail::decode_ffmpeg(bytes, header, options.max_decoded_pixels); break;
  }
  OE_CHECK(decoded.rgb.width * decoded.rgb.height * 3 == static_cast<int64_t>(decoded.rgb.pixels.size()));
  if (header.premultiplied_alpha) detail::unpremultiply(decoded);
  RgbImage rgb = detail::composite_on_white(std::move(decoded));
  // Pillow 9.4 turns a TIFF by its own Orientation tag when it loads the pixels (TiffImagePlugin.load_end), so the
  // reference's TIFF pixels are upright whatever the option says; other formats only with the option. (Pillow's
  // exif_transpose would turn a TIFF a second time; the option gives the upright image.)
  if (options.apply_exif_orientation || *format == ImageFormat::Tiff) {
    rgb = detail::apply_orientation(rgb, detail::exif_orientation(bytes, *format));
  }
  return rgb;
}

}  // namespace

RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name, const ImageDecodeOptions& options) {
  if (options.max_decoded_pixels <= 0) {
    throw InvalidInput(fmt::format("max_decoded_pixels must be positive, got {}", options.max_decoded_pixels));
  }
  return with_context(name, [&] { return decode_bytes(bytes, options); });
}

RgbImage decode_image(const std::filesystem::path& path, const ImageDecodeOptions& options) {
  // A regular file within the cap (IoError naming the path when it is not one or cannot be read).
  const std::string bytes =
      io::read_file(path, io::ReadCap{static_cast<uint64_t>(options.max_file_bytes), "image file", "--max-image-bytes"});
  return decode_image(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), path.string(),
                      options);
}

}  // namespace oe::media
