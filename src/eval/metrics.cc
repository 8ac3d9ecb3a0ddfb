#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "core/error.h"

namespace oe::eval {
namespace {

// trec_eval's default relevance_level: judgments at or above it are relevant.
constexpr int RELEVANCE_LEVEL = 1;

std::vector<int> normalized_cutoffs(std::vector<int> cutoffs) {
  if (cutoffs.empty()) throw InvalidInput("no cutoff given: pass at least one k (e.g. 10)");
  for (int k : cutoffs)
    if (k < 1) throw InvalidInput(fmt::format("cutoff {} is not a positive rank", k));
  std::sort(cutoffs.begin(), cutoffs.end());
  cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());
  return cutoffs;
}

MeasureTable zero_table(size_t n_cutoffs) {
  MeasureTable t;
  for (auto& v : t) v.assign(n_cutoffs, 0.0);
  return t;
}

// Running sums over ranks 1..d, kept for d = 0..depth so that every cutoff reads its prefix. Accumulating in rank
// order, one term at a time, gives the same floating-point sums as trec_eval's loops.
std::vector<double> discounted_prefix(const std::vector<int>& gains, size_t depth) {
  std::vector<double> prefix(depth + 1, 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < depth; ++i) {
    if (gains[i] > 0) sum += static_cast<double>(gains[i]) / std::log2(static_cast<double>(i + 2));
    prefix[i + 1] = sum;
  }
  return prefix;
}

// Relevant documents among ranks 1..d, the sum of the precision at each relevant rank among them (AP's numerator),
// for d = 0..depth; and the first relevant rank (1-based, 0 when none is in the top `depth`).
struct RelevantPrefix {
  std::vector<int64_t> hits;
  std::vector<double> precision_sum;
  size_t first_relevant = 0;
};

RelevantPrefix relevant_prefix(const std::vector<int>& gains, size_t depth) {
  RelevantPrefix p;
  p.hits.assign(depth + 1, 0);
  p.precision_sum.assign(depth + 1, 0.0);
  for (size_t i = 0; i < depth; ++i) {
    const bool relevant = gains[i] >= RELEVANCE_LEVEL;
    p.hits[i + 1] = p.hits[i] + (relevant ? 1 : 0);
    p.precision_sum[i + 1] =
        p.precision_sum[i] + (relevant ? static_cast<double>(p.hits[i + 1]) / static_cast<double>(i + 1) : 0.0);
    if (relevant && p.first_relevant == 0) p.first_relevant = i + 1;
  }
  return p;
}

}  // namespace

const char* measure_stem(Measure m) {
  switch (m) {
    case Measure::Ndcg: return "ndcg_cut";
    case Measure::Recall: return "recall";
    case Measure::Map: return "map_cut";
    case Measure::Mrr: return "mrr_cut";
  }
  return "?";
}

std::string measure_name(Measure m, int k) { return fmt::format("{}_{}", measure_stem(m), k); }

void sort_trec(std::vector<ScoredDoc>& docs) {
  std::sort(docs.begin(), docs.end(), [](const ScoredDoc& a, const ScoredDoc& b) {
    if (a.score != b.score) return a.score > b.score;
    // std::string compares bytes as unsigned char, as strcmp does; descending order as trec_eval's strcmp(b, a).
    return a.docid > b.docid;
  });
}

QueryScores score_query(const std::string& qid, std::vector<ScoredDoc> ranking,
                        const std::map<std::string, int>& judgments, const std::vector<int>& cutoffs) {
  sort_trec(ranking);
  QueryScores q;
  q.qid = qid;
  q.n_retrieved = static_cast<int64_t>(ranking.size());
  q.values = zero_table(cutoffs.size());

  // The gain of each ranked document: its judgment when positive; unjudged, 0 and negative judgments give 0.
  std::vector<int> gains(ranking.size(), 0);
  for (size_t i = 0; i < ranking.size(); ++i) {
    auto it = judgments.find(ranking[i].docid);
    if (it != judgments.end() && it->second > 0) gains[i] = it->second;
  }
  // The ideal ranking: every positive judgment of the query, retrieved or not, largest first.
  std::vector<int> ideal;
  for (const auto& [docid, rel] : judgments)
    if (rel > 0) ideal.push_back(rel);
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  q.n_relevant = static_cast<int64_t>(ideal.size());  // relevant: judged >= RELEVANCE_LEVEL (1), i.e. positive

  const size_t max_k = static_cast<size_t>(cutoffs.back());
  const size_t depth = std::min(ranking.size(), max_k);
  const auto dcg = discounted_prefix(gains, depth);
  const auto idcg = discounted_prefix(ideal, std::min(ideal.size(), max_k));
  const auto seen = relevant_prefix(gains, depth);

  for (size_t c = 0; c < cutoffs.size(); ++c) {
    const size_t k = static_cast<size_t>(cutoffs[c]);
    const size_t d = std::min(k, depth);
    const double ideal_k = idcg[std::min(k, idcg.size() - 1)];
    auto& v = q.values;
    v[static_cast<size_t>(Measure::Ndcg)][c] = ideal_k > 0.0 ? dcg[d] / ideal_k : 0.0;
    if (q.n_relevant > 0) {
      const double n_rel = static_cast<double>(q.n_relevant);
      v[static_cast<size_t>(Measure::Recall)][c] = static_cast<double>(seen.hits[d]) / n_rel;
      v[static_cast<size_t>(Measure::Map)][c] = seen.precision_sum[d] / n_rel;
    }
    if (seen.first_relevant != 0 && seen.first_relevant <= k)
      v[static_cast<size_t>(Measure::Mrr)][c] = 1.0 / static_cast<double>(seen.first_relevant);
  }
  return q;
}

EvalResult evaluate(const Qrels& qrels, const Run& run, const EvalOptions& options) {
  EvalResult r;
  r.cutoffs = normalized_cutoffs(options.cutoffs);
  r.means = zero_table(r.cutoffs.size());

  for (const auto& [qid, docs] : run) {
    auto judged = qrels.find(qid);
    if (judged == qrels.end()) {
      r.run_only.push_back(qid);
      continue;
    }
    std::vector<ScoredDoc> ranking;
    ranking.reserve(docs.size());
    for (const auto& d : docs)
      if (!(options.ignore_identical_ids && d.docid == qid)) ranking.push_back(d);
    r.per_query.push_back(score_query(qid, std::move(ranking), judged->second, r.cutoffs));
  }
  for (const auto& [qid, judgments] : qrels) {
    if (run.count(qid)) continue;
    r.judged_only.push_back(qid);
    if (!options.complete) continue;
    // trec_eval -c scores a missing query against a one-document ranking of an unjudged id: 0 for these measures.
    QueryScores q = score_query(qid, {}, judgments, r.cutoffs);
    q.in_run = false;
    r.per_query.push_back(std::move(q));
  }
  std::sort(r.per_query.begin(), r.per_query.end(),
            [](const QueryScores& a, const QueryScores& b) { return a.qid < b.qid; });

  r.n_queries = static_cast<int64_t>(r.per_query.size());
  if (r.n_queries == 0) return r;
  for (size_t m = 0; m < ALL_MEASURES.size(); ++m) {
    for (size_t c = 0; c < r.cutoffs.size(); ++c) {
      double sum = 0.0;
      for (const auto& q : r.per_query) sum += q.values[m][c];
      r.means[m][c] = sum / static_cast<double>(r.n_queries);
    }
  }
  return r;
}

}  // namespace oe::eval
