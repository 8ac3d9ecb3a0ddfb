// Videos in the index. With --fusion late each video is stored as two vectors (its frames and its sound, the very
// vectors `embed --fusion late` prints) and search ranks it by W · frames score + (1 − W) · sound score; a video
// without sound keeps its frames score; eval --fusion late ranks a BEIR corpus the same way. With the default
// fusion a video is one vector, equal to `embed --video`.
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
using testing::TempDir;

testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

// A 2 s clip of the ffmpeg test pattern `pattern` with a tone of `hz` (0: no audio stream).
void write_clip(const fs::path& path, const std::string& pattern, int hz) {
  std::string args = fmt::format("-f lavfi -i {}=size=160x96:rate=10 ", pattern);
  if (hz > 0) args += fmt::format("-f lavfi -i sine=frequency={}:sample_rate=16000 -c:a pcm_s16le ", hz);
  testing::ffmpeg(args + "-t 2 -c:v ffv1 " + testing::q(path));
}

const std::string settings = "--video-min-pixels 3136 --video-max-pixels 6272";

std::string model() { return testing::test_model("tiny-f32").string(); }

std::vector<float> floats(const nlohmann::json& a) { return a.get<std::vector<float>>(); }

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Three clips (two with sound, one silent) and the vectors `embed --fusion late` gives them: (frames, sound).
using LateVectors = std::map<std::string, std::pair<std::vector<float>, std::vector<float>>>;
const char* const QUERY = "a tone over colour bars";

LateVectors write_late_clips(const TempDir& tmp, const fs::path& lib) {
  fs::create_directories(lib);
  write_clip(lib / "bars.mkv", "testsrc2", 300);
  write_clip(lib / "mandel.mkv", "mandelbrot", 900);
  write_clip(lib / "silent.mkv", "rgbtestsrc", 0);
  LateVectors doc;
  for (const char* name : {"bars.mkv", "mandel.mkv", "silent.mkv"}) {
    auto o = run(tmp, fmt::format("embed --model '{}' --video '{}' --fusion late {}", model(), (lib / name).string(),
                                  settings));
    EXPECT_EQ(o.rc, 0) << o.err;
    const auto j = nlohmann::json::parse(o.out);
    doc[name].first = floats(j["embedding"]);
    if (j.contains("audio_embedding")) doc[name].second = floats(j["audio_embedding"]);
  }
  return doc;
}

// The late-fusion scores of the documents for query vector q, best first.
std::vector<std::pair<double, std::string>> late_ranking(const LateVectors& doc, const std::vector<float>& q,
                                                          double w) {
  std::vector<std::pair<double, std::string>> want;
  for (const auto& [name, v] : doc) {
    const double frames = dot(q, v.first);
    want.emplace_back(v.second.empty() ? frames : w * frames + (1 - w) * dot(q, v.second), name);
  }
  std::sort(want.rbegin(), want.rend());
  return want;
}

std::vector<float> query_vector(const TempDir& tmp) {
  auto o = run(tmp, fmt::format("embed --model '{}' --query '{}'", model(), QUERY));
  EXPECT_EQ(o.rc, 0) << o.err;
  return floats(nlohmann::json::parse(o.out)["embedding"]);
}

TEST(VideoIndex, LateFusionStoresTwoVectorsAndRanksByTheWeightedScore) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  const LateVectors doc = write_late_clips(tmp, lib);
  auto o = run(tmp, fmt::format("index '{}' --index '{}' --model '{}' --fusion late {} --format json", lib.string(),
                                idx.string(), model(), settings));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["added"], 3);
  // Stored: frames and sound of the two clips with sound, frames only of the silent one.
  auto store = index::Store::open(idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m, {"video"});
  EXPECT_EQ(ids.size(), 3u);
  store->load_vectors(ids, m, {"video-sound"});
  EXPECT_EQ(ids.size(), 2u);

  // The vectors embed prints for the same clips and the query.
  EXPECT_TRUE(doc.at("silent.mkv").second.empty()) << "no sound, no sound vector";
  EXPECT_EQ(doc.at("bars.mkv").second.size(), doc.at("bars.mkv").first.size());
  const auto q = query_vector(tmp);

  // The exact index, then the same one searched through HNSW graphs (late_search.h: candidates of each view, scored
  // again from their stored vectors); a second run changes the search structure and re-embeds nothing.
  for (const char* vectors : {"flat", "hnsw"}) {
    if (std::string(vectors) == "hnsw") {
      o = run(tmp, fmt::format("index '{}' --index '{}' --model '{}' --fusion late {} --vectors hnsw --format json",
                               lib.string(), idx.string(), model(), settings));
      ASSERT_EQ(o.rc, 0) << o.err;
      EXPECT_EQ(index::Store::open(idx)->settings().vectors, "hnsw");
    }
    for (double w : {0.0, 0.3, 1.0}) {
      o = run(tmp,
              fmt::format("search '{}' --index '{}' --late-weight {} --format json -k 10", QUERY, idx.string(), w));
      ASSERT_EQ(o.rc, 0) << o.err;
      const auto hits = testing::json_lines(o.out);
      ASSERT_EQ(hits.size(), 3u) << "one hit per video, sound vectors are not hits of their own (" << vectors << ")";
      const auto want = late_ranking(doc, q, w);
      for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_EQ(fs::path(hits[i]["path"].get<std::string>()).filename(), want[i].second) << vectors << ", " << w;
        EXPECT_NEAR(hits[i]["score"].get<double>(), want[i].first, 2e-5) << vectors << ", weight " << w;
        EXPECT_EQ(hits[i]["modality"], "video");
      }
    }
  }
}

// eval --fusion late on a BEIR folder of the same clips: the saved run holds each document once, with the combined
// score.
TEST(VideoIndex, EvalRanksLateFusionByTheWeightedScore) {
  TempDir tmp;
  const fs::path ds = tmp / "ds";
  const LateVectors doc = write_late_clips(tmp, ds);
  {
    std::ofstream c(ds / "corpus.jsonl");
    for (const auto& [name, v] : doc) c << fmt::format(R"({{"_id": "{}", "video": "{}"}})", name, name) << "\n";
    std::ofstream(ds / "queries.jsonl") << fmt::format(R"({{"_id": "q1", "text": "{}"}})", QUERY) << "\n";
    fs::create_directories(ds / "qrels");
    std::ofstream(ds / "qrels" / "test.tsv") << "query-id\tcorpus-id\tscore\nq1\tbars.mkv\t1\n";
  }
  const auto q = query_vector(tmp);
  const double w = 0.3;
  auto o = run(tmp, fmt::format("eval --dataset '{}' --model '{}' --fusion late --late-weight {} {} --save-run '{}'",
                                ds.string(), model(), w, settings, (tmp / "run.trec").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  std::ifstream in(tmp / "run.trec");
  std::vector<std::pair<double, std::string>> got;
  std::string qid, q0, docid, tag;
  int rank = 0;
  double score = 0;
  while (in >> qid >> q0 >> docid >> rank >> score >> tag) got.emplace_back(score, docid);
  const auto want = late_ranking(doc, q, w);
  ASSERT_EQ(got.size(), want.size()) << "each document once";
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].second, want[i].second) << i;
    EXPECT_NEAR(got[i].first, want[i].first, 2e-5) << i;
  }
}

TEST(VideoIndex, DefaultFusionIsOneVectorEqualToEmbed) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  fs::create_directories(lib);
  write_clip(lib / "bars.mkv", "testsrc2", 300);
  auto o = run(tmp, fmt::format("index '{}' --index '{}' --model '{}' {} --format json", lib.string(), idx.string(),
                                model(), settings));
  ASSERT_EQ(o.rc, 0) << o.err;
  auto store = index::Store::open(idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m);
  ASSERT_EQ(ids.size(), 1u);
  o = run(tmp, fmt::format("embed --model '{}' --video '{}' {}", model(), (lib / "bars.mkv").string(), settings));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto v = floats(nlohmann::json::parse(o.out)["embedding"]);
  EXPECT_GE(dot(v, m), 0.99999);
  // A video query finds it.
  o = run(tmp, fmt::format("search --video '{}' --index '{}' --format json", (lib / "bars.mkv").string(),
                           idx.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto hits = testing::json_lines(o.out);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0]["modality"], "video");
}

}  // namespace
}  // namespace oe
