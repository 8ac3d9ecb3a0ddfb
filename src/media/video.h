// Videos: frame sampling, the two resizes and the patches of spec qwen25-omni-thinker.md §6.2 and
// omni-embed-nemotron.md §2 item 4. Frames are decoded with FFmpeg as a stream: only the sampled frames are kept,
// each already resized, so memory grows with the number of sampled frames, never with the video's length.
//
// Two pipelines give different pixels, both official:
//   card (default): qwen-omni-utils' fetch_video (frame count from fps with its even rounding and min/max rules,
//     float32 linspace indices rounded half-to-even, a first resize to its own per-frame budget with torchvision's
//     antialiased bicubic, a = -0.5, on uint8), then the processor's second resize to min/max pixels
//     (smart_resize + Pillow's bicubic, as for images);
//   st: the sentence-transformers path, where the video processor samples frames itself (n = int(total / fps_video
//     · fps), indices arange(0, total, total / n) truncated) and resizes once to min/max pixels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "media/image.h"

namespace oe::media {

enum class VideoPipeline { Card, St };

struct VideoOptions {
  VideoPipeline pipeline = VideoPipeline::Card;
  double fps = 2.0;                 // frames sampled per second of video
  int64_t min_pixels = 6'272;       // the processor's per-frame budget (the model card's values)
  int64_t max_pixels = 50'176;
  int64_t max_frames = 768;         // qwen-omni-utils' FPS_MAX_FRAMES; also the memory budget of a long video
  int64_t min_frames = 4;           // qwen-omni-utils' FPS_MIN_FRAMES (card pipeline)
  // qwen-omni-utils' total pixel budget over all frames (VIDEO_TOTAL_PIXELS, int(128000·28·28·0.9)).
  int64_t total_pixels = 90'316'800;
  // The largest frame decoded (width·height), checked from the stream's header before decoding and by FFmpeg on every
  // frame it allocates: the largest picture H.264, HEVC and AV1 allow at their highest levels (level 6.2's 139,264
  // macroblocks of H.264, MaxLumaPs of HEVC and AV1: 8192×4352), so every conforming 8K stream fits. A larger frame
  // would hold gigabytes (a 12000×12000 MJPEG of 9 MB peaked at 3.1 GB); refusing it changes no vector.
  int64_t max_frame_pixels = 35'651'584;
  // The most memory decoding may hold at once: every frame the decoder holds (its reference frames, one per thread,
  // the one being output; counted as FFmpeg allocates them), the RGB copy of the frame being sampled and the float
  // planes of its first resize. Larger frames (8K at 10-bit 4:4:4 or with alpha) or more reference frames than this
  // holds are refused naming the limit; any 4K stream fits, an 8K 8-bit 4:2:0 one with up to 3 frames held. Changes
  // no vector.
  int64_t max_decode_bytes = int64_t{320} << 20;
};

// What the container says about the video stream, with the frame count from a demuxing pass (packets counted, no
// decoding), which is what the reference reader reports as its length.
struct VideoInfo {
  int64_t width = 0, height = 0;    // coded size of the stream (after the sample aspect ratio is ignored)
  int64_t total_frames = 0;
  double fps = 0;                   // the stream's average frame rate
  double duration_seconds = 0;
  bool has_audio = false;           // the file also has an audio stream
  std::string codec;
};

// Reads the header and counts the frames. InvalidInput naming the file when it cannot be parsed, has no video
// stream ("has no video stream": an audio-only file, or only a cover picture) or no frame; IoError when it cannot be
// opened; Unsupported when this FFmpeg has no decoder for the codec. fps is the stream's avg_frame_rate (what decord's
// get_avg_fps reports), else its r_frame_rate, else frames / duration.
VideoInfo probe_video(const std::filesystem::path& path);

// Frame counts and indices (exposed for tests). Both throw InvalidInput for bad options or a non-positive fps.
// card: qwen-omni-utils' smart_nframes (even count, at least 2, at most total_frames) and
// round_half_even(float32 linspace(0, total − 1, n)) as torch ≥ 2.0 computes it on x86 (see video_frames.cc);
// throws InvalidInput when total_frames < 2 (the reference fails there too; the st pipeline takes such a video).
std::vector<int64_t> card_frame_indices(int64_t total_frames, double video_fps, const VideoOptions& options);
// st: n = int(total / video_fps · fps) (at least 1), indices trunc(arange(0, total, total / n)), capped at
// max_frames by the same rule with fewer frames. Deviation: where fps asks for more frames than the video has (the
// reference raises), n is total_frames: every frame.
std::vector<int64_t> st_frame_indices(int64_t total_frames, double video_fps, const VideoOptions& options);

// A time range of a video (qwen-vl-utils' video_start / video_end) and the frames it covers, as that reader's
// calculate_video_frame_range computes them: the range clamped to the length total_frames / fps, first_frame =
// ceil(start · fps), last_frame = min(floor(end · fps), total_frames − 1). The frames of a range are sampled over
// [first_frame, last_frame] by the rule that samples a whole video over [0, total_frames − 1] (the fps rule on
// last − first + 1 frames; the card pipeline's torch.linspace(first, last, n) rounded), so the range covering a
// whole video samples what decode_video_frames does. Consecutive windows share the frame at their boundary when
// start · fps is whole (the reference's end is inclusive).
struct VideoRange {
  double start = 0, end = 0;  // seconds, clamped to the video's length
  int64_t first_frame = 0, last_frame = 0;
  int64_t frame_count() const { return last_frame - first_frame + 1; }
};
// InvalidInput when the range is empty or covers fewer than 2 frames (the reference raises there too).
VideoRange video_range(const VideoInfo& info, double start, double end);
// Windows of `window_seconds` from 0, each starting `window_seconds − overlap_seconds` after the previous one, the
// last ending at the video's length. A last window of fewer than 2 frames is dropped (a 1-frame video keeps its one
// window). InvalidInput for a window that is not positive, an overlap outside [0, window), or more than a year of
// windows (a frame rate no real video has).
std::vector<VideoRange> video_windows(const VideoInfo& info, double window_seconds, double overlap_seconds);

// torchvision's F.resize(uint8 tensor, (height, width), BICUBIC, antialias=True): separable antialiased Keys
// bicubic (a = -0.5, support scaled when downsampling, weights normalised), computed in float32 on the float
// image, clamped to [0, 255] and rounded half to even: torch's fp32 CPU path, bit for bit as torch 1.13 computes it
// (see video_frames.cc; the uint8 fixed-point path of newer torch can differ by ±1). A copy when the size is unchanged.
RgbImage resize_bicubic_antialias(const RgbImage& image, int64_t width, int64_t height);

// The per-frame size of the first (qwen-omni-utils) resize for a video of n sampled frames (spec §6.2.1 step 4).
ResizedSize card_first_resize(int64_t height, int64_t width, int64_t n_frames, const VideoOptions& options);

struct VideoFrames {
  std::vector<RgbImage> frames;       // the sampled frames after every resize, all of one size
  std::vector<int64_t> indices;       // their indices in the stream
  VideoInfo info;
  bool truncated = false;             // max_frames capped the count below what fps asked for
  int64_t n_missing = 0;              // sampled frames the decoder never produced (a damaged file), see below
};

// Decodes `path` and returns the sampled frames resized by `options.pipeline` (the processor's final size).
// Frame k is the k-th frame the decoder outputs, in RGB24 as `ffmpeg -i path -fps_mode passthrough -pix_fmt rgb24`
// gives it. Only the sampled frames are converted and kept, and decoding stops after the last one.
// `progress` (optional) sees (frames decoded so far, total frames). Errors name the file.
// A damaged file whose decoder ends before the last sampled index (the frame count comes from the packets): the
// frames that were decoded are kept, n_missing counts the others, and the card pipeline repeats its last frame when
// that leaves an odd count (the reference would fail on such a file); no sampled frame at all is an InvalidInput.
VideoFrames decode_video_frames(const std::filesystem::path& path, const VideoOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress = {});

// The same for several time ranges of one video (`info` from probe_video), decoding the file once: on_range(i,
// frames) is called for each range in order as soon as its last sampled frame is decoded, so only the frames of the
// ranges in progress are held (a long video in windows costs one window's frames, whatever its length). Each range
// is sampled and resized as a video of its own (VideoRange); `frames.info` is the whole video's. Ranges must be in
// order (non-decreasing start and end). A damaged file that ends early: the range in progress gets the frames that
// were decoded (n_missing counts the others, and the card pipeline keeps its count even), later ranges none.
// Returns how many ranges were handed out; none is an InvalidInput naming the file.
size_t decode_video_ranges(const std::filesystem::path& path, const VideoOptions& options, const VideoInfo& info,
                           const std::vector<VideoRange>& ranges,
                           const std::function<void(size_t, VideoFrames&&)>& on_range,
                           const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace oe::media
