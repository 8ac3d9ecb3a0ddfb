// The metrics on cases worked out by hand, the queries that count, and the JSON and table layouts. The broad
// parity check against the independent oracle is oracle_test.cc.
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/report.h"

namespace oe::eval {
namespace {

constexpr double EXACT = 1e-15;

size_t cutoff_index(const EvalResult& r, int k) {
  for (size_t c = 0; c < r.cutoffs.size(); ++c)
    if (r.cutoffs[c] == k) return c;
  ADD_FAILURE() << "no cutoff " << k;
  return 0;
}

// Worked by hand. Judgments: d1 = 2, d2 = 0, d3 = 1, d4 = 3 (never retrieved). Scores: d1 0.9, d2 0.8, d3 0.8.
// The tie at 0.8 goes to the larger id, so the ranking is d1, d3, d2 with gains 2, 1, 0.
//   DCG:  @1 = 2,  @2 = @3 = 2 + 1/log2(3) = 2.63093
//   IDCG (gains 3, 2, 1): @1 = 3,  @2 = 3 + 2/log2(3) = 4.26186,  @3 and beyond = 4.26186 + 1/2 = 4.76186
//   nDCG: @1 = 0.66667, @2 = 0.61732, @3 = @5 = 0.55250
//   relevant judged: d1, d3, d4 (3).  Recall: @1 = 1/3, @2 = @3 = 2/3.
//   AP: @1 = (1/1)/3, @2 = @3 = (1/1 + 2/2)/3 = 2/3.  MRR: 1 at every cutoff.
TEST(Metrics, ThreeDocumentsWorkedByHand) {
  Qrels qrels{{"q", {{"d1", 2}, {"d2", 0}, {"d3", 1}, {"d4", 3}}}};
  eval::Run run{{"q", {{"d1", 0.9f}, {"d2", 0.8f}, {"d3", 0.8f}}}};
  EvalOptions o;
  o.cutoffs = {1, 2, 3, 5};
  auto r = evaluate(qrels, run, o);
  ASSERT_EQ(r.n_queries, 1);
  const double l3 = std::log2(3.0);
  const double dcg = 2 + 1 / l3, idcg3 = 3 + 2 / l3 + 0.5;
  auto ndcg = [&](int k) { return r.mean(Measure::Ndcg, cutoff_index(r, k)); };
  EXPECT_NEAR(ndcg(1), 2.0 / 3.0, EXACT);
  EXPECT_NEAR(ndcg(2), dcg / (3 + 2 / l3), EXACT);
  EXPECT_NEAR(ndcg(3), dcg / idcg3, EXACT);
  EXPECT_NEAR(ndcg(5), dcg / idcg3, EXACT);
  EXPECT_NEAR(ndcg(2), 0.61732, 5e-6);  // the 5-digit figures of the comment
  EXPECT_NEAR(ndcg(3), 0.55250, 5e-6);
  auto at = [&](Measure m, int k) { return r.mean(m, cutoff_index(r, k)); };
  EXPECT_NEAR(at(Measure::Recall, 1), 1.0 / 3.0, EXACT);
  EXPECT_NEAR(at(Measure::Recall, 3), 2.0 / 3.0, EXACT);
  EXPECT_NEAR(at(Measure::Recall, 5), 2.0 / 3.0, EXACT);
  EXPECT_NEAR(at(Measure::Map, 1), 1.0 / 3.0, EXACT);
  EXPECT_NEAR(at(Measure::Map, 2), 2.0 / 3.0, EXACT);
  EXPECT_NEAR(at(Measure::Map, 5), 2.0 / 3.0, EXACT);
  for (int k : {1, 2, 3, 5}) EXPECT_EQ(at(Measure::Mrr, k), 1.0) << k;
}

// Worked by hand: one relevant document ("r", relevance 1) at rank 4 of 6; k beyond the ranking.
//   nDCG@3 = 0, nDCG@4 = nDCG@10 = (1/log2(5)) / 1 = 0.43068.  Recall@3 = 0, @4 = 1.  AP@4 = (1/4)/1.
//   MRR@3 = 0, MRR@4 = MRR@10 = 1/4.
TEST(Metrics, RelevantAtRankFourWorkedByHand) {
  Qrels qrels{{"q", {{"r", 1}, {"a", 0}}}};
  eval::Run run{{"q", {{"a", 6}, {"b", 5}, {"c", 4}, {"r", 3}, {"e", 2}, {"f", 1}}}};
  EvalOptions o;
  o.cutoffs = {3, 4, 10};
  auto r = evaluate(qrels, run, o);
  EXPECT_EQ(r.mean(Measure::Ndcg, 0), 0.0);
  EXPECT_NEAR(r.mean(Measure::Ndcg, 1), 1 / std::log2(5.0), EXACT);
  EXPECT_NEAR(r.mean(Measure::Ndcg, 2), 0.43068, 5e-6);
  EXPECT_EQ(r.mean(Measure::Recall, 0), 0.0);
  EXPECT_EQ(r.mean(Measure::Recall, 1), 1.0);
  EXPECT_EQ(r.mean(Measure::Map, 1), 0.25);
  EXPECT_EQ(r.mean(Measure::Mrr, 0), 0.0);
  EXPECT_EQ(r.mean(Measure::Mrr, 2), 0.25);
}

TEST(Metrics, TrecOrderIsScoreThenDescendingId) {
  std::vector<ScoredDoc> docs{{"10", 1}, {"9", 1}, {"2", 1}, {"zz", 0.0f}, {"a", -0.0f}, {"top", 2}, {"\xc3\xa9", 1}};
  sort_trec(docs);
  std::vector<std::string> ids;
  for (const auto& d : docs) ids.push_back(d.docid);
  // Byte order, unsigned: "\xc3\xa9" (é) > "9" > "2" > "10"; -0.0 equals 0.0, so "zz" > "a" decides.
  std::vector<std::string> expected{"top", "\xc3\xa9", "9", "2", "10", "zz", "a"};
  EXPECT_EQ(ids, expected);
}

TEST(Metrics, WhichQueriesCount) {
  Qrels qrels{{"both", {{"a", 1}}}, {"zeros", {{"a", 0}}}, {"judged_only", {{"a", 1}}}};
  eval::Run run{{"both", {{"a", 1}}}, {"zeros", {{"a", 1}}}, {"run_only", {{"a", 1}}}};
  EvalOptions o;
  o.cutoffs = {10};
  auto r = evaluate(qrels, run, o);
  EXPECT_EQ(r.n_queries, 2);  // "both" and "zeros": a query judged only 0 counts, with 0
  EXPECT_EQ(r.mean(Measure::Ndcg, 0), 0.5);
  EXPECT_EQ(r.run_only, std::vector<std::string>{"run_only"});
  EXPECT_EQ(r.judged_only, std::vector<std::string>{"judged_only"});

  o.complete = true;  // trec_eval -c: the judged query without results counts as 0
  r = evaluate(qrels, run, o);
  EXPECT_EQ(r.n_queries, 3);
  EXPECT_NEAR(r.mean(Measure::Recall, 0), 1.0 / 3.0, EXACT);
  ASSERT_EQ(r.per_query.size(), 3u);
  EXPECT_EQ(r.per_query[1].qid, "judged_only");
  EXPECT_FALSE(r.per_query[1].in_run);
  EXPECT_EQ(r.per_query[1].n_relevant, 1);
}

TEST(Metrics, NegativeJudgmentsHaveNoGainAndNoIdealPlace) {
  Qrels qrels{{"q", {{"neg", -1}, {"r", 2}}}};
  eval::Run run{{"q", {{"neg", 2}, {"r", 1}}}};
  EvalOptions o;
  o.cutoffs = {1, 2};
  auto r = evaluate(qrels, run, o);
  EXPECT_EQ(r.mean(Measure::Ndcg, 0), 0.0);
  EXPECT_NEAR(r.mean(Measure::Ndcg, 1), (2 / std::log2(3.0)) / 2, EXACT);
  EXPECT_EQ(r.per_query[0].n_relevant, 1);
  EXPECT_EQ(r.mean(Measure::Mrr, 1), 0.5);
}

TEST(Metrics, IgnoreIdenticalIdsDropsTheSelfMatch) {
  Qrels qrels{{"q1", {{"q1", 1}, {"a", 1}}}};
  eval::Run run{{"q1", {{"q1", 3}, {"a", 2}}}};
  EvalOptions o;
  o.cutoffs = {1};
  EXPECT_EQ(evaluate(qrels, run, o).mean(Measure::Mrr, 0), 1.0);
  o.ignore_identical_ids = true;
  auto r = evaluate(qrels, run, o);
  EXPECT_EQ(r.per_query[0].n_retrieved, 1);
  EXPECT_EQ(r.mean(Measure::Recall, 0), 0.5);  // "q1" stays judged: it still counts as a relevant document
}

TEST(Metrics, CutoffsAreSortedMergedAndValidated) {
  Qrels qrels{{"q", {{"a", 1}}}};
  eval::Run run{{"q", {{"a", 1}}}};
  EvalOptions o;
  o.cutoffs = {10, 1, 10};
  EXPECT_EQ(evaluate(qrels, run, o).cutoffs, (std::vector<int>{1, 10}));
  o.cutoffs = {5, 0};
  EXPECT_THROW(evaluate(qrels, run, o), InvalidInput);
  o.cutoffs = {};
  EXPECT_THROW(evaluate(qrels, run, o), InvalidInput);
}

TEST(Report, JsonKeysInOrderAndFullPrecision) {
  Qrels qrels{{"q1", {{"a", 1}, {"b", 1}, {"c", 1}}}, {"q2", {{"a", 1}}}};
  eval::Run run{{"q1", {{"x", 2}, {"a", 1}}}, {"q2", {{"a", 1}}}};
  EvalOptions o;
  o.cutoffs = {3, 1};
  auto r = evaluate(qrels, run, o);
  auto j = nlohmann::ordered_json::parse(to_json(r, /*per_query=*/true));
  std::vector<std::string> top;
  for (auto& [key, _] : j.items()) top.push_back(key);
  EXPECT_EQ(top, (std::vector<std::string>{"queries", "metrics", "per_query"}));
  EXPECT_EQ(j["queries"], 2);
  std::vector<std::string> names;
  for (auto& [key, _] : j["metrics"].items()) names.push_back(key);
  EXPECT_EQ(names, (std::vector<std::string>{"ndcg_cut_1", "ndcg_cut_3", "recall_1", "recall_3", "map_cut_1",
                                             "map_cut_3", "mrr_cut_1", "mrr_cut_3"}));
  // q1: recall@3 = 1/3, q2: 1; the mean 2/3 must survive the text round trip exactly.
  EXPECT_EQ(j["metrics"]["recall_3"].get<double>(), (1.0 / 3.0 + 1.0) / 2.0);
  EXPECT_EQ(j["per_query"]["q1"]["mrr_cut_3"].get<double>(), 0.5);
  EXPECT_FALSE(nlohmann::json::parse(to_json(r, /*per_query=*/false)).contains("per_query"));
}

TEST(Report, TableHasAGridAndOptionalQueryLines) {
  Qrels qrels{{"q1", {{"a", 1}}}};
  eval::Run run{{"q1", {{"x", 2}, {"a", 1}}}};
  EvalOptions o;
  o.cutoffs = {1, 10};
  auto r = evaluate(qrels, run, o);
  auto table = to_table(r, /*per_query=*/false);
  EXPECT_NE(table.find("queries 1"), std::string::npos) << table;
  EXPECT_NE(table.find("@10"), std::string::npos) << table;
  EXPECT_NE(table.find("mrr_cut      0.0000   0.5000"), std::string::npos) << table;
  auto with_queries = to_table(r, /*per_query=*/true);
  EXPECT_NE(with_queries.find("mrr_cut_10            \tq1\t0.5000"), std::string::npos) << with_queries;
}

}  // namespace
}  // namespace oe::eval
