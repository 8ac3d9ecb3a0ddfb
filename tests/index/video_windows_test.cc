// Long videos in the index: --media-window cuts a video into time windows (frames and sound together), each window
// is embedded as the video made of exactly its frames and its sound would be, hits carry the time range, a query
// made from one window's frames finds that window first, and every fusion mode windows the same way.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/ffmpeg.h"
#include "common/json_lines.h"
#include "index/store.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using testing::q;
using testing::TempDir;

testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

const std::string SETTINGS = "--video-min-pixels 3136 --video-max-pixels 6272";
std::string model() { return testing::test_model("tiny-f32").string(); }

// A 3-minute video at 10 fps, 56x56, lossless: a different test pattern and a different tone in each 30 s (the
// sound is 16 kHz PCM, so a cut of it holds the very samples the index reads).
void write_three_minutes(const fs::path& path) {
  const char* patterns[] = {"testsrc2", "mandelbrot", "rgbtestsrc", "smptebars", "life", "cellauto"};
  std::string inputs, concat;
  for (int i = 0; i < 6; ++i) {
    inputs += fmt::format("-f lavfi -i {}=size=56x56:rate=10 ", patterns[i]);
    concat += fmt::format("[{}:v]trim=duration=30,setpts=PTS-STARTPTS,format=yuv444p[v{}];", i, i);
  }
  std::string filter = concat;
  for (int i = 0; i < 6; ++i) filter += fmt::format("[v{}]", i);
  filter += "concat=n=6:v=1:a=0[v]";
  ASSERT_TRUE(testing::ffmpeg(inputs +
                              "-f lavfi -i \"aevalsrc='0.5*sin(2*PI*(200+150*floor(t/30))*t)':s=16000:d=180\" "
                              "-filter_complex \"" + filter + "\" -map '[v]' -map 6:a -c:v ffv1 -c:a pcm_s16le " +
                              q(path)));
}

// Frames [first, last] and sound [start, end) s of `src` as a video of their own (lossless, the same rate).
void cut(const fs::path& src, int64_t first, int64_t last, double start, double end, const fs::path& out) {
  ASSERT_TRUE(testing::ffmpeg(fmt::format(
      "-i {} -vf \"select='between(n,{},{})',setpts=N/FRAME_RATE/TB\" -af "
      "\"atrim=start_sample={}:end_sample={},asetpts=N/SR/TB\" -fps_mode passthrough -c:v ffv1 -c:a pcm_s16le {}",
      q(src), first, last, std::llround(start * 16000), std::llround(end * 16000), q(out))));
}

std::vector<float> embed(const TempDir& tmp, const fs::path& video, const std::string& extra) {
  auto o = run(tmp, fmt::format("embed --model '{}' --video {} {} {}", model(), q(video), SETTINGS,
                                extra));
  EXPECT_EQ(o.rc, 0) << o.err;
  if (o.rc != 0) return {};
  return nlohmann::json::parse(o.out)["embedding"].get<std::vector<float>>();
}

struct Window {
  double start = 0, end = 0;
  std::string modality;
  std::vector<float> vector;
};

// Every stored item of the index, in segment order (frames views before sound views).
std::vector<Window> stored(const fs::path& idx) {
  auto store = index::Store::open(idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m, {});
  const auto hits = store->describe(ids);
  const size_t dim = ids.empty() ? 0 : m.size() / ids.size();
  std::vector<std::pair<std::pair<std::string, int64_t>, Window>> rows;
  for (size_t i = 0; i < ids.size(); ++i) {
    Window w{hits[i].start, hits[i].end, hits[i].modality,
             std::vector<float>(m.begin() + static_cast<std::ptrdiff_t>(i * dim),
                                m.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim))};
    EXPECT_EQ(hits[i].unit, "s");
    rows.push_back({{hits[i].modality, hits[i].segment}, std::move(w)});
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Window> out;
  for (auto& r : rows) out.push_back(std::move(r.second));
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double{a[i]} - b[i]));
  return d;
}

class VideoWindows : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    fs::create_directories(lib());
    write_three_minutes(lib() / "talk.mkv");
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path lib() { return dir_->path() / "lib"; }
  static inline TempDir* dir_ = nullptr;
};

TEST_F(VideoWindows, SixWindowsOfThirtySecondsEachEmbeddedAsItsOwnVideo) {
  TempDir tmp;
  const fs::path idx = tmp / "idx";
  auto o = run(tmp, fmt::format("index {} --index {} --model '{}' {} --format json", q(lib()), q(idx), model(),
                                SETTINGS));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["segments_embedded"], 6);
  const auto windows = stored(idx);
  ASSERT_EQ(windows.size(), 6u);
  for (size_t i = 0; i < windows.size(); ++i) {
    EXPECT_EQ(windows[i].modality, "video");
    EXPECT_DOUBLE_EQ(windows[i].start, 30.0 * static_cast<double>(i));
    EXPECT_DOUBLE_EQ(windows[i].end, 30.0 * static_cast<double>(i + 1));
  }
  // The 60-90 s window covers frames 600..900 (qwen-vl-utils' range rule: the end is inclusive): the video made of
  // exactly those frames and those seconds of sound embeds to the same vector.
  cut(lib() / "talk.mkv", 600, 900, 60, 90, tmp / "w2.mkv");
  const auto want = embed(tmp, tmp / "w2.mkv", "");
  EXPECT_LT(max_abs_diff(windows[2].vector, want), 2e-6);
  // A neighbour is not that close (the test can fail).
  EXPECT_GT(max_abs_diff(windows[3].vector, want), 1e-3);

  // A query made from one window's frames finds that window first, with its time range.
  cut(lib() / "talk.mkv", 1200, 1499, 120, 150, tmp / "query.mkv");
  o = run(tmp, fmt::format("search --video {} --index {} -k 6 --format json", q(tmp / "query.mkv"), q(idx)));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto hits = testing::json_lines(o.out);
  ASSERT_EQ(hits.size(), 6u);
  EXPECT_EQ(hits[0]["start"], 120.0);
  EXPECT_EQ(hits[0]["end"], 150.0);
  EXPECT_EQ(hits[0]["unit"], "seconds");
  // The plain output shows the range.
  o = run(tmp, fmt::format("search --video {} --index {} -k 1", q(tmp / "query.mkv"), q(idx)));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("talk.mkv [120.0-150.0 s]"), std::string::npos) << o.out;
}

// Every fusion mode windows the video the same way: interleaved and video-only and audio-only give one vector per
// window, late fusion two (frames and sound) per window; each equals that mode's vector of the cut video.
TEST_F(VideoWindows, EveryFusionModeWindowsTheSameWay) {
  TempDir tmp;
  cut(lib() / "talk.mkv", 0, 600, 0, 60, tmp / "w0.mkv");
  for (const std::string fusion : {"interleaved", "video", "audio", "late"}) {
    SCOPED_TRACE(fusion);
    const fs::path idx = tmp / ("idx-" + fusion);
    auto o = run(tmp, fmt::format("index {} --index {} --model '{}' {} --fusion {} --media-window 60 --format json",
                                  q(lib()), q(idx), model(), SETTINGS, fusion));
    ASSERT_EQ(o.rc, 0) << o.err;
    const auto windows = stored(idx);
    ASSERT_EQ(windows.size(), fusion == "late" ? 6u : 3u);
    for (size_t i = 0; i < windows.size(); ++i) {
      EXPECT_DOUBLE_EQ(windows[i].start, 60.0 * static_cast<double>(i % 3));
      EXPECT_DOUBLE_EQ(windows[i].end, 60.0 * static_cast<double>(i % 3 + 1));
    }
    if (fusion == "late") {
      EXPECT_EQ(windows[0].modality, "video");
      EXPECT_EQ(windows[3].modality, "video-sound");
      auto e = run(tmp, fmt::format("embed --model '{}' --video {} {} --fusion late", model(),
                                    q(tmp / "w0.mkv"), SETTINGS));
      ASSERT_EQ(e.rc, 0) << e.err;
      const auto j = nlohmann::json::parse(e.out);
      EXPECT_LT(max_abs_diff(windows[0].vector, j["embedding"].get<std::vector<float>>()), 2e-6);
      EXPECT_LT(max_abs_diff(windows[3].vector, j["audio_embedding"].get<std::vector<float>>()), 2e-6);
    } else {
      EXPECT_LT(max_abs_diff(windows[0].vector, embed(tmp, tmp / "w0.mkv", "--fusion " + fusion)), 2e-6);
    }
  }
}

// --media-overlap applies to video windows too; a video no longer than one window stays one whole segment.
TEST_F(VideoWindows, OverlapAndShortVideos) {
  TempDir tmp;
  const fs::path idx = tmp / "idx";
  auto o = run(tmp, fmt::format("index {} --index {} --model '{}' {} --media-window 60 --media-overlap 20 "
                                "--fusion video --format json",
                                q(lib()), q(idx), model(), SETTINGS));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto windows = stored(idx);
  ASSERT_EQ(windows.size(), 4u);  // 0-60, 40-100, 80-140, 120-180
  for (size_t i = 0; i < windows.size(); ++i) {
    EXPECT_DOUBLE_EQ(windows[i].start, 40.0 * static_cast<double>(i));
    EXPECT_DOUBLE_EQ(windows[i].end, 40.0 * static_cast<double>(i) + 60.0);
  }
  const fs::path short_lib = tmp / "short", short_idx = tmp / "short-idx";
  fs::create_directories(short_lib);
  cut(lib() / "talk.mkv", 0, 99, 0, 10, short_lib / "ten.mkv");
  o = run(tmp, fmt::format("index {} --index {} --model '{}' {} --format json", q(short_lib), q(short_idx), model(),
                           SETTINGS));
  ASSERT_EQ(o.rc, 0) << o.err;
  auto store = index::Store::open(short_idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m, {});
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_LT(max_abs_diff(m, embed(tmp, short_lib / "ten.mkv", "")), 2e-6);
}

// eval --media-window: a long video is embedded in windows and ranked once, as its best window; by default it is
// embedded whole, as the model card embeds it.
TEST_F(VideoWindows, EvalRanksADocumentOnceAsItsBestWindow) {
  TempDir tmp;
  const fs::path ds = tmp / "ds";
  fs::create_directories(ds / "qrels");
  fs::copy_file(lib() / "talk.mkv", ds / "talk.mkv");
  cut(lib() / "talk.mkv", 0, 99, 0, 10, ds / "ten.mkv");
  std::ofstream(ds / "corpus.jsonl") << R"({"_id": "long", "video": "talk.mkv"})" "\n"
                                     << R"({"_id": "short", "video": "ten.mkv"})" "\n"
                                     << R"({"_id": "t1", "text": "a text about colour bars"})" "\n";
  const char* query = "colour bars and a tone";
  std::ofstream(ds / "queries.jsonl") << R"({"_id": "q1", "text": ")" << query << "\"}\n";
  std::ofstream(ds / "qrels" / "test.tsv") << "query-id\tcorpus-id\tscore\nq1\tlong\t1\n";
  // The query's vector, and the long video's windows as an index stores them with the same settings.
  auto o = run(tmp, fmt::format("embed --model '{}' --query '{}'", model(), query));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto qv = nlohmann::json::parse(o.out)["embedding"].get<std::vector<float>>();
  const fs::path one = tmp / "one";
  fs::create_directories(one);
  fs::copy_file(lib() / "talk.mkv", one / "talk.mkv");
  o = run(tmp, fmt::format("index {} --index {} --model '{}' {} --format json", q(one), q(tmp / "idx"), model(),
                           SETTINGS));
  ASSERT_EQ(o.rc, 0) << o.err;
  double best = -2;
  for (const auto& w : stored(tmp / "idx")) {
    double dot = 0;
    for (size_t i = 0; i < qv.size(); ++i) dot += double{qv[i]} * w.vector[i];
    best = std::max(best, dot);
  }
  const auto eval_run = [&](const std::string& extra) {
    auto e = run(tmp, fmt::format("eval --dataset {} --model '{}' {} --cache {} --format json --save-run {} {}", q(ds),
                                  model(), SETTINGS, q(tmp / "cache"), q(tmp / "run"), extra));
    EXPECT_EQ(e.rc, 0) << e.err;
    std::map<std::string, double> scores;
    std::ifstream f(tmp / "run");
    for (std::string qid, q0, doc, rank, score, tag; f >> qid >> q0 >> doc >> rank >> score >> tag;) {
      EXPECT_FALSE(scores.count(doc)) << doc << " ranked twice";
      scores[doc] = std::stod(score);
    }
    return scores;
  };
  const auto windowed = eval_run("--media-window 30");
  ASSERT_EQ(windowed.size(), 3u);
  EXPECT_NEAR(windowed.at("long"), best, 2e-5);
  // Whole by default: another vector, so (almost surely) another score.
  const auto whole = eval_run("");
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_GT(std::fabs(whole.at("long") - windowed.at("long")), 1e-4);
  EXPECT_NEAR(whole.at("short"), windowed.at("short"), 2e-6) << "a video shorter than a window is whole either way";
  o = run(tmp, fmt::format("eval --dataset {} --model '{}' --media-window 30 --media-overlap 30", q(ds), model()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("--media-overlap"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace oe
