// Parity with an independent implementation of trec_eval's definitions: tests/eval/make_cases.py writes the
// hand-built cases (ties, float32 scores, graded/negative/missing judgments, queries on one side only, cutoffs
// beyond the ranking) and tests/eval/trec_oracle.py scores each; every per-query value and every mean must agree to
// 1e-12 (trec_eval prints 4 decimals; the comparison is at full precision).
#include <memory>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "eval/metrics.h"
#include "eval/trec.h"
#include "eval_test_util.h"

namespace oe::eval {
namespace {

namespace fs = std::filesystem;

constexpr double TOLERANCE = 1e-12;

struct Cases {
  testing::TempDir dir;
  nlohmann::json manifest;
};

// The cases are generated once per test binary run, into a temporary folder.
const Cases& cases() {
  static const std::unique_ptr<Cases> c = [] {
    auto c = std::make_unique<Cases>();
    std::string out;
    int rc = testing::run_stdout(fmt::format("'{}' '{}/tests/eval/make_cases.py' '{}' 2>&1", OE_PYTHON, OE_SOURCE_DIR,
                                             c->dir.path().string()),
                                 &out);
    if (rc != 0) throw std::runtime_error("make_cases.py failed: " + out);
    c->manifest = nlohmann::json::parse(testing::read_file(c->dir / "manifest.json"));
    return c;
  }();
  return *c;
}

nlohmann::json oracle(const nlohmann::json& cs, const fs::path& dir) {
  std::string k;
  for (int v : cs["k"]) {
    if (!k.empty()) k += ',';
    k += std::to_string(v);
  }
  std::string cmd = fmt::format("'{}' '{}/tests/eval/trec_oracle.py' --qrels '{}' --run '{}' --k {}{}{}", OE_PYTHON,
                                OE_SOURCE_DIR, (dir / cs["qrels"].get<std::string>()).string(),
                                (dir / cs["run"].get<std::string>()).string(), k,
                                cs["complete"].get<bool>() ? " --complete" : "",
                                cs["ignore_identical_ids"].get<bool>() ? " --ignore-identical-ids" : "");
  std::string out;
  int rc = testing::run_stdout(cmd, &out);
  if (rc != 0) throw std::runtime_error("oracle failed (" + std::to_string(rc) + "): " + cmd);
  return nlohmann::json::parse(out);
}

TEST(OracleParity, AtLeastThirtyHandBuiltCases) {
  int hand_built = 0;
  for (const auto& cs : cases().manifest)
    if (cs["name"].get<std::string>().rfind("random_", 0) != 0) ++hand_built;
  EXPECT_GE(hand_built, 30);
}

TEST(OracleParity, EveryCaseEveryQueryEveryMeasure) {
  const auto& dir = cases().dir.path();
  int64_t compared = 0;
  for (const auto& cs : cases().manifest) {
    const std::string name = cs["name"];
    SCOPED_TRACE(name + ": " + cs["note"].get<std::string>());
    EvalOptions o;
    o.cutoffs = cs["k"].get<std::vector<int>>();
    o.complete = cs["complete"];
    o.ignore_identical_ids = cs["ignore_identical_ids"];
    const auto r = evaluate(read_qrels(dir / cs["qrels"].get<std::string>()),
                            read_run(dir / cs["run"].get<std::string>()), o);
    const auto want = oracle(cs, dir);

    ASSERT_EQ(r.n_queries, want["queries"].get<int64_t>());
    EXPECT_EQ(r.run_only, want["run_only"].get<std::vector<std::string>>());
    EXPECT_EQ(r.judged_only, want["judged_only"].get<std::vector<std::string>>());
    ASSERT_EQ(r.per_query.size(), want["per_query"].size());
    for (Measure m : ALL_MEASURES) {
      for (size_t c = 0; c < r.cutoffs.size(); ++c) {
        const std::string key = measure_name(m, r.cutoffs[c]);
        ASSERT_TRUE(want["metrics"].contains(key)) << key;
        EXPECT_NEAR(r.mean(m, c), want["metrics"][key].get<double>(), TOLERANCE) << "mean " << key;
        ++compared;
        for (const auto& q : r.per_query) {
          ASSERT_TRUE(want["per_query"].contains(q.qid)) << q.qid;
          EXPECT_NEAR(q.value(m, c), want["per_query"][q.qid][key].get<double>(), TOLERANCE) << q.qid << " " << key;
          ++compared;
        }
      }
    }
  }
  // Guards against a vacuous pass (an empty manifest, or cases without counted queries).
  EXPECT_GT(compared, 2000);
}

}  // namespace
}  // namespace oe::eval
