// Fuzz target: an image file's bytes. First the hand-written readers alone (format detection, the header of each
// format, the EXIF orientation of JPEG, PNG, WebP and TIFF, media/image_internal.h), then media::decode_image, which
// decodes the pixels through libjpeg-turbo, libwebp or FFmpeg and applies Pillow's mode rules and the orientation.
// The pixel limit is small (128 × 128) so that every input decodes fast; the header check refuses larger ones.
#include <cstdint>
#include <span>

#include "fuzz_util.h"
#include "media/image.h"
#include "media/image_internal.h"

namespace {

namespace detail = oe::media::detail;
constexpr const char* NAME = "fuzz-image";
constexpr int64_t MAX_PIXELS = 128 * 128;

void read_header_and_exif(std::span<const uint8_t> bytes) {
  const auto format = detail::detect_format(bytes);
  if (!format) return;
  (void)detail::format_name(*format);
  const int orientation = detail::exif_orientation(bytes, *format);
  if (orientation < 1 || orientation > 8) oe::fuzz::finding("exif_orientation", "outside 1..8");
  oe::fuzz::expect_clean([&] {
    const detail::ImageHeader h = detail::read_header(bytes, *format);
    if (h.width <= 0 || h.height <= 0) oe::fuzz::finding("read_header", "a side is not positive");
  });
}

void decode(std::span<const uint8_t> bytes, bool apply_exif_orientation) {
  oe::media::ImageDecodeOptions options;
  options.max_decoded_pixels = MAX_PIXELS;
  options.apply_exif_orientation = apply_exif_orientation;
  oe::fuzz::expect_clean(
      [&] {
        const oe::media::RgbImage image = oe::media::decode_image(bytes, NAME, options);
        if (image.width <= 0 || image.height <= 0 || image.width * image.height > MAX_PIXELS ||
            image.pixels.size() != static_cast<size_t>(image.width * image.height * 3)) {
          oe::fuzz::finding("decode_image", "the image's size and its pixels disagree or pass the limit");
        }
      },
      NAME);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  read_header_and_exif(bytes);
  // The orientation changes only the last step; the bit of the input's size picks it so both paths are covered
  // without decoding twice.
  decode(bytes, size % 2 == 1);
  return 0;
}
