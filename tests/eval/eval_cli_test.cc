// `omni-embed eval` end to end: JSON and table output, warnings for queries on one side only, and errors that name
// the file and the line.
#include <cmath>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "eval_test_util.h"

namespace oe {
namespace {

using testing::TempDir;
using testing::write_file;

using testing::Outcome;

Outcome eval_cli(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' eval {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

// q1: d1 (2) first, then d3 (1) and d2 (0) tied at 0.8, d3 first by id; d4 (3) never retrieved.
// q2: its one relevant document second. q9: no judgments. q5: judged, no results.
void write_files(const TempDir& tmp) {
  write_file(tmp / "qrels.txt", "q1 0 d1 2\nq1 0 d2 0\nq1 0 d3 1\nq1 0 d4 3\nq2 0 a 1\nq5 0 z 1\n");
  write_file(tmp / "run.txt",
             "q1 Q0 d1 1 0.9 sys\nq1 Q0 d2 2 0.8 sys\nq1 Q0 d3 3 0.8 sys\n"
             "q2 Q0 b 1 5 sys\nq2 Q0 a 2 4 sys\nq9 Q0 d1 1 1 sys\n");
}

TEST(EvalCli, JsonWithPerQueryValues) {
  TempDir tmp;
  write_files(tmp);
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}' --k 3,1 --format json --per-query",
                                     (tmp / "run.txt").string(), (tmp / "qrels.txt").string()));
  ASSERT_EQ(o.rc, 0) << o.out << o.err;
  auto j = nlohmann::ordered_json::parse(o.out);
  EXPECT_EQ(j.begin().key(), "queries");
  EXPECT_EQ(j["queries"], 2);  // q1 and q2; q9 skipped, q5 not counted without --complete
  const double l3 = std::log2(3.0);
  const double q1_ndcg3 = (2 + 1 / l3) / (3 + 2 / l3 + 0.5);  // worked by hand in metrics_test.cc
  const double q2_ndcg3 = 1 / l3;
  EXPECT_NEAR(j["per_query"]["q1"]["ndcg_cut_3"].get<double>(), q1_ndcg3, 1e-15);
  EXPECT_NEAR(j["per_query"]["q2"]["ndcg_cut_3"].get<double>(), q2_ndcg3, 1e-15);
  EXPECT_NEAR(j["metrics"]["ndcg_cut_3"].get<double>(), (q1_ndcg3 + q2_ndcg3) / 2, 1e-15);
  EXPECT_EQ(j["metrics"]["mrr_cut_1"].get<double>(), 0.5);
  EXPECT_EQ(j["per_query"].size(), 2u);
  // The queries on one side only are reported, and do not stop the work.
  EXPECT_NE(o.err.find("1 query of"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("'q9'"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("'q5'"), std::string::npos) << o.err;
}

TEST(EvalCli, CompleteCountsMissingQueriesAsZero) {
  TempDir tmp;
  write_files(tmp);
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}' --k 1 --format json --complete",
                                     (tmp / "run.txt").string(), (tmp / "qrels.txt").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["queries"], 3);
  EXPECT_NEAR(j["metrics"]["mrr_cut_1"].get<double>(), 1.0 / 3.0, 1e-15);
  EXPECT_FALSE(j.contains("per_query"));
}

TEST(EvalCli, TableByDefault) {
  TempDir tmp;
  write_files(tmp);
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}'", (tmp / "run.txt").string(),
                                     (tmp / "qrels.txt").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("queries 2"), std::string::npos) << o.out;
  for (const char* s : {"@1000", "ndcg_cut", "recall", "map_cut", "mrr_cut"})
    EXPECT_NE(o.out.find(s), std::string::npos) << s << "\n" << o.out;
}

TEST(EvalCli, BadRunLineNamesFileAndLine) {
  TempDir tmp;
  write_files(tmp);
  write_file(tmp / "bad.run", "q1 Q0 d1 1 0.9 sys\nq1 Q0 d2 2 sys\n");
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}'", (tmp / "bad.run").string(),
                                     (tmp / "qrels.txt").string()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find((tmp / "bad.run").string() + ":2: expected 6 fields"), std::string::npos) << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;
}

TEST(EvalCli, NonNumericScoreAndRelevanceAreErrors) {
  TempDir tmp;
  write_files(tmp);
  write_file(tmp / "bad.run", "q1 Q0 d1 1 0.9 sys\nq1 Q0 d2 2 high sys\n");
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}'", (tmp / "bad.run").string(),
                                     (tmp / "qrels.txt").string()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("bad.run:2: score 'high' is not a number"), std::string::npos) << o.err;
  write_file(tmp / "bad.qrels", "q1 0 d1 1\nq1 0 d2 yes\n");
  o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}'", (tmp / "run.txt").string(),
                                (tmp / "bad.qrels").string()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("reading qrels: "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("bad.qrels:2: relevance 'yes' is not an integer"), std::string::npos) << o.err;
}

TEST(EvalCli, NoCommonQueryIsAnError) {
  TempDir tmp;
  write_file(tmp / "qrels.txt", "a 0 d1 1\n");
  write_file(tmp / "run.txt", "b Q0 d1 1 1 sys\n");
  auto o = eval_cli(tmp, fmt::format("--run '{}' --qrels '{}'", (tmp / "run.txt").string(),
                                     (tmp / "qrels.txt").string()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("nothing to score"), std::string::npos) << o.err;
}

TEST(EvalCli, NeedsRunAndQrelsAndAnnouncesDataset) {
  TempDir tmp;
  auto o = eval_cli(tmp, "--k 10");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("--dataset DIR"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--run RUN with --qrels QRELS"), std::string::npos) << o.err;
  o = eval_cli(tmp, "--help");
  EXPECT_EQ(o.rc, 0);
  EXPECT_NE(o.out.find("--dataset"), std::string::npos) << o.out;
  o = eval_cli(tmp, "--run x --qrels y --k 0");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("cutoff 0"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace oe
