// omni-embed eval: scores a ranked run against relevance judgments with trec_eval's definitions (src/eval).
#include <algorithm>
#include <cstdio>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/metrics.h"
#include "eval/report.h"
#include "eval/trec.h"

namespace oe::cli {
namespace {

struct EvalArgs {
  std::string run;
  std::string qrels;
  std::vector<int> cutoffs = {1, 3, 5, 10, 100, 1000};
  std::string format = "table";
  bool per_query = false;
  bool complete = false;
  bool ignore_identical_ids = false;
};

std::string first_ids(const std::vector<std::string>& ids) {
  const size_t shown = std::min<size_t>(ids.size(), 3);
  std::string s;
  for (size_t i = 0; i < shown; ++i) s += (i ? ", '" : "'") + ids[i] + "'";
  return ids.size() > shown ? s + ", ..." : s;
}

// The queries that did not take part say which ids the two files disagree on; they end nothing.
void warn_unmatched(const EvalArgs& a, const eval::EvalResult& r) {
  if (!r.run_only.empty())
    log_warn("{} quer{} of {} without judgments in {} skipped: {}", r.run_only.size(),
             r.run_only.size() == 1 ? "y" : "ies", a.run, a.qrels, first_ids(r.run_only));
  if (!r.judged_only.empty())
    log_warn("{} judged quer{} of {} without results in {} {}: {}", r.judged_only.size(),
             r.judged_only.size() == 1 ? "y" : "ies", a.qrels, a.run,
             a.complete ? "counted as 0 (--complete)" : "not counted (--complete counts them as 0)",
             first_ids(r.judged_only));
}

int run_eval(const EvalArgs& a) {
  if (a.run.empty() || a.qrels.empty())
    throw InvalidInput("eval needs --run RUN and --qrels QRELS (embedding a dataset with --dataset is not available yet)");
  // Checked before the files are read: a large run takes a while to load.
  for (int k : a.cutoffs)
    if (k < 1) throw InvalidInput(fmt::format("--k: cutoff {} is not a positive rank", k));
  eval::QrelsReadInfo qrels_info;
  const auto qrels =
      with_context("reading qrels", [&] { return eval::read_qrels(a.qrels, eval::QrelsFormat::Auto, &qrels_info); });
  if (qrels_info.n_replaced > 0)
    log_warn("{}: {} line(s) judge a (query, document) pair again; the last judgment counts, as BEIR's loader does",
             a.qrels, qrels_info.n_replaced);
  const auto run = with_context("reading run", [&] { return eval::read_run(a.run); });

  eval::EvalOptions options;
  options.cutoffs = a.cutoffs;
  options.complete = a.complete;
  options.ignore_identical_ids = a.ignore_identical_ids;
  const auto result = eval::evaluate(qrels, run, options);
  warn_unmatched(a, result);
  if (result.n_queries == 0) {
    std::vector<std::string> judged;
    for (const auto& [qid, _] : qrels) judged.push_back(qid);
    throw InvalidInput(fmt::format("no query of {} has judgments in {}: nothing to score (run queries {}; judged "
                                   "queries {})",
                                   a.run, a.qrels, first_ids(result.run_only), first_ids(judged)));
  }
  const std::string out = a.format == "json" ? eval::to_json(result, a.per_query) + "\n"
                                             : eval::to_table(result, a.per_query);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

VerbRunner register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* sub = app.add_subcommand("eval", "Score a ranked run against relevance judgments (nDCG, recall, MAP, MRR at k), "
                                         "exactly as trec_eval / pytrec_eval / BEIR compute them");
  sub->add_option("--run", a->run, "Run file in TREC format: qid Q0 docid rank score tag (ranked by score; rank ignored)");
  sub->add_option("--qrels", a->qrels,
                  "Judgments: TREC qrels (qid iter docid rel) or BEIR qrels/*.tsv (query-id, corpus-id, score)");
  sub->add_option("--k", a->cutoffs, "Cutoffs, comma separated")->delimiter(',')->capture_default_str();
  sub->add_option("--format", a->format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  sub->add_flag("--per-query", a->per_query, "Also print every query's values");
  sub->add_flag("--complete", a->complete,
                "Average over every judged query, a query missing from the run counting as 0 (trec_eval -c)");
  sub->add_flag("--ignore-identical-ids", a->ignore_identical_ids,
                "Drop retrieved documents whose id equals the query id (BEIR's default for its own evaluation)");
  sub->footer(
      "Measures: ndcg_cut_k, recall_k, map_cut_k (trec_eval 9.0.8), mrr_cut_k (reciprocal rank within the top k).\n"
      "Scores are compared as 32-bit floats; ties go to the larger document id, as in trec_eval.\n"
      "Coming: --dataset DIR embeds a BEIR-format dataset and scores it in one step.");
  return [a] { return run_eval(*a); };
}

}  // namespace oe::cli
