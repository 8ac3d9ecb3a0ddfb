// Tests of the video path (src/media/video_decode.cc, video_frames.cc) against independent references:
// tests/media/video_oracle.py (qwen-omni-utils' and transformers' frame rules in numpy/torch, torch 1.13's
// antialiased bicubic, Pillow's bicubic), ffprobe's frame counts and rates, and the ffmpeg CLI's rgb24 frames.
// Every video is made with the ffmpeg CLI (testsrc2) into a temporary folder.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/ffmpeg.h"
#include "common/run_command.h"
#include "core/error.h"
#include "media/video.h"
#include "media/video_internal.h"
#include "media_test_util.h"

namespace oe::media {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

using oe::testing::ffmpeg;
using oe::testing::q;

bool run_oracle(const std::string& args) {
  const std::string cmd = fmt::format("\"{}\" \"{}/tests/media/video_oracle.py\" {}", OE_PYTHON, OE_SOURCE_DIR, args);
  std::string out;
  const int rc = oe::testing::run_command(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "the video oracle failed (exit " << rc << "): " << cmd << "\n" << out.substr(0, 4000)
                  << "\n(it needs Python 3 with numpy, torch and Pillow: python3-numpy python3-torch python3-pil)";
  }
  return rc == 0;
}

json read_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(); }

// An [N, H, W, 3] uint8 .npy as N images.
std::vector<RgbImage> read_frames(const fs::path& p) {
  const Tensor t = io::read_npy(p);
  EXPECT_TRUE(t.dtype() == DType::U8 && t.rank() == 4 && t.dim(3) == 3) << p;
  std::vector<RgbImage> frames(static_cast<size_t>(t.dim(0)));
  const int64_t size = t.dim(1) * t.dim(2) * 3;
  for (size_t i = 0; i < frames.size(); ++i) {
    frames[i].height = t.dim(1);
    frames[i].width = t.dim(2);
    frames[i].pixels.assign(t.ptr<uint8_t>() + i * size, t.ptr<uint8_t>() + (i + 1) * size);
  }
  return frames;
}

// Agreement of resized frames with a reference: bytes equal, bytes within ±1.
struct MatchStats {
  int64_t n = 0, exact = 0, within1 = 0;
  int max_diff = 0;
  void add(const RgbImage& got, const RgbImage& want) {
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    for (size_t i = 0; i < want.pixels.size(); ++i) {
      const int d = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
      ++n, exact += d == 0, within1 += d <= 1;
      max_diff = std::max(max_diff, d);
    }
  }
  std::string str() const {
    return fmt::format("{} values: {:.6f}% equal, {:.6f}% within ±1, max |diff| {}", n, 100.0 * exact / n,
                       100.0 * within1 / n, max_diff);
  }
  // The acceptance bar: ±1 grey level on at least 99.9% of the values.
  void expect_close(const std::string& what) const {
    ASSERT_GT(n, 0) << what;
    EXPECT_GE(static_cast<double>(within1), 0.999 * static_cast<double>(n)) << what << ": " << str();
    std::cout << "[ match    ] " << what << ": " << str() << "\n";
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Frame rules without files

TEST(VideoIndices, SpecExample) {
  // Spec §6.2.2's example: 10 s of 30 fps 640x360: 20 frames over 300, a first resize to 364x644.
  const VideoOptions o;
  const std::vector<int64_t> idx = card_frame_indices(300, 30.0, o);
  ASSERT_EQ(idx.size(), 20u);
  EXPECT_EQ(idx.front(), 0);
  EXPECT_EQ(idx.back(), 299);
  const ResizedSize s = card_first_resize(360, 640, 20, o);
  EXPECT_EQ(s.height, 364);
  EXPECT_EQ(s.width, 644);
}

TEST(VideoIndices, EdgeCases) {
  VideoOptions o;
  EXPECT_EQ(card_frame_indices(2, 25.0, o), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(card_frame_indices(3, 25.0, o), (std::vector<int64_t>{0, 2}));            // odd: floored to even
  EXPECT_EQ(card_frame_indices(5, 25.0, o), (std::vector<int64_t>{0, 1, 3, 4}));      // min_frames 4
  EXPECT_EQ(card_frame_indices(10, 1.0, o).size(), 10u);                              // fps above the video's
  EXPECT_THROW(card_frame_indices(1, 25.0, o), InvalidInput);                         // the card needs 2 frames
  EXPECT_EQ(st_frame_indices(1, 25.0, o), (std::vector<int64_t>{0}));
  EXPECT_EQ(st_frame_indices(3, 25.0, o), (std::vector<int64_t>{0}));                 // int(0.24) = 0 -> 1
  EXPECT_EQ(st_frame_indices(10, 1.0, o).size(), 10u);                                // capped at every frame
  EXPECT_EQ(st_frame_indices(100, 25.0, o), (std::vector<int64_t>{0, 12, 25, 37, 50, 62, 75, 87}));
  o.max_frames = 7;  // floored to 6 by the card rule
  EXPECT_EQ(card_frame_indices(1000, 1.0, o).size(), 6u);
  EXPECT_EQ(st_frame_indices(1000, 1.0, o).size(), 7u);
  EXPECT_TRUE(detail::plan_card_frames(1000, 1.0, o).truncated);
  EXPECT_FALSE(detail::plan_card_frames(100, 25.0, VideoOptions{}).truncated);
  o.max_frames = 1;
  EXPECT_THROW(card_frame_indices(1000, 1.0, o), InvalidInput);
  EXPECT_THROW(card_frame_indices(100, 0.0, VideoOptions{}), InvalidInput);
  EXPECT_THROW(st_frame_indices(100, std::nan(""), VideoOptions{}), InvalidInput);
  VideoOptions bad;
  bad.fps = 0;
  EXPECT_THROW(card_frame_indices(100, 25.0, bad), InvalidInput);
}

TEST(VideoIndices, MatchOracleGrid) {
  TempDir dir;
  json cases = json::array();
  std::vector<VideoOptions> options;
  const double rates[] = {25.0, 30000.0 / 1001.0, 30.0, 24000.0 / 1001.0, 60.0, 1.0, 0.5, 500.0 / 69.0};
  const int64_t sizes[][2] = {{360, 640}, {1080, 1920}, {640, 360}, {90, 160}, {16, 16}, {2160, 3840}};
  int64_t k = 0;
  for (int64_t total : {2, 3, 4, 5, 7, 17, 25, 31, 100, 120, 299, 300, 1525, 1829, 3600, 9001, 107892, 216000}) {
    for (double rate : rates) {
      for (double fps : {2.0, 1.0, 0.5, 4.0}) {
        VideoOptions o;
        o.fps = fps;
        json c = {{"total", total}, {"video_fps", rate}, {"fps", fps}, {"min_frames", o.min_frames},
                  {"max_frames", o.max_frames}, {"min_pixels", o.min_pixels}, {"max_pixels", o.max_pixels},
                  {"total_pixels", o.total_pixels}};
        if (++k % 5 == 0) {  // a user's max_frames, passed to qwen-omni-utils as the element's max_frames
          o.max_frames = 9 + k % 400;
          c["max_frames"] = c["max_frames_option"] = o.max_frames;
        }
        c["height"] = sizes[k % 6][0];
        c["width"] = sizes[k % 6][1];
        cases.push_back(c);
        options.push_back(o);
      }
    }
  }
  write_json(dir / "cases.json", cases);
  ASSERT_TRUE(run_oracle(fmt::format("indices {} {}", q(dir / "cases.json"), q(dir / "out.json"))));
  const json out = read_json(dir / "out.json");
  ASSERT_EQ(out.size(), cases.size());
  int64_t n_card = 0, torch113_differs = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const json& c = cases[i];
    const json& want = out[i];
    const int64_t total = c["total"], h = c["height"], w = c["width"];
    const double rate = c["video_fps"];
    SCOPED_TRACE(c.dump());
    if (want["card"].contains("error")) {
      EXPECT_THROW(card_frame_indices(total, rate, options[i]), InvalidInput);
    } else {
      const detail::FramePlan plan = detail::plan_card_frames(total, rate, options[i]);
      EXPECT_EQ(plan.indices, want["card"]["indices"].get<std::vector<int64_t>>());
      EXPECT_EQ(plan.truncated, want["card"]["truncated"].get<bool>());
      torch113_differs += want["card"]["indices"] != want["card"]["torch"];
      ++n_card;
      const ResizedSize first = card_first_resize(h, w, static_cast<int64_t>(plan.indices.size()), options[i]);
      EXPECT_EQ(first.height, want["card"]["first"][0].get<int64_t>());
      EXPECT_EQ(first.width, want["card"]["first"][1].get<int64_t>());
    }
    const detail::FramePlan st = detail::plan_st_frames(total, rate, options[i]);
    EXPECT_EQ(st.indices, want["st"]["indices"].get<std::vector<int64_t>>());
    EXPECT_EQ(st.truncated, want["st"]["truncated"].get<bool>());
  }
  // torch 1.13 (the oracle's) still vectorises linspace; the rule replicated is torch >= 2.0's (see the oracle).
  std::cout << "[ info     ] card indices: " << n_card << " cases; torch 1.13's own linspace differs after rounding in "
            << torch113_differs << "\n";
}

// Time ranges (windows of a long video) against qwen-vl-utils' video_start / video_end rule, written out by the
// oracle: the frame range, the card indices over it and the first resize.
TEST(VideoRanges, WindowsMatchTheReferenceRangeRule) {
  TempDir dir;
  json cases = json::array();
  std::vector<VideoRange> ours;
  std::vector<VideoInfo> infos;
  int64_t tails = 0;
  for (int64_t total : {2, 31, 750, 751, 1499, 4500, 5394, 107892}) {
    for (double rate : {25.0, 30000.0 / 1001.0, 60.0, 1.0, 500.0 / 69.0}) {
      for (const auto& [window, overlap] : std::vector<std::pair<double, double>>{{30, 0}, {30, 10}, {7.5, 2.5}}) {
        VideoInfo info;
        info.total_frames = total;
        info.fps = rate;
        info.width = 640;
        info.height = 360;
        const std::vector<VideoRange> windows = video_windows(info, window, overlap);
        const double length = static_cast<double>(total) / rate;
        ASSERT_FALSE(windows.empty());
        EXPECT_EQ(windows.front().start, 0.0);
        EXPECT_DOUBLE_EQ(windows.back().end, std::min(length, windows.back().start + window));
        for (size_t i = 0; i < windows.size(); ++i) {
          EXPECT_DOUBLE_EQ(windows[i].start, static_cast<double>(i) * (window - overlap));
          EXPECT_LE(windows[i].end - windows[i].start, window + 1e-9);
          cases.push_back({{"total", total}, {"video_fps", rate}, {"fps", 2.0}, {"min_frames", 4},
                           {"video_start", windows[i].start}, {"video_end", windows[i].start + window},
                           {"height", info.height}, {"width", info.width}, {"total_pixels", VideoOptions{}.total_pixels}});
          ours.push_back(windows[i]);
          infos.push_back(info);
        }
        // The tail the windows dropped covers fewer than 2 frames: the reference refuses it too.
        const double next = static_cast<double>(windows.size()) * (window - overlap);
        if (next < length && windows.back().end < length) {
          ++tails;
          EXPECT_THROW(video_range(info, next, next + window), InvalidInput);
        }
      }
    }
  }
  write_json(dir / "cases.json", cases);
  ASSERT_TRUE(run_oracle(fmt::format("ranges {} {}", q(dir / "cases.json"), q(dir / "out.json"))));
  const json out = read_json(dir / "out.json");
  ASSERT_EQ(out.size(), cases.size());
  int64_t checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].dump());
    const json& want = out[i];
    if (want.contains("error")) {  // only a 1-frame video's one window, which the card pipeline refuses as well
      EXPECT_EQ(ours[i].frame_count(), 1);
      EXPECT_THROW(detail::plan_card_frames(ours[i].frame_count(), infos[i].fps, {}, ours[i].first_frame),
                   InvalidInput);
      continue;
    }
    EXPECT_EQ(ours[i].first_frame, want["first"].get<int64_t>());
    EXPECT_EQ(ours[i].last_frame, want["last"].get<int64_t>());
    const detail::FramePlan plan = detail::plan_card_frames(ours[i].frame_count(), infos[i].fps, {}, ours[i].first_frame);
    EXPECT_EQ(plan.indices, want["indices"].get<std::vector<int64_t>>());
    const ResizedSize first = card_first_resize(360, 640, static_cast<int64_t>(plan.indices.size()), {});
    EXPECT_EQ(first.height, want["size"][0].get<int64_t>());
    EXPECT_EQ(first.width, want["size"][1].get<int64_t>());
    ++checked;
  }
  std::cout << "[ info     ] " << checked << " windows checked against the reference, " << tails
            << " dropped tails\n";
  EXPECT_GT(checked, 300);
  // A 3-minute video at 25 fps: six windows of 30 s.
  VideoInfo three;
  three.total_frames = 4500;
  three.fps = 25;
  const auto six = video_windows(three, 30, 0);
  ASSERT_EQ(six.size(), 6u);
  for (size_t i = 0; i < six.size(); ++i) {
    EXPECT_EQ(six[i].start, 30.0 * static_cast<double>(i));
    EXPECT_EQ(six[i].end, 30.0 * static_cast<double>(i + 1));
  }
  EXPECT_THROW(video_windows(three, 30, 30), InvalidInput);
  // A hostile header: 1,000 frames at 10⁻⁶ fps would be 10⁹ windows; refused at once instead of walked.
  VideoInfo slow;
  slow.total_frames = 1000;
  slow.fps = 1e-6;
  try {
    video_windows(slow, 30, 0);
    ADD_FAILURE() << "no error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("damaged frame rate"), std::string::npos) << e.what();
  }
  EXPECT_THROW(video_windows(three, 0, 0), InvalidInput);
  EXPECT_THROW(video_range(three, 10, 10), InvalidInput);
}

// ---------------------------------------------------------------------------------------------------------------
// The antialiased bicubic resize against torch

TEST(VideoResize, MatchesTorch) {
  TempDir dir;
  json cases = json::array();
  const int64_t shapes[][4] = {{360, 640, 364, 644}, {360, 640, 224, 392}, {1080, 1920, 560, 1008},
                               {90, 160, 252, 448},  {16, 16, 336, 336},   {640, 360, 644, 364},
                               {101, 77, 33, 59},    {48, 64, 48, 28},     {48, 64, 112, 64},
                               {7, 300, 28, 1204},   {241, 319, 85, 113}};
  int seed = 1;
  for (const auto& s : shapes) {
    for (const char* kind : {"noise", "smooth"}) {
      cases.push_back({{"name", fmt::format("c{}", seed)}, {"in_h", s[0]}, {"in_w", s[1]}, {"out_h", s[2]},
                       {"out_w", s[3]}, {"seed", seed}, {"kind", kind}});
      ++seed;
    }
  }
  write_json(dir / "cases.json", cases);
  ASSERT_TRUE(run_oracle(fmt::format("resize {} {}", q(dir / "cases.json"), q(dir.path()))));
  MatchStats stats;
  for (const json& c : cases) {
    const std::string name = c["name"];
    const RgbImage in = testing::read_rgb_npy(dir / (name + ".in.npy"));
    const RgbImage want = testing::read_rgb_npy(dir / (name + ".torch.npy"));
    stats.add(resize_bicubic_antialias(in, c["out_w"], c["out_h"]), want);
  }
  stats.expect_close("resize_bicubic_antialias vs torch 1.13 (noise and smooth images, 11 shapes)");
  // Bit for bit on this torch build; another build of torch rounds a few values in 10^4 the other way.
  EXPECT_GE(static_cast<double>(stats.exact), 0.999 * static_cast<double>(stats.n)) << stats.str();
}

TEST(VideoResize, SizeRules) {
  const RgbImage img = testing::noise_image(20, 10, 3);
  EXPECT_EQ(resize_bicubic_antialias(img, 20, 10).pixels, img.pixels);
  EXPECT_THROW(resize_bicubic_antialias(img, 0, 10), InvalidInput);
  const RgbImage flat = [] {
    RgbImage f;
    f.width = 33, f.height = 17;
    f.pixels.assign(33 * 17 * 3, 77);
    return f;
  }();
  for (const auto& [w, h] : {std::pair<int64_t, int64_t>{5, 3}, {70, 40}, {33, 90}}) {
    const RgbImage r = resize_bicubic_antialias(flat, w, h);  // normalised weights keep a flat image flat
    EXPECT_EQ(r.pixels, std::vector<uint8_t>(static_cast<size_t>(w * h * 3), 77));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Video files

struct VideoSpec {
  std::string name;
  std::string args;  // ffmpeg input and encoder options
  bool pixels;       // the oracle also extracts and resizes the frames
  std::string codec;
  bool has_audio = false;
};

const std::string X264 = " -c:v libx264 -preset ultrafast -bf 2 -pix_fmt yuv420p";
const std::string MPEG4 = " -c:v mpeg4 -q:v 4 -bf 1";

std::string testsrc(const std::string& size, const std::string& rate, const std::string& seconds) {
  return fmt::format("-f lavfi -i testsrc2=size={}:rate={}:duration={}", size, rate, seconds);
}

// The acceptance grid: 25 and 29.97 fps; 640x360, 1920x1080 (1 s only) and portrait 360x640 at 1 s and 4 s; 61 s
// at 160x90 (the index rule does not depend on the size); a 3-frame clip; a variable-frame-rate file; BT.709 and
// full-range frames for the colour conversion.
std::vector<VideoSpec> video_specs() {
  const std::string ntsc = "30000/1001";
  std::vector<VideoSpec> v = {
      {"a25_640x360_1s.mp4", testsrc("640x360", "25", "1") + X264, false, "h264"},
      {"a25_640x360_4s.mp4", testsrc("640x360", "25", "4") + " -f lavfi -i sine=frequency=440:duration=4" + X264 +
                                 " -c:a aac -shortest", true, "h264", true},
      {"a2997_640x360_1s.mp4", testsrc("640x360", ntsc, "1") + MPEG4, true, "mpeg4"},
      {"a2997_640x360_4s.mp4", testsrc("640x360", ntsc, "4") + X264, false, "h264"},
      {"a25_1920x1080_1s.mp4", testsrc("1920x1080", "25", "1") + X264, true, "h264"},
      {"a2997_1920x1080_1s.mp4", testsrc("1920x1080", ntsc, "1") + X264, false, "h264"},
      {"a25_360x640_1s.mp4", testsrc("360x640", "25", "1") + X264, false, "h264"},
      {"a25_360x640_4s.mp4", testsrc("360x640", "25", "4") + X264, false, "h264"},
      {"a2997_360x640_1s.mp4", testsrc("360x640", ntsc, "1") + X264, false, "h264"},
      {"a2997_360x640_4s.mp4", testsrc("360x640", ntsc, "4") + X264, true, "h264"},
      {"a25_160x90_61s.mp4", testsrc("160x90", "25", "61") + MPEG4, false, "mpeg4"},
      {"a2997_160x90_61s.mp4", testsrc("160x90", ntsc, "61") + MPEG4, true, "mpeg4"},
      {"three_frames.mp4", testsrc("320x240", "25", "1") + " -frames:v 3" + X264, true, "h264"},
      {"vfr.mp4", testsrc("320x240", "25", "4") + " -vf setpts='(N+N*N/40)/25/TB' -fps_mode vfr" + X264, true,
       "h264"},
      {"bt709.mp4", testsrc("320x240", "25", "1") + X264 + " -colorspace bt709 -color_primaries bt709 -color_trc bt709",
       true, "h264"},
      {"full_range.avi", testsrc("320x240", "25", "1") + " -c:v mjpeg -pix_fmt yuvj420p", true, "mjpeg"},
  };
  return v;
}

class VideoFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const VideoOptions o;
    json list = json::array();
    for (const VideoSpec& s : video_specs()) {
      if (!ffmpeg(s.args + " " + q(path(s.name)))) return;
      list.push_back({{"name", s.name}, {"path", path(s.name).string()}, {"pixels", s.pixels}, {"fps", o.fps},
                      {"min_pixels", o.min_pixels}, {"max_pixels", o.max_pixels}, {"min_frames", o.min_frames},
                      {"max_frames", o.max_frames}, {"total_pixels", o.total_pixels}});
    }
    write_json(path("videos.json"), list);
    ok_ = run_oracle(fmt::format("videos {} {}", q(path("videos.json")), q(dir_->path())));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ok_) << "making the test videos or their references failed"; }

  static fs::path path(const std::string& name) { return dir_->path() / name; }
  static json oracle(const VideoSpec& s) { return read_json(path(s.name + ".json")); }
  static std::vector<RgbImage> frames(const VideoSpec& s, const std::string& what) {
    return read_frames(path(s.name + "." + what + ".npy"));
  }

  static inline TempDir* dir_ = nullptr;
  static inline bool ok_ = false;
};

// probe_video against ffprobe's count (packets) and rate (avg_frame_rate).
void check_probe(const VideoSpec& s, const fs::path& file, const json& want) {
  const VideoInfo info = probe_video(file);
  EXPECT_EQ(info.total_frames, want["total"].get<int64_t>());
  EXPECT_EQ(info.fps, want["video_fps"].get<double>());  // num / den, the same division
  EXPECT_EQ(info.width, want["width"].get<int64_t>());
  EXPECT_EQ(info.height, want["height"].get<int64_t>());
  EXPECT_EQ(info.codec, s.codec);
  EXPECT_EQ(info.has_audio, s.has_audio);
  EXPECT_GT(info.duration_seconds, 0.0);
}

// (a) the sampled indices and the output sizes of both pipelines equal the reference rules; returns the outputs.
std::pair<VideoFrames, VideoFrames> check_plans(const fs::path& file, const json& want) {
  VideoOptions o;
  VideoFrames card = decode_video_frames(file, o);
  EXPECT_EQ(card.indices, want["card"]["indices"].get<std::vector<int64_t>>());
  // For these frame counts torch 1.13's own (vectorised) linspace gives the same indices too.
  EXPECT_EQ(card.indices, want["card"]["torch"].get<std::vector<int64_t>>());
  EXPECT_EQ(card.truncated, want["card"]["truncated"].get<bool>());
  EXPECT_EQ(card.n_missing, 0);
  for (const RgbImage& f : card.frames) {
    EXPECT_EQ(f.height, want["card"]["second"][0].get<int64_t>());
    EXPECT_EQ(f.width, want["card"]["second"][1].get<int64_t>());
  }
  o.pipeline = VideoPipeline::St;
  VideoFrames st = decode_video_frames(file, o);
  EXPECT_EQ(st.indices, want["st"]["indices"].get<std::vector<int64_t>>());
  EXPECT_EQ(st.truncated, want["st"]["truncated"].get<bool>());
  for (const RgbImage& f : st.frames) {
    EXPECT_EQ(f.height, want["st"]["size"][0].get<int64_t>());
    EXPECT_EQ(f.width, want["st"]["size"][1].get<int64_t>());
  }
  return {std::move(card), std::move(st)};
}

// (b) a decoded frame is the ffmpeg CLI's rgb24 frame, byte for byte.
void check_decoded_pixels(const fs::path& file, const json& want, const std::vector<RgbImage>& cli) {
  const auto indices = want["raw_indices"].get<std::vector<int64_t>>();
  std::vector<RgbImage> got;
  std::vector<int64_t> got_indices;
  const int64_t n = detail::decode_frames_at(
      file, indices, want["total"].get<int64_t>(),
      [&](int64_t k, const RgbImage& f) { got.push_back(f), got_indices.push_back(k); }, {});
  EXPECT_GT(n, indices.back());
  ASSERT_EQ(got_indices, indices);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(testing::image_difference(got[i], cli[i]), "") << indices[i];
}

struct ResizeStats {
  MatchStats first, st, card_final, st_final;
  int64_t n_second = 0;
};

// (c) the antialiased resizes (the card's first, the st's only) against torch, from the CLI's frames and through
// the whole decode_video_frames; (d) the card's second resize is Pillow's bicubic, byte for byte.
void check_resizes(const json& want, const std::vector<RgbImage>& raw, const std::vector<RgbImage>& card_first,
                   const std::vector<RgbImage>& card_final, const std::vector<RgbImage>& st,
                   const std::pair<VideoFrames, VideoFrames>& got, ResizeStats& stats) {
  std::map<int64_t, const RgbImage*> by_index;
  for (size_t i = 0; i < raw.size(); ++i) by_index[want["raw_indices"][i].get<int64_t>()] = &raw[i];
  const auto card_indices = want["card"]["indices"].get<std::vector<int64_t>>();
  const auto st_indices = want["st"]["indices"].get<std::vector<int64_t>>();
  ASSERT_EQ(card_first.size(), card_indices.size());
  ASSERT_EQ(card_final.size(), card_indices.size());
  ASSERT_EQ(st.size(), st_indices.size());
  for (size_t i = 0; i < card_indices.size(); ++i) {
    const RgbImage& f = card_first[i];
    stats.first.add(resize_bicubic_antialias(*by_index.at(card_indices[i]), f.width, f.height), f);
    const RgbImage second = resize_bicubic(f, card_final[i].width, card_final[i].height);
    EXPECT_EQ(testing::image_difference(second, card_final[i]), "") << "second resize of frame " << i;
    ++stats.n_second;
  }
  for (size_t i = 0; i < st_indices.size(); ++i) {
    stats.st.add(resize_bicubic_antialias(*by_index.at(st_indices[i]), st[i].width, st[i].height), st[i]);
  }
  ASSERT_EQ(got.first.frames.size(), card_final.size());
  for (size_t i = 0; i < card_final.size(); ++i) stats.card_final.add(got.first.frames[i], card_final[i]);
  ASSERT_EQ(got.second.frames.size(), st.size());
  for (size_t i = 0; i < st.size(); ++i) stats.st_final.add(got.second.frames[i], st[i]);
}

// One test for the whole grid: the videos and their references are made once (ctest runs each test in its own
// process, and making them takes most of the time).
TEST_F(VideoFiles, MatchReferences) {
  ResizeStats stats;
  for (const VideoSpec& s : video_specs()) {
    SCOPED_TRACE(s.name);
    const json want = oracle(s);
    check_probe(s, path(s.name), want);
    const auto got = check_plans(path(s.name), want);
    if (!s.pixels) continue;
    const std::vector<RgbImage> raw = frames(s, "raw");
    check_decoded_pixels(path(s.name), want, raw);
    check_resizes(want, raw, frames(s, "card_first"), frames(s, "card_final"), frames(s, "st"), got, stats);
  }
  stats.first.expect_close("card first resize vs torch (CLI frames)");
  stats.st.expect_close("st resize vs torch (CLI frames)");
  stats.card_final.expect_close("card pipeline vs torch + Pillow (decode_video_frames)");
  stats.st_final.expect_close("st pipeline vs torch (decode_video_frames)");
  std::cout << "[ match    ] card second resize vs Pillow: " << stats.n_second << " frames, byte for byte\n";
}

// ---------------------------------------------------------------------------------------------------------------
// Bad inputs: clear errors naming the file, or the documented behaviour; never a crash

class VideoBadInputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string src = testsrc("320x240", "25", "4");
    ok_ = ffmpeg(src + X264 + " " + q(path("moov_at_end.mp4"))) &&
          ffmpeg(src + X264 + " -movflags +faststart " + q(path("faststart.mp4"))) &&
          ffmpeg(src + X264 + " " + q(path("clip.mkv"))) &&
          ffmpeg("-f lavfi -i sine=frequency=440:duration=1 -c:a aac " + q(path("audio_only.m4a"))) &&
          ffmpeg(testsrc("320x240", "25", "1") + " -frames:v 1" + X264 + " " + q(path("one_frame.mp4"))) &&
          ffmpeg(testsrc("320x240", "25", "1") + " -frames:v 0 -c:v mpeg4 " + q(path("no_frames.avi")));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ok_) << "making the test files failed"; }

  static fs::path path(const std::string& name) { return dir_->path() / name; }
  // A copy of `name` cut to `bytes` (a fraction of its size when bytes <= 1).
  static fs::path cut(const std::string& name, double bytes, const std::string& out) {
    std::vector<uint8_t> data = testing::read_bytes(path(name));
    data.resize(static_cast<size_t>(bytes <= 1 ? bytes * static_cast<double>(data.size()) : bytes));
    testing::write_bytes(path(out), data);
    return path(out);
  }

  static inline TempDir* dir_ = nullptr;
  static inline bool ok_ = false;
};

// Runs f, which must throw E with a message that names `file` and contains `text`.
template <typename E, typename F>
void expect_error(F&& f, const fs::path& file, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << file << ": no error";
  } catch (const E& e) {
    const std::string what = e.what();
    std::cout << "[ message  ] " << what << "\n";
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    EXPECT_NE(what.find(text), std::string::npos) << what;
  }
}

VideoOptions st_options() {
  VideoOptions o;
  o.pipeline = VideoPipeline::St;
  return o;
}

TEST_F(VideoBadInputs, TruncatedFiles) {
  // An MP4 whose index (moov) is at the end has none left after the cut.
  const fs::path half = cut("moov_at_end.mp4", 0.5, "half.mp4");
  expect_error<InvalidInput>([&] { probe_video(half); }, half, "not a video file");
  expect_error<InvalidInput>([&] { decode_video_frames(half, {}); }, half, "not a video file");
  const fs::path kb = cut("faststart.mp4", 1024, "first_kb.mp4");
  expect_error<InvalidInput>([&] { decode_video_frames(kb, {}); }, kb, "");
  // With the index first, the packets that are left are counted and decoded; the frame rules see that count.
  for (const char* name : {"faststart.mp4", "clip.mkv"}) {
    const fs::path full = path(name);
    const fs::path cut_file = cut(name, 0.5, std::string("half_") + name);
    SCOPED_TRACE(cut_file);
    const VideoInfo whole = probe_video(full), info = probe_video(cut_file);
    EXPECT_GT(info.total_frames, 0);
    EXPECT_LT(info.total_frames, whole.total_frames);
    // The last packet may be cut inside its data and not decode: the sampled frames past the decoded ones are
    // missing, the others kept, and the card pipeline repeats its last frame to an even count.
    const VideoFrames card = decode_video_frames(cut_file, {});
    std::vector<int64_t> plan = card_frame_indices(info.total_frames, info.fps, {});
    EXPECT_LE(card.n_missing, 1);
    plan.resize(plan.size() - static_cast<size_t>(card.n_missing));
    if (plan.size() % 2 == 1) plan.push_back(plan.back());
    EXPECT_EQ(card.indices, plan);
    EXPECT_EQ(card.frames.size(), plan.size());
    const VideoFrames st = decode_video_frames(cut_file, st_options());
    plan = st_frame_indices(info.total_frames, info.fps, {});
    plan.resize(plan.size() - static_cast<size_t>(st.n_missing));
    EXPECT_EQ(st.indices, plan);
    EXPECT_EQ(st.frames.size(), plan.size());
  }
}

// A damaged file in windows: the window in progress keeps what was decoded, the later ones are not handed out.
TEST_F(VideoBadInputs, TruncatedFileInWindows) {
  const fs::path cut_file = cut("faststart.mp4", 0.5, "half_windows.mp4");
  VideoInfo info = probe_video(cut_file);
  // Windows planned over the length the header promises (the whole file's), as if the cut were discovered late.
  const VideoInfo whole = probe_video(path("faststart.mp4"));
  info.total_frames = whole.total_frames;
  const auto windows = video_windows(info, 0.5, 0);
  ASSERT_GE(windows.size(), 3u);
  std::vector<VideoFrames> got;
  const size_t n = decode_video_ranges(cut_file, {}, info, windows,
                                       [&](size_t, VideoFrames&& f) { got.push_back(std::move(f)); });
  EXPECT_EQ(n, got.size());
  ASSERT_GE(n, 1u);
  EXPECT_LT(n, windows.size());
  for (size_t i = 0; i + 1 < got.size(); ++i) EXPECT_EQ(got[i].n_missing, 0);
  EXPECT_GT(got.back().n_missing, 0);
  EXPECT_EQ(got.back().frames.size() % 2, 0u);
  // A window that starts past what can be decoded is not handed out at all; none at all is an error naming the file.
  expect_error<InvalidInput>(
      [&] { decode_video_ranges(cut_file, {}, info, {windows.back()}, [](size_t, VideoFrames&&) {}); }, cut_file,
      "could be decoded");
}

TEST_F(VideoBadInputs, NoVideo) {
  const fs::path audio = path("audio_only.m4a");
  expect_error<InvalidInput>([&] { probe_video(audio); }, audio, "has no video stream");
  expect_error<InvalidInput>([&] { decode_video_frames(audio, {}); }, audio, "has no video stream");
  const fs::path empty = path("no_frames.avi");
  expect_error<InvalidInput>([&] { decode_video_frames(empty, {}); }, empty, "no frame");
  const fs::path text = path("notes.mp4");
  std::ofstream(text) << "This is a text file, not a video.\n";
  expect_error<InvalidInput>([&] { decode_video_frames(text, st_options()); }, text, "not a video file");
  const fs::path nothing = path("missing.mp4");
  expect_error<IoError>([&] { probe_video(nothing); }, nothing, "does not exist");
  expect_error<IoError>([&] { decode_video_frames(dir_->path(), {}); }, dir_->path(), "not a regular file");
}

TEST_F(VideoBadInputs, OneFrame) {
  const fs::path one = path("one_frame.mp4");
  EXPECT_EQ(probe_video(one).total_frames, 1);
  expect_error<InvalidInput>([&] { decode_video_frames(one, {}); }, one, "the st pipeline accepts a 1-frame video");
  const VideoFrames st = decode_video_frames(one, st_options());
  ASSERT_EQ(st.frames.size(), 1u);
  EXPECT_EQ(st.indices, (std::vector<int64_t>{0}));
  // smart_resize(240, 320, 28, 6272, 50176): 252x308 is over budget, β = sqrt(76800 / 50176) -> 168x252
  EXPECT_EQ(st.frames[0].height, 168);
  EXPECT_EQ(st.frames[0].width, 252);
}

// ---------------------------------------------------------------------------------------------------------------
// Memory limits: the frame size from the header, and the memory decoding holds (one frame, its RGB copy and its
// resize, checked before decoding; the decoder's frames, counted as FFmpeg allocates them)

TEST(VideoLimits, FrameSizeAndDecodingMemoryAreBounded) {
  TempDir dir;
  const fs::path file = dir / "b_frames.mp4";
  ASSERT_TRUE(ffmpeg(testsrc("640x360", "25", "4") + X264 + " " + q(file)));
  const VideoFrames want = decode_video_frames(file, {});
  VideoOptions o;
  o.max_frame_pixels = 640 * 360 - 1;
  expect_error<InvalidInput>([&] { decode_video_frames(file, o); }, file,
                             "a video frame of 640x360 (230400 pixels) is over the limit of 230399");
  o.max_frame_pixels = 640 * 360;
  EXPECT_EQ(decode_video_frames(file, o).frames.size(), want.frames.size());
  // From a limit below one frame with its RGB copy and resize, up: refused before decoding, then refused while
  // decoding (the decoder holds several frames: B-frames and threads), then the same frames as without a limit.
  std::vector<std::string> outcomes;
  for (int64_t limit = 6 << 20; limit <= 24 << 20; limit += 512 << 10) {
    o.max_decode_bytes = limit;
    std::string outcome;
    try {
      const VideoFrames got = decode_video_frames(file, o);
      ASSERT_EQ(got.frames.size(), want.frames.size());
      for (size_t i = 0; i < got.frames.size(); ++i) EXPECT_EQ(got.frames[i].pixels, want.frames[i].pixels);
      outcome = "decoded";
    } catch (const InvalidInput& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(file.string()), std::string::npos) << what;
      EXPECT_NE(what.find("--max-video-decode-bytes"), std::string::npos) << what;
      outcome = what.find("takes at least") != std::string::npos         ? "before"
                : what.find("would hold more than") != std::string::npos ? "while"
                                                                         : what;
    }
    if (outcomes.empty() || outcomes.back() != outcome) {
      std::cout << "[ limit    ] " << limit << ": " << outcome << "\n";
      outcomes.push_back(outcome);
    }
  }
  EXPECT_EQ(outcomes, (std::vector<std::string>{"before", "while", "decoded"}));
}

// One decoding pass hands out each window as soon as its last frame is decoded, with the frames a decode of every
// frame gives at those indices (a 56x56 video: the first resize's size is its minimum whatever the frame count).
TEST(VideoRanges, DecodedOnceInOrder) {
  TempDir dir;
  const fs::path file = dir / "clip.mp4";
  ASSERT_TRUE(ffmpeg(testsrc("56x56", "25", "13") + MPEG4 + " " + q(file)));
  const VideoInfo info = probe_video(file);
  ASSERT_EQ(info.total_frames, 325);
  const std::vector<VideoRange> windows = video_windows(info, 4, 1);
  ASSERT_EQ(windows.size(), 4u);  // 0-4, 3-7, 6-10, 9-13
  VideoOptions every;
  every.fps = 25;
  every.max_frames = 1000;
  const VideoFrames all = decode_video_frames(file, every);
  ASSERT_EQ(all.frames.size(), 324u);  // the card pipeline's even count: all but one frame
  std::map<int64_t, const RgbImage*> by_index;
  for (size_t j = 0; j < all.frames.size(); ++j) by_index[all.indices[j]] = &all.frames[j];
  int64_t compared = 0;
  int64_t decoded = 0;
  std::vector<int64_t> decoded_when_handed;
  std::vector<size_t> order;
  const size_t n = decode_video_ranges(
      file, {}, info, windows,
      [&](size_t i, VideoFrames&& f) {
        SCOPED_TRACE(i);
        order.push_back(i);
        decoded_when_handed.push_back(decoded);
        const auto plan = detail::plan_card_frames(windows[i].frame_count(), info.fps, {}, windows[i].first_frame);
        EXPECT_EQ(f.indices, plan.indices);
        EXPECT_EQ(f.n_missing, 0);
        EXPECT_EQ(f.info.total_frames, 325);
        ASSERT_EQ(f.frames.size(), plan.indices.size());
        for (size_t j = 0; j < f.frames.size(); ++j) {
          if (!by_index.count(f.indices[j])) continue;
          const RgbImage& want = *by_index[f.indices[j]];
          ++compared;
          ASSERT_EQ(f.frames[j].width, want.width);
          ASSERT_EQ(f.frames[j].height, want.height);
          EXPECT_TRUE(f.frames[j].pixels == want.pixels) << "frame " << f.indices[j];
        }
        // Handed out as soon as the window's last sampled frame was decoded, not at the end of the file.
        // (progress reports a frame after it is served: `decoded` is the frames before this window's last)
        EXPECT_EQ(decoded, f.indices.back());
      },
      [&](int64_t done, int64_t) { decoded = done; });
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_GE(compared, 30);
  // The range of the whole video samples what decode_video_frames does.
  VideoFrames whole_range;
  decode_video_ranges(file, {}, info, {video_range(info, 0, 13)},
                      [&](size_t, VideoFrames&& f) { whole_range = std::move(f); });
  EXPECT_EQ(whole_range.indices, decode_video_frames(file, {}).indices);
}

// ---------------------------------------------------------------------------------------------------------------
// A long video: max_frames bounds the frames kept (a 10-hour file is too slow to make; 1 hour at 1 fps of 16x16
// has the same 3600 > 768 frame counts at 2 fps)

TEST(VideoLong, MaxFramesBoundsTheFramesKept) {
  TempDir dir;
  const fs::path file = dir / "hour.mp4";
  ASSERT_TRUE(ffmpeg(testsrc("16x16", "1", "3600") + MPEG4 + " " + q(file)));
  int64_t calls = 0, last = 0, total = 0;
  const auto progress = [&](int64_t done, int64_t of) { ++calls, last = done, total = of; };
  const VideoFrames card = decode_video_frames(file, {}, progress);
  EXPECT_EQ(card.info.total_frames, 3600);
  EXPECT_TRUE(card.truncated);
  ASSERT_EQ(card.frames.size(), 768u);
  EXPECT_EQ(card.indices, card_frame_indices(3600, 1.0, {}));
  EXPECT_EQ(card.indices.back(), 3599);
  EXPECT_EQ(total, 3600);
  EXPECT_EQ(last, 3600);
  EXPECT_EQ(calls, 3600);
  const VideoFrames st = decode_video_frames(file, st_options(), progress);
  EXPECT_TRUE(st.truncated);
  ASSERT_EQ(st.frames.size(), 768u);
  EXPECT_EQ(st.indices.front(), 0);
  EXPECT_LT(st.indices.back(), 3600);
  EXPECT_LT(last, 3600);  // the decode stops after the last sampled frame
}

}  // namespace
}  // namespace oe::media
