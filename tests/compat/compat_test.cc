// What the binary gives must not change by accident: tests/compat/data holds the output of an earlier build
// (tests/compat/make_fixtures.sh: `embed` vectors for every modality and fusion mode, two index folders of the
// first catalog format and what `search` found in them). Here the binary under test embeds and searches the same
// inputs with the same tiny test models.
//
// Bit for bit where this CPU has the kernel features of the machine that wrote the fixtures and this is the same
// build type (cpu.txt: the kernels' rounding depends on both; a debug build does not contract multiply-adds),
// otherwise within the parity tolerances (fp32 cosine ≥ 0.99999, bf16 ≥ 0.999; search scores within 1e-4 and the
// same ranking).
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/json_lines.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where make_fixtures.sh ran; paths in the fixtures start with it.
const std::string FIXTURE_ROOT = "/tmp/omni-embed-compat/";
const char* const VIDEO_BUDGET = "--video-min-pixels 3136 --video-max-pixels 6272";

fs::path data() { return fs::path(OE_SOURCE_DIR) / "tests" / "compat" / "data"; }

std::string q(const fs::path& p) { return fmt::format("'{}'", p.string()); }

// The CPU features listed in cpu.txt, read here the same way.
std::string cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  const std::set<std::string> wanted = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> have;
    for (std::string w; words >> w;)
      if (wanted.count(w)) have.insert(w);
    std::string out;
    for (const auto& w : have) out += (out.empty() ? "" : " ") + w;
    return out;
  }
  return "";
}

// The value of `key=` in cpu.txt.
std::string fixture_value(const std::string& key) {
  const std::string text = testing::read_file(data() / "cpu.txt");
  std::smatch m;
  return std::regex_search(text, m, std::regex("(^|\n)" + key + "=([^\n]*)")) ? m[2].str() : "?";
}

bool same_cpu_kind() {
  static const bool same = [] {
    const std::string flags = fixture_value("flags"), build = fixture_value("build");
    const bool s = flags == cpu_flags() && build == OE_COMPAT_BUILD;
    if (!s)
      std::printf("fixtures written by a %s build on a CPU with [%s]; this is a %s build on [%s]: comparing within "
                  "tolerances\n",
                  build.c_str(), flags.c_str(), OE_COMPAT_BUILD, cpu_flags().c_str());
    return s;
  }();
  return same;
}

std::string run_ok(const std::string& args, int allowed_rc = 0) {
  std::string out;
  const int rc = testing::run_stdout(fmt::format("'{}' {} 2>/dev/null", OE_CLI, args), &out);
  EXPECT_TRUE(rc == 0 || rc == allowed_rc) << args << " exited " << rc;
  return out;
}

std::vector<json> read_lines(const fs::path& p) { return testing::json_lines(testing::read_file(p)); }

void expect_vectors(const json& want, const json& got, const std::string& key, double tolerance,
                    const std::string& what) {
  ASSERT_EQ(want.contains(key), got.contains(key)) << what << ": " << key;
  if (!want.contains(key)) return;
  const auto a = want[key].get<std::vector<float>>(), b = got[key].get<std::vector<float>>();
  if (same_cpu_kind()) {
    EXPECT_EQ(a, b) << what << ": " << key << " is not bit-identical";
  } else {
    EXPECT_GE(testing::cosine(a, b), tolerance) << what << ": " << key;
  }
}

struct EmbedCase {
  const char* fixture;  // vectors-<dtype>-<fusion>.jsonl
  const char* model;
  const char* args;
  double tolerance;
};

void PrintTo(const EmbedCase& c, std::ostream* os) { *os << c.fixture; }

class CompatEmbed : public ::testing::TestWithParam<EmbedCase> {};

TEST_P(CompatEmbed, SameLinesAndVectors) {
  const EmbedCase& c = GetParam();
  const auto want = read_lines(data() / c.fixture);
  ASSERT_FALSE(want.empty());
  const auto got = testing::json_lines(run_ok(fmt::format("embed --model {} --input {} {} {}",
                                                          q(testing::test_model(c.model)), q(data() / "items.jsonl"),
                                                          c.args, VIDEO_BUDGET),
                                              /*allowed_rc=*/1));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const json& w = want[i];
    json g = got[i];
    const std::string what = fmt::format("{} line {} ({})", c.fixture, i + 1, w.value("id", ""));
    g.erase("seconds");
    for (const char* key : {"index", "id", "role", "n_tokens", "truncated", "fusion"}) {
      EXPECT_EQ(w.contains(key), g.contains(key)) << what << ": " << key;
      if (w.contains(key) && g.contains(key)) {
        EXPECT_EQ(w[key], g[key]) << what << ": " << key;
      }
    }
    if (w.contains("error")) {
      ASSERT_TRUE(g.contains("error")) << what;
      std::string expected = w["error"].get<std::string>();
      for (size_t p; (p = expected.find(FIXTURE_ROOT)) != std::string::npos;)
        expected.replace(p, FIXTURE_ROOT.size(), data().string() + "/");
      EXPECT_EQ(g["error"].get<std::string>(), expected) << what;
    }
    expect_vectors(w, g, "embedding", c.tolerance, what);
    expect_vectors(w, g, "audio_embedding", c.tolerance, what);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CompatEmbed,
    ::testing::Values(EmbedCase{"vectors-fp32-separate.jsonl", "tiny-f32", "--dtype fp32 --fusion separate --batch-tokens 300", 0.99999},
                      EmbedCase{"vectors-fp32-interleaved.jsonl", "tiny-f32", "--dtype fp32 --fusion interleaved --batch-tokens 300", 0.99999},
                      EmbedCase{"vectors-fp32-video.jsonl", "tiny-f32", "--dtype fp32 --fusion video --batch-tokens 300", 0.99999},
                      EmbedCase{"vectors-fp32-audio.jsonl", "tiny-f32", "--dtype fp32 --fusion audio --batch-tokens 300", 0.99999},
                      EmbedCase{"vectors-fp32-late.jsonl", "tiny-f32", "--dtype fp32 --fusion late --batch-tokens 300", 0.99999},
                      EmbedCase{"vectors-bf16-separate.jsonl", "tiny-bf16", "--fusion separate", 0.999},
                      EmbedCase{"vectors-bf16-late.jsonl", "tiny-bf16", "--fusion late", 0.999}),
    [](const auto& info) {
      std::string n = info.param.fixture;
      n = n.substr(8, n.size() - 8 - 6);  // "vectors-" ... ".jsonl"
      for (char& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

// An index folder of the fixtures, copied where this test may write (search caches its vector file there).
fs::path copy_index(const testing::TempDir& tmp, const char* name) {
  fs::copy(data() / name, tmp / name, fs::copy_options::recursive);
  return tmp / name;
}

void expect_same_hits(const fs::path& fixture, const std::string& out) {
  const auto want = read_lines(fixture);
  const auto got = testing::json_lines(out);
  ASSERT_FALSE(want.empty());
  ASSERT_EQ(got.size(), want.size()) << fixture;
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string what = fmt::format("{} hit {}", fixture.filename().string(), i + 1);
    for (const char* key : {"rank", "path", "modality", "segment", "start", "end", "unit", "preview", "key"}) {
      EXPECT_EQ(want[i].contains(key), got[i].contains(key)) << what << ": " << key;
      if (want[i].contains(key) && got[i].contains(key)) {
        EXPECT_EQ(want[i][key], got[i][key]) << what << ": " << key;
      }
    }
    if (same_cpu_kind()) {
      EXPECT_EQ(want[i]["score"], got[i]["score"]) << what;
    } else {
      EXPECT_NEAR(want[i]["score"].get<double>(), got[i]["score"].get<double>(), 1e-4) << what;
    }
  }
}

std::string search_args(const fs::path& index) {
  return fmt::format("search --model {} --dtype fp32 --index {} -k 10 --format json",
                     q(testing::test_model("tiny-f32")), q(index));
}

TEST(CompatIndex, FirstFormatOpensAndSearchesAsBefore) {
  testing::TempDir tmp;
  const fs::path index = copy_index(tmp, "index-format1");
  EXPECT_NE(run_ok(fmt::format("index --index {} --check", q(index))).find("consistent"), std::string::npos);
  expect_same_hits(data() / "search-text.jsonl", run_ok(search_args(index) + " 'a cat'"));
  expect_same_hits(data() / "search-video.jsonl",
                   run_ok(search_args(index) + " --video " + q(data() / "media" / "clip.mkv")));
}

TEST(CompatIndex, FirstFormatLateFusionSearchesAsBefore) {
  testing::TempDir tmp;
  const fs::path index = copy_index(tmp, "index-late-format1");
  EXPECT_NE(run_ok(fmt::format("index --index {} --check", q(index))).find("consistent"), std::string::npos);
  expect_same_hits(data() / "search-late.jsonl", run_ok(search_args(index) + " 'a tone' --late-weight 0.3"));
  expect_same_hits(data() / "search-late-video.jsonl",
                   run_ok(search_args(index) + " --video " + q(data() / "media" / "clip.mkv")));
}

// The recorded embedding settings still match what the same flags give today, so the old index takes new sources
// (a settings mismatch would refuse them), and what was there is kept.
TEST(CompatIndex, FirstFormatTakesNewSourcesWithTheSameSettings) {
  for (const char* name : {"index-format1", "index-late-format1"}) {
    testing::TempDir tmp;
    const fs::path index = copy_index(tmp, name);
    const fs::path note = testing::write_file(tmp / "notes" / "note.txt", "A new note about a cat.");
    const std::string late = std::string(name) == "index-late-format1" ? "--fusion late" : "";
    const std::string out = run_ok(fmt::format("index --model {} --dtype fp32 {} {} --index {} {} --format json",
                                               q(testing::test_model("tiny-f32")), VIDEO_BUDGET, late, q(index),
                                               q(note.parent_path())));
    const auto summary = testing::json_lines(out);
    ASSERT_EQ(summary.size(), 1u) << name << ": " << out;
    EXPECT_EQ(summary[0]["added"], 1) << name;
    EXPECT_EQ(summary[0]["sources"], 7) << name;
    EXPECT_NE(run_ok(fmt::format("index --index {} --check", q(index))).find("consistent"), std::string::npos);
  }
}

}  // namespace
}  // namespace oe
