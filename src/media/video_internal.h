// What src/media/video_decode.cc and video_frames.cc share, and what the tests reach below the public API of
// media/video.h: the frame plan of each pipeline and the streaming decoder. Internal to src/media (and its tests).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "media/video.h"

namespace oe::media::detail {

// qwen-omni-utils' IMAGE_FACTOR: patch 14 × merge 2.
constexpr int64_t VIDEO_FACTOR = 28;

// Which frames a pipeline samples, and whether options.max_frames lowered the count that fps asked for. A plan covers
// `total_frames` frames from `first_frame` (a time range of the video, VideoRange) as it would a whole video of that
// many frames; the indices are the stream's.
struct FramePlan {
  std::vector<int64_t> indices;  // non-decreasing
  bool truncated = false;
};
FramePlan plan_card_frames(int64_t total_frames, double video_fps, const VideoOptions& options,
                           int64_t first_frame = 0);
FramePlan plan_st_frames(int64_t total_frames, double video_fps, const VideoOptions& options, int64_t first_frame = 0);

// Decodes `path` as a stream and calls on_frame(k, frame) for every k in `indices` (sorted; a repeated index is
// handed out once per occurrence), frame k being the k-th frame the decoder outputs, converted to RGB24 exactly as
// `ffmpeg -i path -fps_mode passthrough -pix_fmt rgb24 -f rawvideo` converts it. Stops as soon as the last index is
// served. `progress` (optional) sees (frames decoded so far, total_frames). Returns how many frames were decoded;
// when the file ends before the last index (a damaged file), the indices past the end are simply not served.
// A frame larger than limits.max_frame_pixels, or decoding that would hold more than limits.max_decode_bytes, is
// refused (InvalidInput) before FFmpeg allocates it. Errors are not prefixed with the file name (the public functions
// add it).
struct DecodeLimits {
  int64_t max_frame_pixels = VideoOptions{}.max_frame_pixels;
  int64_t max_decode_bytes = VideoOptions{}.max_decode_bytes;
  int64_t other_bytes = 0;  // what the caller holds per sampled frame besides its RGB copy (its resize's buffers)
};
int64_t decode_frames_at(const std::filesystem::path& path, std::span<const int64_t> indices, int64_t total_frames,
                         const std::function<void(int64_t, const RgbImage&)>& on_frame,
                         const std::function<void(int64_t, int64_t)>& progress, const DecodeLimits& limits = {});

}  // namespace oe::media::detail
