// `omni-embed mine` end to end on a small generated BEIR dataset (texts, an image document, an image query) and the
// tiny random-weight checkpoint: the output format, positives never among the negatives, the perc-pos bound, scores
// equal to cosines recomputed from `omni-embed embed` of the written items, the cache re-used by a second run, and
// bad input refused with a message naming it.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/json_lines.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

const fs::path DEMO = fs::path(OE_SOURCE_DIR) / "datasets" / "quality-demo";
std::string model() { return testing::test_model("tiny-f32").string(); }

testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

// Twelve text documents (two with titles), two image documents, five queries (one a picture). Positives: q1 two
// (d1, d2), q2 one (d3; d4 judged not relevant, so a possible negative), q3 the red circle, q5 (the picture) the
// blue star; q4 has judgments of 0 only (no line).
fs::path make_dataset(const fs::path& ds) {
  const char* texts[] = {"Cats purr when they are content.",    "A kitten sleeps on the sofa all day.",
                         "Boarding for flight 718 is at gate B12.", "The train to Lyon leaves at noon.",
                         "An invoice for 17 euros of repair work.", "The algebra exam covers linear equations.",
                         "Entropy always grows in a closed system.", "Bake the bread for forty minutes.",
                         "The river floods every spring.",          "Tulips bloom in April.",
                         "A violin has four strings.",             "Volcanoes erupt molten rock."};
  std::string corpus;
  for (int i = 0; i < 12; ++i)
    corpus += fmt::format("{{\"_id\": \"d{}\", \"title\": \"{}\", \"text\": \"{}\"}}\n", i + 1,
                          i == 0 ? "Cats" : (i == 6 ? "Physics" : ""), texts[i]);
  fs::create_directories(ds / "images");
  fs::copy_file(DEMO / "images" / "shape-red-circle-0.png", ds / "images" / "red.png");
  fs::copy_file(DEMO / "images" / "shape-blue-star-0.png", ds / "images" / "star.png");
  fs::copy_file(DEMO / "images" / "query-blue-star.png", ds / "images" / "query-star.png");
  corpus += "{\"_id\": \"img-red\", \"title\": \"\", \"text\": \"\", \"image\": \"images/red.png\"}\n";
  corpus += "{\"_id\": \"img-star\", \"title\": \"\", \"text\": \"a star\", \"image\": \"images/star.png\"}\n";
  write_file(ds / "corpus.jsonl", corpus);
  write_file(ds / "queries.jsonl",
             "{\"_id\": \"q1\", \"text\": \"cats and kittens\"}\n"
             "{\"_id\": \"q2\", \"text\": \"which gate for my flight\"}\n"
             "{\"_id\": \"q3\", \"text\": \"a red circle\"}\n"
             "{\"_id\": \"q4\", \"text\": \"music\"}\n"
             "{\"_id\": \"q5\", \"text\": \"\", \"image\": \"images/query-star.png\"}\n"
             "{\"_id\": \"q6\", \"text\": \"not judged\"}\n");
  write_file(ds / "qrels" / "train.tsv",
             "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t1\nq2\td4\t0\nq3\timg-red\t1\n"
             "q4\td11\t0\nq5\timg-star\t1\n");
  return ds;
}

const std::map<std::string, std::set<std::string>> POSITIVES = {
    {"q1", {"d1", "d2"}}, {"q2", {"d3"}}, {"q3", {"img-red"}}, {"q5", {"img-star"}}};

std::vector<nlohmann::json> read_lines(const fs::path& p) { return testing::json_lines(testing::read_file(p)); }

// The format of every line, positives never among the negatives, negatives best first; returns the pairs seen.
std::set<std::pair<std::string, std::string>> check_format(const std::vector<nlohmann::json>& lines, size_t k) {
  std::set<std::pair<std::string, std::string>> pairs;
  const std::vector<std::string> keys = {"query",       "positive",       "negatives",       "query_id",
                                         "positive_id", "negative_ids",   "positive_score",  "negative_scores"};
  for (const auto& j : lines) {
    std::vector<std::string> got;
    for (const auto& [key, v] : j.items()) got.push_back(key);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), std::set<std::string>(keys.begin(), keys.end()));
    const std::string q = j["query_id"], p = j["positive_id"];
    pairs.insert({q, p});
    EXPECT_TRUE(POSITIVES.count(q) && POSITIVES.at(q).count(p)) << q << " " << p;
    EXPECT_LE(j["negatives"].size(), k);
    EXPECT_EQ(j["negatives"].size(), j["negative_ids"].size());
    EXPECT_EQ(j["negatives"].size(), j["negative_scores"].size());
    for (const auto& item : {j["query"], j["positive"]}) EXPECT_FALSE(item.contains("role")) << item;
    for (size_t n = 0; n < j["negative_ids"].size(); ++n) {
      EXPECT_FALSE(POSITIVES.at(q).count(j["negative_ids"][n])) << q << ": positive " << j["negative_ids"][n];
      EXPECT_FALSE(j["negatives"][n].contains("role"));
      if (n > 0) {
        EXPECT_GE(j["negative_scores"][n - 1].get<double>(), j["negative_scores"][n].get<double>());
      }
    }
    for (const auto& item : j["negatives"])
      for (const char* m : {"image", "audio", "video"})
        if (item.contains(m)) {
          EXPECT_TRUE(fs::path(item[m].get<std::string>()).is_absolute()) << item;
          EXPECT_TRUE(fs::is_regular_file(item[m].get<std::string>())) << item;
        }
  }
  return pairs;
}

TEST(MineCli, WritesPairsWhoseScoresAreTheCosinesOfTheItems) {
  TempDir tmp;
  const fs::path ds = make_dataset(tmp / "ds");
  const std::string base = fmt::format("mine --dataset '{}' --model '{}' --cache '{}'", ds.string(), model(),
                                       (tmp / "cache").string());
  // K = 13 with top-k: every candidate is written (12 for q1, whose pairs are short; 13 for the others).
  auto o = run(tmp, base + fmt::format(" --filter top-k --negatives 13 --out '{}' --report '{}'",
                                       (tmp / "topk.jsonl").string(), (tmp / "report.json").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.err.find("14 corpus items (14 embedded now"), std::string::npos) << o.err;
  const auto lines = read_lines(tmp / "topk.jsonl");
  ASSERT_EQ(lines.size(), 5u);  // one per (query, positive); q4 has none, q6 is not judged
  const auto pairs = check_format(lines, 13);
  EXPECT_EQ(pairs.size(), 5u);
  for (const auto& j : lines) EXPECT_EQ(j["negatives"].size(), j["query_id"] == "q1" ? 12u : 13u) << j["query_id"];
  // The items as embed reads them: titles joined, media absolute; q2 may get d4 (judged 0) as a negative.
  for (const auto& j : lines) {
    if (j["positive_id"] == "d1") {
      EXPECT_EQ(j["positive"].dump(), R"({"text":"Cats Cats purr when they are content."})");
    }
    if (j["positive_id"] == "img-star") {
      EXPECT_EQ(j["positive"]["text"], "a star");
      EXPECT_EQ(j["positive"]["image"], fs::weakly_canonical(ds / "images" / "star.png").string());
      EXPECT_EQ(j["query"]["image"], fs::weakly_canonical(ds / "images" / "query-star.png").string());
      EXPECT_FALSE(j["query"].contains("text"));
    }
    if (j["positive_id"] == "img-red") {
      EXPECT_FALSE(j["positive"].contains("text"));
    }
  }
  // The report: 5 pairs of 4 queries; every candidate kept (top-k removes none); 14 − positives candidates each.
  const auto rep = nlohmann::json::parse(testing::read_file(tmp / "report.json"));
  EXPECT_EQ(rep["filter"], "top-k");
  EXPECT_EQ(rep["pairs"], 5);
  EXPECT_EQ(rep["queries"], 4);
  EXPECT_EQ(rep["removed"], 0);
  EXPECT_EQ(rep["candidates"], 12 * 2 + 13 * 3);
  EXPECT_EQ(rep["negatives"], 63);
  EXPECT_EQ(rep["short_pairs"], 2);
  EXPECT_EQ(rep["short_queries"], 1);

  // Every score is the cosine of the written items embedded again by `embed` (the query with the query role).
  std::string input;
  for (const auto& j : lines) {
    auto q = j["query"];
    q["role"] = "query";
    input += q.dump() + "\n" + j["positive"].dump() + "\n";
    for (const auto& n : j["negatives"]) input += n.dump() + "\n";
  }
  write_file(tmp / "items.jsonl", input);
  auto e = run(tmp, fmt::format("embed --input '{}' --model '{}'", (tmp / "items.jsonl").string(), model()));
  ASSERT_EQ(e.rc, 0) << e.err;
  const auto vectors = testing::json_lines(e.out);
  size_t row = 0;
  for (const auto& j : lines) {
    const auto qv = vectors.at(row++)["embedding"].get<std::vector<float>>();
    const auto pv = vectors.at(row++)["embedding"].get<std::vector<float>>();
    // Tolerance: the cached and the new vectors come from differently packed batches (cosine ≥ 0.99999 apart).
    EXPECT_NEAR(testing::cosine(qv, pv), j["positive_score"].get<double>(), 1e-4) << j["positive_id"];
    for (size_t n = 0; n < j["negatives"].size(); ++n) {
      const auto nv = vectors.at(row++)["embedding"].get<std::vector<float>>();
      EXPECT_NEAR(testing::cosine(qv, nv), j["negative_scores"][n].get<double>(), 1e-4) << j["negative_ids"][n];
    }
  }
  EXPECT_EQ(row, vectors.size());

  // Again with perc-pos (the default): nothing embedded, every negative below 0.95 · s⁺, and the same s⁺.
  o = run(tmp, base + fmt::format(" --out '{}'", (tmp / "perc.jsonl").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.err.find("14 corpus items (0 embedded now"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("queries (0 embedded now"), std::string::npos) << o.err;
  const auto perc = read_lines(tmp / "perc.jsonl");
  ASSERT_EQ(perc.size(), 5u);
  check_format(perc, 2);
  std::map<std::pair<std::string, std::string>, nlohmann::json> all;  // every candidate of each pair
  for (const auto& j : lines) all[{j["query_id"], j["positive_id"]}] = j;
  for (const auto& j : perc) {
    const float pos = j["positive_score"].get<float>();
    const auto& full = all.at({j["query_id"], j["positive_id"]});
    EXPECT_EQ(j["positive_score"], full["positive_score"]);
    for (const auto& s : j["negative_scores"]) EXPECT_LT(s.get<float>(), 0.95 * pos) << j["query_id"];
    // Exactly the first two candidates below the bound.
    std::vector<std::string> want;
    for (size_t n = 0; n < full["negative_ids"].size() && want.size() < 2; ++n)
      if (full["negative_scores"][n].get<float>() < 0.95 * pos) want.push_back(full["negative_ids"][n]);
    EXPECT_EQ(j["negative_ids"].get<std::vector<std::string>>(), want) << j["query_id"];
  }

  // sample: the same seed gives the same file; draws come from the first three candidates below the bound.
  const std::string sample = base + " --filter sample --sample-top 3 --seed 5 --out ";
  ASSERT_EQ(run(tmp, sample + "'" + (tmp / "s1.jsonl").string() + "'").rc, 0);
  ASSERT_EQ(run(tmp, sample + "'" + (tmp / "s2.jsonl").string() + "'").rc, 0);
  EXPECT_EQ(testing::read_file(tmp / "s1.jsonl"), testing::read_file(tmp / "s2.jsonl"));
  for (const auto& j : read_lines(tmp / "s1.jsonl")) {
    const float pos = j["positive_score"].get<float>();
    const auto& full = all.at({j["query_id"], j["positive_id"]});
    std::set<std::string> pool;
    for (size_t n = 0; n < full["negative_ids"].size() && pool.size() < 3; ++n)
      if (full["negative_scores"][n].get<float>() < 0.95 * pos) pool.insert(full["negative_ids"][n]);
    EXPECT_EQ(j["negatives"].size(), std::min<size_t>(2, pool.size()));
    for (const auto& id : j["negative_ids"]) EXPECT_TRUE(pool.count(id)) << j["query_id"] << " drew " << id;
  }
}

TEST(MineCli, BadInputIsRefusedNamingIt) {
  TempDir tmp;
  const fs::path ds = make_dataset(tmp / "ds");
  const fs::path out = tmp / "out.jsonl";
  const std::string base =
      fmt::format("mine --dataset '{}' --model '{}' --out '{}'", ds.string(), model(), out.string());
  auto o = run(tmp, base + " --split dev");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find((ds / "qrels" / "dev.tsv").string()), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("is missing"), std::string::npos) << o.err;
  o = run(tmp, base + " --negatives 0");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("--negatives 0"), std::string::npos) << o.err;
  for (const char* p : {"0", "1.5", "-0.2"}) {
    o = run(tmp, base + fmt::format(" --perc {}", p));
    EXPECT_NE(o.rc, 0) << p;
    EXPECT_NE(o.err.find(fmt::format("--perc {}", p)), std::string::npos) << o.err;
  }
  o = run(tmp, base + " --filter best");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("--filter 'best'"), std::string::npos) << o.err;
  o = run(tmp, fmt::format("mine --dataset '{}' --model '{}' --out '{}'", ds.string(), model(),
                           (tmp / "no-such-folder" / "out.jsonl").string()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find((tmp / "no-such-folder").string()), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(out)) << "an output written although every run failed";
  EXPECT_FALSE(fs::exists(ds / ".omni-embed-cache")) << "embedded before the output was checked";
}

}  // namespace
}  // namespace oe
