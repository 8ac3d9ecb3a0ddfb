// Frame sampling and the resizes of the video path (spec qwen25-omni-thinker.md §6.2.1, omni-embed-nemotron.md §2
// item 4), in the arithmetic of the references:
//  - card: qwen-omni-utils' smart_nframes in double (as Python computes it), then
//    torch.linspace(0, total − 1, n, dtype=float32).round() (for a time range of the video, qwen-vl-utils' decord
//    reader with video_start / video_end: smart_nframes of the range's frame count and linspace(first, last, n)): torch ≥ 2.0's scalar CPU kernel, step = (end − start) /
//    (n − 1) in float32, value i = start + step·i below n/2 and end − step·(n − 1 − i) from there on, each a fused
//    multiply-add as GCC contracts it in torch's AVX2 kernels (seen in torch 1.13's scalar loop; a build without
//    FMA rounds a tie the other way for about 1.5% of (total, n) pairs, moving one index by 1), rounded half to even;
//  - st: transformers' BaseVideoProcessor.sample_frames: n = int(total / video_fps · fps) and
//    torch.arange(0, total, total / n).int(): float32 output with double arithmetic, vectorised 8 lanes at a time
//    as the AVX2 kernel does it, truncated;
//  - card_first_resize: qwen-omni-utils' per-frame budget, a float in Python, so smart_resize takes it as a double;
//  - resize_bicubic_antialias: torch's separable antialiased interpolation on the float image
//    (aten/src/ATen/native/cpu/UpSampleKernel.cpp: _compute_indices_min_size_weights_aa, interpolate_aa_single_dim,
//    width pass first), float32, then clamp, round, uint8. The arithmetic is torch 1.13's as its AVX2 kernel
//    executes it (the oracle of the tests, bit for bit); other torch builds round differently in the last float
//    bit, which moves a few output values in 10^4 by one grey level.
// The target compiles this file with -ffp-contract=off, so every fused multiply-add is an explicit std::fma.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"
#include "media/video.h"
#include "media/video_internal.h"

namespace oe::media {

namespace {

constexpr int64_t FRAME_FACTOR = 2;            // qwen-omni-utils: frame counts are even (temporal patch 2)
constexpr int64_t VIDEO_MIN_PIXELS = 100'352;  // 128·28·28
constexpr int64_t VIDEO_MAX_PIXELS = 602'112;  // 768·28·28
constexpr int TORCH_VEC_LANES = 8;             // Vectorized<float>::size() in torch's AVX2 kernels

void check_options(const VideoOptions& o) {
  if (!(o.fps > 0) || !std::isfinite(o.fps)) throw InvalidInput(fmt::format("video fps {} must be positive", o.fps));
  if (o.min_pixels <= 0 || o.max_pixels < o.min_pixels) {
    throw InvalidInput(
        fmt::format("video min/max pixels {}/{}: both positive, min <= max", o.min_pixels, o.max_pixels));
  }
  if (o.max_frames < 1 || o.min_frames < 1) {
    throw InvalidInput(fmt::format("video min/max frames {}/{} must be at least 1", o.min_frames, o.max_frames));
  }
  if (o.total_pixels <= 0) throw InvalidInput(fmt::format("video total pixels {} must be positive", o.total_pixels));
}

void check_stream(int64_t total_frames, double video_fps) {
  if (total_frames < 1) throw InvalidInput(fmt::format("the video has {} frames", total_frames));
  if (!(video_fps > 0) || !std::isfinite(video_fps)) {
    throw InvalidInput(fmt::format("the video's frame rate ({}) is unknown or not positive", video_fps));
  }
}

int64_t floor_to_even(double v) { return static_cast<int64_t>(std::floor(v / FRAME_FACTOR)) * FRAME_FACTOR; }
int64_t ceil_to_even(double v) { return static_cast<int64_t>(std::ceil(v / FRAME_FACTOR)) * FRAME_FACTOR; }

// qwen-vl-utils' calculate_video_frame_range: the range clamped to the length total / fps, its first frame
// ceil(start · fps), its last min(floor(end · fps), total − 1); -1 when start is past the last frame.
VideoRange frame_range(const VideoInfo& info, double start, double end) {
  const double length = static_cast<double>(info.total_frames) / info.fps;
  VideoRange r;
  r.start = std::clamp(start, 0.0, length);
  r.end = std::clamp(end, 0.0, length);
  r.first_frame = static_cast<int64_t>(std::ceil(r.start * info.fps));
  r.last_frame = std::min(static_cast<int64_t>(std::floor(r.end * info.fps)), info.total_frames - 1);
  return r;
}

// torch.linspace(first, first + count − 1, n, dtype=float32).round() (see the file comment).
std::vector<int64_t> linspace_rounded(int64_t first, int64_t count, int64_t n) {
  const auto start = static_cast<float>(first), end = static_cast<float>(first + count - 1);
  const float step = (end - start) / static_cast<float>(n - 1);
  const int64_t halfway = n / 2;
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float v = i < halfway ? std::fma(step, static_cast<float>(i), start)
                                : std::fma(-step, static_cast<float>(n - 1 - i), end);
    out[i] = static_cast<int64_t>(std::nearbyint(v));  // the default rounding mode: half to even
  }
  return out;
}

// torch.arange(0, total, total / n).int() with torch's float32 output: the size is ceil(total / step) in double;
// values are start + step·i in double, except that the vectorised loop (blocks of 2 vectors) computes a vector's
// first value that way, rounds it to float, and adds k·step to it for lane k.
std::vector<int64_t> arange_truncated(int64_t total_frames, int64_t n) {
  const double step = static_cast<double>(total_frames) / static_cast<double>(n);
  const auto size = static_cast<int64_t>(std::ceil(static_cast<double>(total_frames) / step));
  std::vector<int64_t> out(static_cast<size_t>(size));
  int64_t i = 0;
  for (; i + 2 * TORCH_VEC_LANES <= size; i += 2 * TORCH_VEC_LANES) {
    for (const int64_t first : {i, i + TORCH_VEC_LANES}) {
      const auto base = static_cast<float>(step * static_cast<double>(first));
      for (int k = 0; k < TORCH_VEC_LANES; ++k) {
        const auto v = static_cast<float>(static_cast<double>(base) + static_cast<double>(k) * step);
        out[first + k] = static_cast<int32_t>(v);
      }
    }
  }
  for (; i < size; ++i) out[i] = static_cast<int32_t>(static_cast<float>(step * static_cast<double>(i)));
  return out;
}

// torch 1.13's aa_filter for bicubic: Pillow's formula with `a` a double constant (−0.5). Below 1 it is evaluated
// in double; between 1 and 2 the polynomial ((x − 5)·x + 8)·x − 4 is float, with the two multiply-adds fused by
// its AVX2 build, and the product with a is double. Rounded to float. (torch ≥ 2.0 evaluates Keys' form in float.)
float aa_bicubic(float x) {
  constexpr double a = -0.5;
  if (x < 0.0f) x = -x;
  if (x < 1.0f) return static_cast<float>(((a + 2.0) * x - (a + 3.0)) * x * x + 1);
  if (x < 2.0f) return static_cast<float>(static_cast<double>(std::fma(std::fma(x - 5.0f, x, 8.0f), x, -4.0f)) * a);
  return 0.0f;
}

// interpolate_aa_single_dim accumulates t0·w0 + t1·w1 + … in tap order. As compiled in torch 1.13's AVX2 kernel
// (checked bit for bit against it), the products of taps 1..4·⌊(n − 1)/4⌋ are rounded before each add (the
// compiler computes them 4 at a time) and the remaining taps are fused multiply-adds.
inline bool fused_tap(int64_t j, int64_t n_taps) { return j > 4 * ((n_taps - 1) / 4); }

inline float accumulate(float acc, float t, float w, bool fused) { return fused ? std::fma(t, w, acc) : acc + t * w; }

// The taps of one axis (_compute_indices_min_size_weights_aa): for output index i, `count[i]` source samples from
// `first[i]` with weights `weights[i * ksize + j]`. The mixed float/double arithmetic is torch's: scale, support,
// center and invscale are float, some of their sums are formed in double.
struct AaTaps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<float> weights;
};

AaTaps aa_taps(int64_t in_size, int64_t out_size) {
  constexpr int INTERP_SIZE = 4;  // bicubic
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const auto support = static_cast<float>(scale >= 1.0f ? (INTERP_SIZE * 0.5) * scale : INTERP_SIZE * 0.5);
  const float invscale = scale >= 1.0f ? static_cast<float>(1.0 / scale) : 1.0f;
  AaTaps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out_size));
  t.count.resize(static_cast<size_t>(out_size));
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0.0f);
  for (int64_t i = 0; i < out_size; ++i) {
    const auto center = static_cast<float>(scale * (static_cast<double>(i) + 0.5));
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(static_cast<double>(center - support) + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(static_cast<double>(center + support) + 0.5), in_size);
    const int64_t n = std::clamp<int64_t>(hi - lo, 0, t.ksize);
    float* w = &t.weights[static_cast<size_t>(i * t.ksize)];
    float total = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const float offset = static_cast<float>(j + lo) - center;
      w[j] = aa_bicubic(static_cast<float>((static_cast<double>(offset) + 0.5) * static_cast<double>(invscale)));
      total += w[j];
    }
    if (total != 0.0f) {
      for (int64_t j = 0; j < n; ++j) w[j] /= total;
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

// The width pass: each output value from `count` taps of its row. T is float, or uint8_t for the source image itself:
// a byte converts to float exactly, so reading the bytes gives the values of torch's upcast image without holding a
// float copy of it (12 bytes a pixel: 400 MB for an 8K frame).
template <typename T>
std::vector<float> aa_horizontal(const T* src, int64_t width, int64_t height, const AaTaps& taps) {
  const auto out_w = static_cast<int64_t>(taps.first.size());
  std::vector<float> out(static_cast<size_t>(out_w * height * 3));
  for (int64_t y = 0; y < height; ++y) {
    const T* row = src + y * width * 3;
    float* dst = out.data() + y * out_w * 3;
    for (int64_t x = 0; x < out_w; ++x) {
      const float* w = &taps.weights[static_cast<size_t>(x * taps.ksize)];
      const T* p = row + taps.first[x] * 3;
      for (int c = 0; c < 3; ++c) {
        float acc = static_cast<float>(p[c]) * w[0];
        for (int64_t j = 1; j < taps.count[x]; ++j) {
          acc = accumulate(acc, static_cast<float>(p[3 * j + c]), w[j], fused_tap(j, taps.count[x]));
        }
        dst[3 * x + c] = acc;
      }
    }
  }
  return out;
}

// The height pass, a row at a time (the same arithmetic per value, in the same tap order); T as for the width pass.
template <typename T>
std::vector<float> aa_vertical(const T* src, int64_t width, const AaTaps& taps) {
  const auto out_h = static_cast<int64_t>(taps.first.size());
  const int64_t row_len = width * 3;
  std::vector<float> out(static_cast<size_t>(out_h * row_len));
  for (int64_t y = 0; y < out_h; ++y) {
    const float* w = &taps.weights[static_cast<size_t>(y * taps.ksize)];
    const T* top = src + taps.first[y] * row_len;
    float* dst = out.data() + y * row_len;
    for (int64_t i = 0; i < row_len; ++i) dst[i] = static_cast<float>(top[i]) * w[0];
    for (int64_t j = 1; j < taps.count[y]; ++j) {
      const T* row = top + j * row_len;
      const bool fused = fused_tap(j, taps.count[y]);
      for (int64_t i = 0; i < row_len; ++i) dst[i] = accumulate(dst[i], static_cast<float>(row[i]), w[j], fused);
    }
  }
  return out;
}

}  // namespace

namespace detail {

// qwen-omni-utils smart_nframes with element fps/min_frames/max_frames (spec §6.2.1 step 2).
FramePlan plan_card_frames(int64_t total_frames, double video_fps, const VideoOptions& options, int64_t first_frame) {
  check_options(options);
  check_stream(total_frames, video_fps);
  if (total_frames < FRAME_FACTOR) {
    throw InvalidInput(fmt::format(
        "the video has {} frame; the card pipeline (qwen-omni-utils) samples an even number of frames, at least 2 "
        "(the st pipeline accepts a 1-frame video)",
        total_frames));
  }
  const auto total = static_cast<double>(total_frames);
  const int64_t min_frames = ceil_to_even(static_cast<double>(options.min_frames));
  const int64_t max_frames = floor_to_even(static_cast<double>(options.max_frames));
  const double wanted = total / video_fps * options.fps;
  const double n =
      std::min({std::max(wanted, static_cast<double>(min_frames)), static_cast<double>(max_frames), total});
  FramePlan plan;
  const int64_t n_frames = floor_to_even(n);
  if (n_frames < FRAME_FACTOR || n_frames > total_frames) {
    throw InvalidInput(fmt::format("the card pipeline samples {} frames of {} (max_frames {}); it needs 2..{}",
                                   n_frames, total_frames, options.max_frames, total_frames));
  }
  plan.truncated = floor_to_even(std::min(std::max(wanted, static_cast<double>(min_frames)), total)) > n_frames;
  plan.indices = linspace_rounded(first_frame, total_frames, n_frames);
  return plan;
}

// transformers' BaseVideoProcessor.sample_frames with fps (the reference raises when the count is 0 or above the
// frame count; here it is kept in 1..total_frames), then capped at max_frames.
FramePlan plan_st_frames(int64_t total_frames, double video_fps, const VideoOptions& options, int64_t first_frame) {
  check_options(options);
  check_stream(total_frames, video_fps);
  const double wanted = static_cast<double>(total_frames) / video_fps * options.fps;
  const double limit = static_cast<double>(std::numeric_limits<int64_t>::max() / 2);
  const int64_t n = std::clamp<int64_t>(static_cast<int64_t>(std::min(wanted, limit)), 1, total_frames);
  FramePlan plan;
  plan.truncated = n > options.max_frames;
  plan.indices = arange_truncated(total_frames, std::min(n, options.max_frames));
  // ceil(total / step) can exceed n by one when total / (total / n) rounds above n; an index past the last frame
  // would fail in the reference, so it is dropped.
  while (!plan.indices.empty() && plan.indices.back() >= total_frames) plan.indices.pop_back();
  for (int64_t& i : plan.indices) i += first_frame;
  return plan;
}

}  // namespace detail

std::vector<int64_t> card_frame_indices(int64_t total_frames, double video_fps, const VideoOptions& options) {
  return detail::plan_card_frames(total_frames, video_fps, options).indices;
}

std::vector<int64_t> st_frame_indices(int64_t total_frames, double video_fps, const VideoOptions& options) {
  return detail::plan_st_frames(total_frames, video_fps, options).indices;
}

VideoRange video_range(const VideoInfo& info, double start, double end) {
  check_stream(info.total_frames, info.fps);
  if (!std::isfinite(start) || !std::isfinite(end) || !(end > start)) {
    throw InvalidInput(fmt::format("the video range {} s to {} s is empty", start, end));
  }
  const VideoRange r = frame_range(info, start, end);
  if (r.last_frame <= r.first_frame) {  // the reference raises here too
    throw InvalidInput(fmt::format("the range {} s to {} s covers frames {} to {} of {} ({:.3f} fps): fewer than 2",
                                   start, end, r.first_frame, r.last_frame, info.total_frames, info.fps));
  }
  return r;
}

std::vector<VideoRange> video_windows(const VideoInfo& info, double window_seconds, double overlap_seconds) {
  check_stream(info.total_frames, info.fps);
  if (!(window_seconds > 0) || !(overlap_seconds >= 0) || !(overlap_seconds < window_seconds) ||
      !std::isfinite(window_seconds)) {
    throw InvalidInput(
        fmt::format("video window {} s, overlap {} s: the window positive, the overlap in [0, window)",
                    window_seconds, overlap_seconds));
  }
  const double length = static_cast<double>(info.total_frames) / info.fps;
  const double step = window_seconds - overlap_seconds;
  // A header's frame rate can be absurd (a damaged or hostile file: 1,000 frames at 10⁻⁶ fps last 31 years); more
  // windows than this (a year of 30 s windows) is refused rather than walked.
  constexpr double MAX_WINDOWS = 1'051'200;
  if (length / step > MAX_WINDOWS) {
    throw InvalidInput(fmt::format("{} frames at {:g} fps last {:.0f} s: more than {:.0f} windows of {:g} s (a damaged "
                                   "frame rate?)",
                                   info.total_frames, info.fps, length, MAX_WINDOWS, window_seconds));
  }
  std::vector<VideoRange> out;
  for (int64_t k = 0;; ++k) {
    const double start = static_cast<double>(k) * step;  // k · step, not a running sum: no drift over hours
    const VideoRange r = frame_range(info, start, start + window_seconds);
    // A tail of fewer than 2 frames (the least the card pipeline samples) is dropped; the first window is always
    // kept (a 1-frame video is refused later by the card pipeline with its own message).
    if (out.empty() || r.last_frame > r.first_frame) out.push_back(r);
    if (start + window_seconds >= length) break;
  }
  return out;
}

ResizedSize card_first_resize(int64_t height, int64_t width, int64_t n_frames, const VideoOptions& options) {
  check_options(options);
  OE_CHECK(n_frames > 0, "n_frames {}", n_frames);
  // max(min(VIDEO_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR), int(VIDEO_MIN_PIXELS * 1.05)), in Python floats.
  const double budget = static_cast<double>(options.total_pixels) / static_cast<double>(n_frames) * FRAME_FACTOR;
  const auto floor_px = static_cast<double>(static_cast<int64_t>(VIDEO_MIN_PIXELS * 1.05));
  const double max_px = std::max(std::min(static_cast<double>(VIDEO_MAX_PIXELS), budget), floor_px);
  return smart_resize_fractional(height, width, detail::VIDEO_FACTOR, static_cast<double>(VIDEO_MIN_PIXELS),
                                 max_px);
}

RgbImage resize_bicubic_antialias(const RgbImage& image, int64_t width, int64_t height) {
  check_resize_arguments(image, width, height);
  if (width == image.width && height == image.height) return image;
  // torch upcasts to float32, then runs the width pass (its first: the contiguous dimension) and the height pass;
  // each pass here reads the bytes directly where torch reads the upcast copy (the same values).
  std::vector<float> values;
  if (width != image.width) {
    values = aa_horizontal(image.pixels.data(), image.width, image.height, aa_taps(image.width, width));
  }
  if (height != image.height) {
    values = width != image.width ? aa_vertical(values.data(), width, aa_taps(image.height, height))
                                  : aa_vertical(image.pixels.data(), width, aa_taps(image.height, height));
  }
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(values.size());
  // clamp(0, 255), round (half to even: the default rounding mode), uint8
  for (size_t i = 0; i < values.size(); ++i) {
    out.pixels[i] = static_cast<uint8_t>(std::nearbyint(std::clamp(values[i], 0.0f, 255.0f)));
  }
  return out;
}

}  // namespace oe::media
