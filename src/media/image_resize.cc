// Pillow's Image.resize(size, BICUBIC) for 8-bit RGB, bit for bit (libImaging/Resample.c, ImagingResample):
//  - separable: a horizontal pass (only over the source rows the vertical pass reads), then a vertical pass; a pass
//    is skipped when its size is unchanged, and an unchanged size is a copy;
//  - per output index, in double precision: scale = in/out, filterscale = max(scale, 1), support = 2·filterscale,
//    center = (i + 0.5)·scale, the taps from (int)(center - support + 0.5) to (int)(center + support + 0.5) clipped to
//    the image, weights bicubic((j - center + 0.5) / filterscale) with a = -0.5, normalised by their sum;
//  - weights to fixed point with 22 fraction bits (32 - 8 - 2), rounded half away from zero; each output sample is
//    (2^21 + Σ sample·weight) >> 22 clipped to 0..255, so the intermediate image is rounded to uint8.
// The target compiles this file with -ffp-contract=off: a fused multiply-add would change the double weights.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "media/image.h"

namespace oe::media {

namespace {

constexpr int PRECISION_BITS = 32 - 8 - 2;
constexpr double BICUBIC_SUPPORT = 2.0;

// Keys' cubic convolution kernel with a = -0.5, written in the reference's evaluation order.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// The taps of one axis: for output index i, `count[i]` source samples from `first[i]`, with fixed-point weights
// `weights[i * ksize + j]`.
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

int32_t to_fixed_point(double w) {
  const double scaled = w * (1 << PRECISION_BITS);
  return static_cast<int32_t>(w < 0 ? -0.5 + scaled : 0.5 + scaled);
}

Taps compute_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = BICUBIC_SUPPORT * filterscale;
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> w(static_cast<size_t>(t.ksize));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(center + support + 0.5));
    const int64_t n = hi - lo;
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = bicubic((static_cast<double>(j + lo) - center + 0.5) * (1.0 / filterscale));
      sum += w[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      t.weights[i * t.ksize + j] = to_fixed_point(sum != 0.0 ? w[j] / sum : w[j]);
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

inline uint8_t clip_fixed_point(int64_t acc) {
  return static_cast<uint8_t>(std::clamp<int64_t>(acc >> PRECISION_BITS, 0, 255));
}

// Resamples rows [row0, row0 + n_rows) of `src` (width src_w) horizontally to `taps.first.size()` columns.
std::vector<uint8_t> horizontal_pass(const uint8_t* src, int64_t src_w, int64_t row0, int64_t n_rows,
                                     const Taps& taps) {
  const int64_t out_w = static_cast<int64_t>(taps.first.size());
  std::vector<uint8_t> out(static_cast<size_t>(out_w * n_rows * 3));
  for (int64_t y = 0; y < n_rows; ++y) {
    const uint8_t* row = src + (row0 + y) * src_w * 3;
    uint8_t* dst = out.data() + y * out_w * 3;
    for (int64_t x = 0; x < out_w; ++x) {
      const int32_t* k = &taps.weights[x * taps.ksize];
      const uint8_t* p = row + taps.first[x] * 3;
      int64_t acc[3] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
      for (int64_t j = 0; j < taps.count[x]; ++j) {
        for (int c = 0; c < 3; ++c) acc[c] += int64_t{p[3 * j + c]} * k[j];
      }
      for (int c = 0; c < 3; ++c) dst[3 * x + c] = clip_fixed_point(acc[c]);
    }
  }
  return out;
}

// Resamples `src` (width w, rows counted from the first row the taps refer to, `row0`) vertically.
std::vector<uint8_t> vertical_pass(const uint8_t* src, int64_t w, int64_t row0, const Taps& taps) {
  const int64_t out_h = static_cast<int64_t>(taps.first.size());
  std::vector<uint8_t> out(static_cast<size_t>(w * out_h * 3));
  for (int64_t y = 0; y < out_h; ++y) {
    const int32_t* k = &taps.weights[y * taps.ksize];
    const uint8_t* top = src + (taps.first[y] - row0) * w * 3;
    uint8_t* dst = out.data() + y * w * 3;
    for (int64_t i = 0; i < w * 3; ++i) {
      int64_t acc = 1 << (PRECISION_BITS - 1);
      for (int64_t j = 0; j < taps.count[y]; ++j) acc += int64_t{top[j * w * 3 + i]} * k[j];
      dst[i] = clip_fixed_point(acc);
    }
  }
  return out;
}

}  // namespace

void check_resize_arguments(const RgbImage& image, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) {
    throw InvalidInput(fmt::format("resize to {}x{}: the size must be positive", width, height));
  }
  OE_CHECK(image.width > 0 && image.height > 0 &&
               static_cast<int64_t>(image.pixels.size()) == image.width * image.height * 3,
           "RgbImage {}x{} with {} bytes", image.width, image.height, image.pixels.size());
}

namespace {

// Both overloads: `release` frees the source's pixels as soon as the pass that reads them is done, so a large
// decoded image is not held beside its resized copy.
RgbImage resize(const RgbImage& image, int64_t width, int64_t height, RgbImage* release) {
  check_resize_arguments(image, width, height);
  const bool horizontal = width != image.width, vertical = height != image.height;
  if (!horizontal && !vertical) {
    if (release) return std::move(*release);
    return image;
  }

  const Taps rows = compute_taps(image.height, height);
  // The source rows the vertical pass reads: the horizontal pass computes only those.
  const int64_t row0 = vertical ? rows.first.front() : 0;
  const int64_t row_end = vertical ? rows.first.back() + rows.count.back() : image.height;
  const auto free_source = [&] {
    if (release) std::vector<uint8_t>().swap(release->pixels);
  };

  RgbImage out;
  out.width = width;
  out.height = height;
  if (!horizontal) {
    out.pixels = vertical_pass(image.pixels.data(), image.width, 0, rows);
    free_source();
    return out;
  }
  std::vector<uint8_t> columns =
      horizontal_pass(image.pixels.data(), image.width, row0, row_end - row0, compute_taps(image.width, width));
  free_source();
  out.pixels = vertical ? vertical_pass(columns.data(), width, row0, rows) : std::move(columns);
  return out;
}

}  // namespace

RgbImage resize_bicubic(const RgbImage& image, int64_t width, int64_t height) {
  return resize(image, width, height, nullptr);
}

RgbImage resize_bicubic(RgbImage&& image, int64_t width, int64_t height) {
  const RgbImage& source = image;  // read through a const view; `image` itself is emptied once it has been read
  return resize(source, width, height, &image);
}

}  // namespace oe::media
