// The hard-negative filters of train/mining.h on hand-made scores: each rule's bound worked out by hand (values chosen
// to be exact in binary, so a bound is hit exactly), fewer passing candidates than K, ties, a negative s⁺, the
// sampling draw (seeded, only from the pool, following softmax over many draws), and the item JSON of the output.
#include <cmath>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "train/mining.h"

namespace oe::train {
namespace {

std::vector<Candidate> make(const std::vector<std::pair<const char*, float>>& v) {
  std::vector<Candidate> out;
  for (const auto& [id, s] : v) out.push_back({id, s});
  return out;
}

std::vector<std::string> ids(const Selection& s) {
  std::vector<std::string> out;
  for (const auto& c : s.negatives) out.push_back(c.id);
  return out;
}

FilterOptions with(NegativeFilter f, int64_t k = 2) {
  FilterOptions o;
  o.filter = f;
  o.negatives = k;
  return o;
}

// Best first, positives already left out; s⁺ = 0.5 in the tests below.
const std::vector<Candidate> RANKED = make({{"a", 0.625f}, {"b", 0.5f}, {"c", 0.375f}, {"d", 0.25f}, {"e", 0.125f}});

TEST(MiningFilters, TopKTakesTheFirstK) {
  const auto s = select_negatives(RANKED, 0.5f, with(NegativeFilter::TopK));
  EXPECT_EQ(ids(s), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.removed, 0);
  EXPECT_EQ(s.negatives[0].score, 0.625f);
}

TEST(MiningFilters, TopKShiftedSkipsTheFirstN) {
  auto o = with(NegativeFilter::TopKShifted);
  o.shift = 2;
  auto s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(s.removed, 2);
  o.shift = 4;  // one left
  s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"e"}));
  o.shift = 10;  // past the end: nothing, all five skipped
  s = select_negatives(RANKED, 0.5f, o);
  EXPECT_TRUE(s.negatives.empty());
  EXPECT_EQ(s.removed, 5);
}

TEST(MiningFilters, AbsKeepsScoresStrictlyBelowTheThreshold) {
  auto o = with(NegativeFilter::Abs);
  o.threshold = 0.375;  // c scores the bound exactly: removed
  const auto s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(s.removed, 3);  // a, b, c
}

TEST(MiningFilters, MarginPosKeepsScoresBelowPositiveMinusMargin) {
  auto o = with(NegativeFilter::MarginPos, 3);
  o.margin = 0.125;  // bound 0.5 − 0.125 = 0.375: c removed
  auto s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"d", "e"}));  // fewer than K = 3 pass: the two there are
  EXPECT_EQ(s.removed, 3);
  o.margin = 0;  // bound s⁺ itself: b (equal to s⁺) removed, a (above) removed
  s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_EQ(s.removed, 2);
}

TEST(MiningFilters, PercPosKeepsScoresBelowAFractionOfThePositive) {
  auto o = with(NegativeFilter::PercPos);
  o.perc = 0.75;  // bound 0.75 · 0.5 = 0.375: c removed
  auto s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(s.removed, 3);
  o.perc = 1;  // bound s⁺: only a and b removed
  s = select_negatives(RANKED, 0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(s.removed, 2);
  // The default p = 0.95 with s⁺ = 0.8: bound 0.76; 0.75 passes, 0.77 does not.
  s = select_negatives(make({{"x", 0.77f}, {"y", 0.75f}, {"z", 0.1f}}), 0.8f, FilterOptions{});
  EXPECT_EQ(ids(s), (std::vector<std::string>{"y", "z"}));
  EXPECT_EQ(s.removed, 1);
}

TEST(MiningFilters, PercPosWithANegativePositiveScoreAppliesTheRuleAsPublished) {
  // s⁺ = −0.5, p = 0.75: the bound 0.75 · (−0.5) = −0.375 lies above s⁺. −0.25 and −0.375 (the bound itself) are
  // removed; −0.4375 passes although it scores above the positive; −0.75 passes.
  auto o = with(NegativeFilter::PercPos, 5);
  o.perc = 0.75;
  const auto s =
      select_negatives(make({{"p", -0.25f}, {"q", -0.375f}, {"r", -0.4375f}, {"t", -0.75f}}), -0.5f, o);
  EXPECT_EQ(ids(s), (std::vector<std::string>{"r", "t"}));
  EXPECT_EQ(s.removed, 2);
}

TEST(MiningFilters, TiesKeepTheRankOrderAndNoCandidatesGiveNothing) {
  const auto tied = make({{"m", 0.25f}, {"k", 0.25f}, {"n", 0.25f}});
  auto s = select_negatives(tied, 0.5f, with(NegativeFilter::PercPos));
  EXPECT_EQ(ids(s), (std::vector<std::string>{"m", "k"}));  // as ranked, not by id
  s = select_negatives({}, 0.5f, with(NegativeFilter::PercPos));
  EXPECT_TRUE(s.negatives.empty());
  EXPECT_EQ(s.removed, 0);
  // Every candidate scoring above the positive: all removed.
  s = select_negatives(make({{"a", 0.9f}, {"b", 0.8f}}), 0.5f, with(NegativeFilter::PercPos));
  EXPECT_TRUE(s.negatives.empty());
  EXPECT_EQ(s.removed, 2);
}

TEST(MiningFilters, SampleIsSeededAndDrawsOnlyFromThePool) {
  // Twenty candidates below the bound except the second; the pool is the first three that pass: 0, 2, 3.
  std::vector<Candidate> c;
  for (int i = 0; i < 20; ++i) c.push_back({"c" + std::to_string(i), i == 1 ? 0.49f : 0.3f - 0.01f * i});
  auto o = with(NegativeFilter::Sample);
  o.sample_top = 3;
  o.perc = 0.9;  // bound 0.45: c1 (0.49) removed
  const std::set<std::string> pool = {"c0", "c2", "c3"};
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto s = select_negatives(c, 0.5f, o, seed);
    ASSERT_EQ(s.negatives.size(), 2u);
    EXPECT_EQ(s.removed, 1);
    EXPECT_NE(s.negatives[0].id, s.negatives[1].id);               // without replacement
    EXPECT_GT(s.negatives[0].score, s.negatives[1].score);         // best first
    for (const auto& n : s.negatives) {
      EXPECT_TRUE(pool.count(n.id)) << n.id;
      seen.insert(n.id);
    }
    EXPECT_EQ(ids(select_negatives(c, 0.5f, o, seed)), ids(s));    // the same seed, the same draw
  }
  EXPECT_EQ(seen, pool);  // every member of the pool is drawn sometimes
  // Different seeds give different draws.
  std::set<std::vector<std::string>> draws;
  for (uint64_t seed = 0; seed < 50; ++seed) draws.insert(ids(select_negatives(c, 0.5f, o, seed)));
  EXPECT_GT(draws.size(), 1u);
  // K larger than the pool: the whole pool.
  o.negatives = 5;
  EXPECT_EQ(ids(select_negatives(c, 0.5f, o, 7)), (std::vector<std::string>{"c0", "c2", "c3"}));
}

TEST(MiningFilters, SampleFollowsSoftmaxOverManyDraws) {
  // softmax([0.3, 0.2, 0.1] / 0.1) = e^3, e^2, e^1 normalised.
  const std::vector<float> scores = {0.3f, 0.2f, 0.1f};
  const double z = std::exp(3.0) + std::exp(2.0) + std::exp(1.0);
  const double want[3] = {std::exp(3.0) / z, std::exp(2.0) / z, std::exp(1.0) / z};  // 0.665, 0.245, 0.090
  const int n = 20000;
  int first[3] = {0, 0, 0};
  for (int seed = 0; seed < n; ++seed) {
    const auto d = sample_softmax(scores, 1, /*temperature=*/0.1, static_cast<uint64_t>(seed));
    ASSERT_EQ(d.size(), 1u);
    ++first[d[0]];
  }
  // Binomial standard deviation at most sqrt(0.25 / 20000) = 0.0035: 0.015 is over four of them.
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(static_cast<double>(first[i]) / n, want[i], 0.015) << i;
  // The second draw of two is from the rest: given 0 first, 1 comes next with e^2 / (e^2 + e^1) = 0.731.
  int after0 = 0, then1 = 0;
  for (int seed = 0; seed < n; ++seed) {
    const auto d = sample_softmax(scores, 2, 0.1, static_cast<uint64_t>(seed) + 1000000);
    ASSERT_EQ(d.size(), 2u);
    ASSERT_NE(d[0], d[1]);
    if (d[0] == 0) {
      ++after0;
      then1 += d[1] == 1;
    }
  }
  EXPECT_NEAR(static_cast<double>(then1) / after0, std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), 0.02);
  // A high temperature is close to uniform.
  int hot[3] = {0, 0, 0};
  for (int seed = 0; seed < n; ++seed) ++hot[sample_softmax(scores, 1, 100.0, static_cast<uint64_t>(seed))[0]];
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(static_cast<double>(hot[i]) / n, 1.0 / 3, 0.015) << i;
}

TEST(MiningFilters, PairSeedDependsOnTheSeedAndBothIds) {
  const uint64_t s = pair_seed(1, "q", "d");
  EXPECT_EQ(s, pair_seed(1, "q", "d"));
  EXPECT_NE(s, pair_seed(2, "q", "d"));
  EXPECT_NE(s, pair_seed(1, "q", "e"));
  EXPECT_NE(pair_seed(1, "ab", "c"), pair_seed(1, "a", "bc"));  // the ids are kept apart
}

TEST(MiningFilters, OptionsAreValidatedNamingTheFlag) {
  auto expect_error = [](FilterOptions o, const std::string& flag) {
    try {
      o.validate();
      ADD_FAILURE() << flag << " accepted";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  FilterOptions o;
  EXPECT_NO_THROW(o.validate());
  o.negatives = 0;
  expect_error(o, "--negatives 0");
  o = {};
  o.perc = 0;
  expect_error(o, "--perc 0");
  o.perc = 1.5;
  expect_error(o, "--perc 1.5");
  o.perc = 1;
  EXPECT_NO_THROW(o.validate());
  o = {};
  o.margin = -0.1;
  expect_error(o, "--margin");
  o = {};
  o.temperature = 0;
  expect_error(o, "--temperature");
  o = {};
  o.sample_top = 0;
  expect_error(o, "--sample-top");
  o = {};
  o.shift = -1;
  expect_error(o, "--shift");
  for (const auto& name : NEGATIVE_FILTERS) {
    ASSERT_TRUE(negative_filter_from_name(name)) << name;
    EXPECT_EQ(negative_filter_name(*negative_filter_from_name(name)), name);
  }
  EXPECT_FALSE(negative_filter_from_name("perc"));
}

TEST(MiningFilters, ItemJsonHasNoRoleAndOnePathOrAList) {
  pipeline::EmbedItem it;
  it.role = text::Role::Query;
  it.text = "a cat";
  it.images = {"/data/cat.png"};
  auto j = item_json(it);
  EXPECT_EQ(j.dump(), R"({"text":"a cat","image":"/data/cat.png"})");
  it.text.clear();
  it.images.push_back("/data/dog.png");
  j = item_json(it);
  EXPECT_EQ(j.dump(), R"({"image":["/data/cat.png","/data/dog.png"]})");
  EXPECT_EQ(item_json(pipeline::EmbedItem{}).dump(), R"({"text":""})");  // an empty document
}

}  // namespace
}  // namespace oe::train
