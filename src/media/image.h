// Still images: decoding into 8-bit RGB (the pixels Pillow's Image.open(...).convert("RGB") gives, with RGBA
// composited onto white as qwen-omni-utils does), and the Qwen2.5-Omni image preprocessing of spec
// qwen25-omni-thinker.md §6.1: smart_resize, Pillow-exact bicubic resize, CLIP normalisation, patchify.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace oe::media {

// Interleaved 8-bit RGB, row-major [height, width, 3].
struct RgbImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;
};

struct ImageDecodeOptions {
  // EXIF orientation is not applied by default, as the reference (PIL.Image.open) does not apply it. Exception, as
  // in the reference: a TIFF's own Orientation tag is always applied (Pillow does so when it loads a TIFF).
  bool apply_exif_orientation = false;
  // Images with more pixels than this are refused from their header, before any pixel buffer is allocated
  // (decompression-bomb guard). The default is Pillow's error threshold, 2 · 89,478,485.
  int64_t max_decoded_pixels = 2 * 89'478'485LL;
  // Image files larger than this are refused from their size, before they are read (--max-image-bytes).
  int64_t max_file_bytes = int64_t{256} << 20;
  // Images whose decoding would hold more memory than this (the file, the decoding library's buffers and the RGB
  // output, estimated from the header) are refused before any decoder runs (--max-image-decode-bytes). With the
  // default, decoding any image stays within 384 MiB: a 16-bit RGBA PNG of 33 megapixels or an 8-bit RGB one of
  // 67 megapixels passes, larger ones need the limit raised.
  int64_t max_decode_bytes = int64_t{384} << 20;
};

// Decodes the image file at `path` (PNG, JPEG incl. progressive and CMYK, WebP, BMP, TIFF, GIF first frame; 8 or
// 16 bits; grey, palette, alpha). Throws InvalidInput naming the file for unreadable, truncated, unknown or
// over-limit input; IoError when the file cannot be opened; Unsupported (also naming the file) for a valid file
// that uses a feature this decoder lacks (animated WebP, a JPEG with 2 components).
RgbImage decode_image(const std::filesystem::path& path, const ImageDecodeOptions& options = {});
// Same from bytes in memory; `name` is used in error messages.
RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name, const ImageDecodeOptions& options = {});

// smart_resize (spec §6.1.2): the (height, width) the reference resizes to, multiples of `factor`. Python's
// round-half-to-even; throws InvalidInput when max(h, w) / min(h, w) > 200 or a side is not positive.
struct ResizedSize {
  int64_t height = 0;
  int64_t width = 0;
};
ResizedSize smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels, int64_t max_pixels);
// The same with fractional limits (qwen-omni-utils' per-frame video budget, total_pixels / n · 2, is a Python float).
ResizedSize smart_resize_fractional(int64_t height, int64_t width, int64_t factor, double min_pixels,
                                    double max_pixels);

// Pillow's Image.resize((width, height), Image.BICUBIC) on 8-bit RGB, bit for bit (separable passes, a = -0.5,
// support scaled when downsampling, fixed-point coefficients, uint8 rounding between passes). Returns a copy
// when the size is unchanged.
RgbImage resize_bicubic(const RgbImage& image, int64_t width, int64_t height);
// The same, freeing `image`'s pixels as soon as they have been read (before the vertical pass allocates its output),
// so that a large decoded image and its resized copy are not held together. `image` is left empty.
RgbImage resize_bicubic(RgbImage&& image, int64_t width, int64_t height);

// The checks both bicubic resizes make: InvalidInput for a non-positive target size, an internal error for an
// image whose pixel buffer does not match its size.
void check_resize_arguments(const RgbImage& image, int64_t width, int64_t height);

// The image processor's settings (preprocessor_config.json of the checkpoint; the defaults are the reference's).
struct VisionPreprocessConfig {
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t merge_size = 2;
  int64_t min_pixels = 3136;
  int64_t max_pixels = 12'845'056;
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
  int64_t factor() const { return patch_size * merge_size; }
};
// InvalidInput for settings no image could be processed with (min_pixels above max_pixels, a std that is not
// positive).
void validate(const VisionPreprocessConfig& config);

// Patchified, normalised pixels of one image or video: rows of length C·temporal_patch·patch·patch (1176), one per
// patch, in the reference's order (spec §6.1.3 step 4 / §4.2); grid in patch units.
struct PixelPatches {
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;
  int64_t row_len = 0;
  std::vector<float> values;  // [grid_t·grid_h·grid_w, row_len]
  int64_t n_rows() const { return grid_t * grid_h * grid_w; }
};

// Normalise ((x/255 - mean)/std in fp32) and patchify frames of identical size (height and width multiples of
// patch·merge). A frame count that is not a multiple of temporal_patch_size is padded by repeating the last frame
// (an image is one frame, so it becomes 2 identical frames, grid_t = 1).
PixelPatches patchify(std::span<const RgbImage* const> frames, const VisionPreprocessConfig& config);

// The whole image path: smart_resize with config's limits, resize_bicubic, patchify.
PixelPatches preprocess_image(const RgbImage& image, const VisionPreprocessConfig& config);
// The same, consuming the decoded image: its pixels are freed once resized, before the patches are allocated.
PixelPatches preprocess_image(RgbImage&& image, const VisionPreprocessConfig& config);

}  // namespace oe::media
