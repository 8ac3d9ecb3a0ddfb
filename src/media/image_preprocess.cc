// The Qwen2.5-Omni image preprocessing (spec qwen25-omni-thinker.md §6.1.2-6.1.3): smart_resize, the processor
// settings, normalisation and patchify in the reference's order (Qwen2VLImageProcessor._preprocess).
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "media/image.h"

namespace oe::media {

namespace {

constexpr double MAX_ASPECT_RATIO = 200.0;

// Python's round() on a double: half to even (350/28 = 12.5 -> 12), independent of the FPU rounding mode.
double round_half_even(double v) {
  const double lower = std::floor(v);
  const double diff = v - lower;
  if (diff > 0.5) return lower + 1;
  if (diff < 0.5) return lower;
  return std::fmod(lower, 2.0) == 0.0 ? lower : lower + 1;
}


// Validates one frame against the config: patchify needs whole 2x2 blocks of patches.
void check_frame(const RgbImage* frame, const RgbImage& first, int64_t block, size_t index) {
  OE_CHECK(frame != nullptr, "frame {} is null", index);
  if (frame->width != first.width || frame->height != first.height) {
    throw InvalidInput(fmt::format("frame {} is {}x{} but frame 0 is {}x{}: all frames must have one size", index,
                                   frame->width, frame->height, first.width, first.height));
  }
  OE_CHECK(static_cast<int64_t>(frame->pixels.size()) == frame->width * frame->height * 3);
  if (frame->width <= 0 || frame->height <= 0 || frame->width % block != 0 || frame->height % block != 0) {
    throw InvalidInput(fmt::format("frame of {}x{}: width and height must be positive multiples of {} (patch·merge)",
                                   frame->width, frame->height, block));
  }
}

}  // namespace

ResizedSize smart_resize_fractional(int64_t height, int64_t width, int64_t factor, double min_pixels,
                                    double max_pixels) {
  if (height <= 0 || width <= 0) {
    throw InvalidInput(fmt::format("smart_resize: image of {}x{}: both sides must be positive", width, height));
  }
  OE_CHECK(factor > 0 && min_pixels >= 0 && max_pixels > 0, "factor {} min_pixels {} max_pixels {}", factor,
           min_pixels, max_pixels);
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > MAX_ASPECT_RATIO) {
    throw InvalidInput(fmt::format("image of {}x{} has an aspect ratio of {:.1f}, above the limit of {:.0f}", width,
                                   height, ratio, MAX_ASPECT_RATIO));
  }
  const auto f = static_cast<double>(factor);
  const auto h = static_cast<double>(height), w = static_cast<double>(width);
  // qwen-omni-utils clamps each side to at least `factor` (a tiny image would otherwise round to 0). Products of
  // sides stay far below 2^53, so comparing them as doubles is exact.
  auto h_bar = std::max<int64_t>(factor, static_cast<int64_t>(round_half_even(h / f)) * factor);
  auto w_bar = std::max<int64_t>(factor, static_cast<int64_t>(round_half_even(w / f)) * factor);
  if (static_cast<double>(h_bar * w_bar) > max_pixels) {
    const double beta = std::sqrt(h * w / max_pixels);
    h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (static_cast<double>(h_bar * w_bar) < min_pixels) {
    const double beta = std::sqrt(min_pixels / (h * w));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

ResizedSize smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels, int64_t max_pixels) {
  return smart_resize_fractional(height, width, factor, static_cast<double>(min_pixels),
                                 static_cast<double>(max_pixels));
}

void validate(const VisionPreprocessConfig& c) {
  if (c.min_pixels > c.max_pixels)
    throw InvalidInput(fmt::format("min_pixels {} is above max_pixels {}", c.min_pixels, c.max_pixels));
  for (float s : c.std)
    if (!(s > 0.0f)) throw InvalidInput(fmt::format("image_std values must be positive, got {}", s));
}

PixelPatches patchify(std::span<const RgbImage* const> frames, const VisionPreprocessConfig& config) {
  if (frames.empty()) throw InvalidInput("patchify: no frames");
  const int64_t patch = config.patch_size, merge = config.merge_size, temporal = config.temporal_patch_size;
  const RgbImage& first = *frames[0];
  for (size_t i = 0; i < frames.size(); ++i) check_frame(frames[i], first, config.factor(), i);

  // x * (1/255) in double, rounded to float, then (x - mean) / std in float: the processor's rescale (float64
  // multiply, cast to float32) and normalize (float32), as one table per channel.
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const auto x = static_cast<float>(static_cast<double>(v) * (1.0 / 255.0));
      table[c][v] = (x - config.mean[c]) / config.std[c];
    }
  }

  const int64_t n_frames = static_cast<int64_t>(frames.size());
  PixelPatches out;
  out.grid_t = (n_frames + temporal - 1) / temporal;  // the last frame repeated up to a multiple of `temporal`
  out.grid_h = first.height / patch;
  out.grid_w = first.width / patch;
  out.row_len = 3 * temporal * patch * patch;
  out.values.resize(static_cast<size_t>(out.n_rows() * out.row_len));
  float* dst = out.values.data();
  // Rows: (t, block row, block column, row in block, column in block); each row (channel, frame, y, x).
  for (int64_t gt = 0; gt < out.grid_t; ++gt) {
    for (int64_t bi = 0; bi < out.grid_h / merge; ++bi) {
      for (int64_t bj = 0; bj < out.grid_w / merge; ++bj) {
        for (int64_t ii = 0; ii < merge; ++ii) {
          for (int64_t jj = 0; jj < merge; ++jj) {
            const int64_t y0 = (bi * merge + ii) * patch, x0 = (bj * merge + jj) * patch;
            for (int c = 0; c < 3; ++c) {
              for (int64_t t = 0; t < temporal; ++t) {
                const RgbImage& f = *frames[std::min(gt * temporal + t, n_frames - 1)];
                for (int64_t y = 0; y < patch; ++y) {
                  const uint8_t* src = &f.pixels[static_cast<size_t>(((y0 + y) * f.width + x0) * 3 + c)];
                  for (int64_t x = 0; x < patch; ++x) *dst++ = table[c][src[3 * x]];
                }
              }
            }
          }
        }
      }
    }
  }
  return out;
}

PixelPatches preprocess_image(const RgbImage& image, const VisionPreprocessConfig& config) {
  const ResizedSize size =
      smart_resize(image.height, image.width, config.factor(), config.min_pixels, config.max_pixels);
  const RgbImage resized = resize_bicubic(image, size.width, size.height);
  const RgbImage* frames[] = {&resized};
  return patchify(frames, config);
}

PixelPatches preprocess_image(RgbImage&& image, const VisionPreprocessConfig& config) {
  const ResizedSize size =
      smart_resize(image.height, image.width, config.factor(), config.min_pixels, config.max_pixels);
  const RgbImage resized = resize_bicubic(std::move(image), size.width, size.height);
  const RgbImage* frames[] = {&resized};
  return patchify(frames, config);
}

}  // namespace oe::media
