// Retrieval metrics exactly as trec_eval 9.0.8 computes them (and so as BEIR and MTEB report them through
// pytrec_eval), at document cutoffs k.
//
// Ranking (trec_eval form_res_rels.c): a query's documents are ordered by score, held as a 32-bit float, descending;
// equal scores are ordered by document id in descending byte order (strcmp(b, a)). The run's rank column plays no
// part.
//
// Relevance: a document is relevant when its judgment is >= 1 (trec_eval's default relevance_level). A document the
// qrels do not judge is non-relevant. Negative judgments are non-relevant, have no gain and are left out of the
// ideal ranking (trec_eval marks them "in the pool but unjudged").
//
//   ndcg_cut_k  (m_ndcg_cut.c)  DCG@k / IDCG@k with DCG@k = sum over ranks r <= k of gain(r) / log2(r + 1), gain the
//               judged relevance when positive, else 0; IDCG@k the same sum over the query's positive judgments
//               sorted descending (retrieved or not). 0 when the query has no positively judged document.
//   recall_k    (m_recall.c)    relevant documents in the top k / relevant documents judged; 0 when none is judged.
//   map_cut_k   (m_map_cut.c)   sum over relevant documents at ranks r <= k of (relevant in the top r) / r, divided by
//               the number of relevant documents judged (not by min(k, that)); 0 when none is judged.
//   mrr_cut_k   1 / rank of the first relevant document in the top k, 0 when there is none. trec_eval's recip_rank
//               has no cutoff; this is recip_rank on the run cut to its top k, which is BEIR's MRR@k
//               (custom_metrics.mrr) except that BEIR breaks score ties by insertion order instead of by document
//               id. Its mean is taken over the same queries as the other measures.
//
// Which queries count (trec_eval.c): a run query without judgments is skipped; a judged query without results is
// not counted either, unless `complete` (trec_eval -c), when it counts with 0 for every measure. A judged query
// whose judgments are all 0 counts, with 0 for every measure (pytrec_eval evaluates it too); so does one judged only
// negatively (trec_eval reads stale state there, so its value is undefined). The mean of a measure is the plain
// average of the per-query values, summed in query-id order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "eval/trec.h"

namespace oe::eval {

enum class Measure { Ndcg = 0, Recall = 1, Map = 2, Mrr = 3 };
inline constexpr std::array<Measure, 4> ALL_MEASURES = {Measure::Ndcg, Measure::Recall, Measure::Map, Measure::Mrr};

// The stem of a measure's name: "ndcg_cut", "recall", "map_cut", "mrr_cut".
const char* measure_stem(Measure m);
// A measure at a cutoff, named as trec_eval prints it: "ndcg_cut_10", "recall_10", "map_cut_10", "mrr_cut_10".
std::string measure_name(Measure m, int k);

struct EvalOptions {
  std::vector<int> cutoffs = {1, 3, 5, 10, 100, 1000};  // any order; duplicates are merged; each must be >= 1
  bool complete = false;                                 // trec_eval -c: judged queries missing from the run count as 0
  bool ignore_identical_ids = false;  // BEIR's ignore_identical_ids: drop a retrieved document whose id is the query's
};

// Values are indexed [measure][cutoff index], in ALL_MEASURES order and the result's `cutoffs` order.
using MeasureTable = std::array<std::vector<double>, ALL_MEASURES.size()>;

struct QueryScores {
  std::string qid;
  bool in_run = true;      // false: judged but absent from the run (only listed under `complete`)
  int64_t n_retrieved = 0; // documents ranked (after ignore_identical_ids)
  int64_t n_relevant = 0;  // documents judged >= 1
  MeasureTable values;

  double value(Measure m, size_t cutoff_index) const { return values[static_cast<size_t>(m)][cutoff_index]; }
};

struct EvalResult {
  std::vector<int> cutoffs;                // ascending, distinct
  int64_t n_queries = 0;                   // queries averaged
  MeasureTable means;                      // all 0 when n_queries is 0
  std::vector<QueryScores> per_query;      // the averaged queries, by query id (byte order)
  std::vector<std::string> run_only;       // run queries without judgments: skipped
  std::vector<std::string> judged_only;    // judged queries without results: 0 under `complete`, else not counted

  double mean(Measure m, size_t cutoff_index) const { return means[static_cast<size_t>(m)][cutoff_index]; }
};

// Orders a query's documents as trec_eval ranks them: score descending, equal scores by document id descending.
void sort_trec(std::vector<ScoredDoc>& docs);

// Scores one query. `ranking` may be in any order; `cutoffs` must be ascending and >= 1.
QueryScores score_query(const std::string& qid, std::vector<ScoredDoc> ranking,
                        const std::map<std::string, int>& judgments, const std::vector<int>& cutoffs);

// Scores every query of `run` against `qrels`. InvalidInput when a cutoff is < 1 or none is given.
EvalResult evaluate(const Qrels& qrels, const Run& run, const EvalOptions& options = {});

}  // namespace oe::eval
