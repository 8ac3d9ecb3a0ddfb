// Audio in the index: a long file is cut into --media-window segments with timestamps (overlapping with
// --media-overlap), each segment's vector equals `embed --audio` of the same samples, an audio query finds them,
// and a clip too short for one audio token is recorded as a failure naming the file. Evaluation embeds audio whole.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

// 16 kHz mono 16-bit PCM WAV of samples[begin, end).
void write_wav(const fs::path& path, const std::vector<int16_t>& samples, size_t begin, size_t end) {
  const uint32_t data = static_cast<uint32_t>((end - begin) * 2), rate = 16000, byte_rate = 32000;
  const uint16_t pcm = 1, channels = 1, align = 2, bits = 16;
  const uint32_t riff = 36 + data, fmt_size = 16;
  std::ofstream f(path, std::ios::binary);
  auto put = [&](const void* p, size_t n) { f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); };
  put("RIFF", 4), put(&riff, 4), put("WAVE", 4), put("fmt ", 4), put(&fmt_size, 4), put(&pcm, 2), put(&channels, 2);
  put(&rate, 4), put(&byte_rate, 4), put(&align, 2), put(&bits, 2), put("data", 4), put(&data, 4);
  put(samples.data() + begin, data);
  ASSERT_TRUE(f.good()) << path;
}

// 70 s whose pitch changes every 10 s, so that the segments differ.
std::vector<int16_t> seventy_seconds() {
  std::vector<int16_t> s(70 * 16000);
  for (size_t i = 0; i < s.size(); ++i) {
    const double t = static_cast<double>(i) / 16000.0, f = 200.0 + 90.0 * std::floor(t / 10.0);
    s[i] = static_cast<int16_t>(std::lround(9000.0 * std::sin(2 * M_PI * f * t)));
  }
  return s;
}

std::string index_args(const fs::path& lib, const fs::path& idx, const std::string& extra) {
  return fmt::format("index '{}' --index '{}' --model '{}' --format json {}", lib.string(), idx.string(),
                     testing::test_model("tiny-f32").string(), extra);
}

TEST(AudioIndex, LongAudioIsCutIntoTimedSegmentsThatEqualEmbeddingTheirSamples) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  fs::create_directories(lib);
  const auto samples = seventy_seconds();
  write_wav(lib / "talk.wav", samples, 0, samples.size());
  write_wav(lib / "click.wav", samples, 0, 100);  // 100 samples: no audio token
  auto o = run(tmp, index_args(lib, idx, "--media-window 30"));
  EXPECT_EQ(o.rc, 1) << o.err;  // the click failed, the talk is indexed
  const auto report = nlohmann::json::parse(o.out);
  EXPECT_EQ(report["added"], 1);
  EXPECT_EQ(report["failed"], 1);
  EXPECT_NE(o.err.find("click.wav"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("too short"), std::string::npos) << o.err;

  // An audio query: the 30-60 s window itself must be the best hit, with its time range.
  write_wav(tmp / "middle.wav", samples, 30 * 16000, 60 * 16000);
  o = run(tmp, fmt::format("search --audio '{}' --index '{}' -k 5 --format json", (tmp / "middle.wav").string(),
                           idx.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto hits = testing::json_lines(o.out);
  ASSERT_EQ(hits.size(), 3u) << "0-30, 30-60 and 60-70 s";
  std::vector<std::pair<double, double>> spans;
  for (const auto& h : hits) {
    EXPECT_EQ(h["modality"], "audio");
    EXPECT_EQ(h["unit"], "seconds");
    spans.emplace_back(h["start"].get<double>(), h["end"].get<double>());
  }
  EXPECT_EQ(spans[0], std::make_pair(30.0, 60.0));
  std::sort(spans.begin(), spans.end());
  EXPECT_EQ(spans, (std::vector<std::pair<double, double>>{{0, 30}, {30, 60}, {60, 70}}));

  // The stored vector of the 30-60 s segment is what `embed --audio` gives for those samples (as a document).
  auto e = run(tmp, fmt::format("embed --model '{}' --audio '{}'", testing::test_model("tiny-f32").string(),
                                (tmp / "middle.wav").string()));
  ASSERT_EQ(e.rc, 0) << e.err;
  const auto want = testing::json_lines(e.out).at(0)["embedding"].get<std::vector<float>>();
  auto store = index::Store::open(idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m);
  const auto described = store->describe(ids);
  bool found = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (described[i].start != 30.0) continue;
    found = true;
    std::vector<float> v(m.begin() + static_cast<std::ptrdiff_t>(i * want.size()),
                         m.begin() + static_cast<std::ptrdiff_t>((i + 1) * want.size()));
    EXPECT_GE(testing::cosine(v, want), 0.99999);
  }
  EXPECT_TRUE(found);

  // Overlapping windows: 30 s every 20 s over 70 s gives 0-30, 20-50, 40-70 (no tail made only of overlap).
  o = run(tmp, index_args(lib, tmp / "idx2", "--media-window 30 --media-overlap 10"));
  auto store2 = index::Store::open(tmp / "idx2");
  std::vector<int64_t> ids2;
  std::vector<float> m2;
  store2->load_vectors(ids2, m2);
  std::vector<std::pair<double, double>> spans2;
  for (const auto& h : store2->describe(ids2)) spans2.emplace_back(h.start, h.end);
  std::sort(spans2.begin(), spans2.end());
  EXPECT_EQ(spans2, (std::vector<std::pair<double, double>>{{0, 30}, {20, 50}, {40, 70}}));

  // Window settings that cannot work are refused before anything is written.
  o = run(tmp, index_args(lib, tmp / "idx3", "--media-window 30 --media-overlap 30"));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_NE(o.err.find("--media-overlap"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(tmp / "idx3"));
}

// In an evaluation every corpus item is one vector: an audio document longer than the index's media window is
// embedded whole (cut at the clip length), not as segments, so each document is ranked once.
TEST(AudioIndex, EvalEmbedsEachAudioDocumentWhole) {
  TempDir tmp;
  const fs::path data = tmp / "data";
  fs::create_directories(data / "qrels");
  const auto samples = seventy_seconds();
  write_wav(data / "long.wav", samples, 0, 40 * 16000);
  write_wav(data / "short.wav", samples, 0, 5 * 16000);
  std::ofstream(data / "corpus.jsonl") << R"({"_id": "a1", "audio": "long.wav"})" "\n"
                                       << R"({"_id": "a2", "audio": "short.wav", "text": "a short tone"})" "\n"
                                       << R"({"_id": "t1", "text": "a text about tones"})" "\n";
  std::ofstream(data / "queries.jsonl") << R"({"_id": "q1", "text": "a long tone"})" "\n";
  std::ofstream(data / "qrels" / "test.tsv") << "query-id\tcorpus-id\tscore\nq1\ta1\t1\n";
  auto o = run(tmp, fmt::format("eval --dataset '{}' --model '{}' --cache '{}' --format json --save-run '{}'",
                                data.string(), testing::test_model("tiny-f32").string(), (tmp / "cache").string(),
                                (tmp / "run").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["modes"]["all"]["corpus"], 3);
  std::ifstream run_file(tmp / "run");
  std::vector<std::string> docs;
  for (std::string qid, q0, doc, rank, score, tag; run_file >> qid >> q0 >> doc >> rank >> score >> tag;)
    docs.push_back(doc);
  std::sort(docs.begin(), docs.end());
  EXPECT_EQ(docs, (std::vector<std::string>{"a1", "a2", "t1"})) << "each document ranked once";
}

}  // namespace
}  // namespace oe
