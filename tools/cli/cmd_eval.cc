// omni-embed eval: scores a ranked run against relevance judgments with trec_eval's definitions (src/eval).
#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/dataset.h"
#include "eval/metrics.h"
#include "eval/report.h"
#include "eval/trec.h"
#include "pipeline/encoder.h"

namespace oe::cli {
namespace {

struct EvalArgs {
  // Scoring a dataset end to end.
  ModelArgs model;
  pipeline::EmbedOptions options;
  std::string dataset;
  std::string split = "test";
  double late_weight = 0.5;
  double media_window = 0, media_overlap = 0;
  std::vector<std::string> modalities = {"all"};
  std::string cache;
  std::string save_run;
  int64_t top = 1000;
  int64_t batch_tokens = 4096;
  // Scoring a run file.
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

// The summary columns of the table across modes: nDCG, Recall, MRR and MAP at 10 (or the largest cutoff below
// it), nDCG also at 5 when asked for; the paper reports nDCG@10 and @5.
std::string modes_table(const std::vector<std::pair<std::string, eval::EvalResult>>& results,
                        const std::vector<int64_t>& sizes) {
  const auto& cut = results.front().second.cutoffs;
  size_t c10 = 0;
  for (size_t c = 0; c < cut.size(); ++c)
    if (cut[c] <= 10) c10 = c;
  std::vector<std::pair<eval::Measure, size_t>> cols = {{eval::Measure::Ndcg, c10}};
  for (size_t c = 0; c < cut.size(); ++c)
    if (cut[c] == 5 && c != c10) cols.push_back({eval::Measure::Ndcg, c});
  for (auto m : {eval::Measure::Recall, eval::Measure::Mrr, eval::Measure::Map}) cols.push_back({m, c10});
  std::string out = fmt::format("{:<8}{:>8}{:>8}", "mode", "items", "queries");
  for (const auto& [m, c] : cols) out += fmt::format("{:>16}", eval::measure_name(m, cut[c]));
  out += "\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i].second;
    out += fmt::format("{:<8}{:>8}{:>8}", results[i].first, sizes[i], r.n_queries);
    for (const auto& [m, c] : cols) out += fmt::format("{:>16.4f}", r.mean(m, c));
    out += "\n";
  }
  return out;
}

int run_dataset_eval(const EvalArgs& a) {
  for (int k : a.cutoffs)
    if (k < 1) throw InvalidInput(fmt::format("--k: cutoff {} is not a positive rank", k));
  a.options.validate();
  check_media_window(a.media_window, a.media_overlap, a.options);
  const pipeline::Encoder encoder(load_model(a.model), a.options);
  eval::EvalOptions options;
  options.cutoffs = a.cutoffs;
  options.complete = a.complete;
  options.ignore_identical_ids = a.ignore_identical_ids;
  std::vector<std::pair<std::string, eval::EvalResult>> results;
  std::vector<int64_t> sizes;
  nlohmann::ordered_json modes_json = nlohmann::ordered_json::object();
  int rc = 0;
  for (const auto& mode : a.modalities) {
    eval::DatasetOptions o;
    o.dataset = a.dataset;
    o.split = a.split;
    o.cache = a.cache;
    o.modality = mode;
    o.top = a.top;
    o.batch_tokens = a.batch_tokens;
    o.late_weight = a.late_weight;
    o.media_window = a.media_window;
    o.media_overlap = a.media_overlap;
    StageProgress progress;
    auto r = eval::run_dataset(encoder, a.model.model, o, std::ref(progress));
    progress.finish();
    for (const auto& w : r.warnings) log_warn("{}", w);
    for (const auto& [what, why] : r.failures) log_warn("{}: {}", what, why);
    if (!r.failures.empty()) rc = 1;
    log_info("{} ({}): {} corpus items ({} embedded now, the rest cached), {} queries ({} embedded now), {} items "
             "without {} content left out, {:.1f} s",
             a.dataset, mode, r.corpus_size, r.corpus_embedded, r.queries, r.queries_embedded, r.left_out, mode,
             r.seconds);
    if (!a.save_run.empty()) {
      const std::string path = a.modalities.size() == 1 ? a.save_run : a.save_run + "." + mode;
      eval::write_run(path, r.run, "omni-embed-" + mode);
    }
    auto result = eval::evaluate(r.qrels, r.run, options);
    modes_json[mode] = nlohmann::ordered_json::parse(eval::to_json(result, a.per_query));
    modes_json[mode]["corpus"] = r.corpus_size;
    modes_json[mode]["failed"] = r.failures.size();
    sizes.push_back(r.corpus_size);
    results.emplace_back(mode, std::move(result));
  }
  if (a.format == "json") {
    nlohmann::ordered_json j;
    j["dataset"] = a.dataset;
    j["split"] = a.split;
    j["model"] = a.model.model;
    j["modes"] = std::move(modes_json);
    std::puts(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    for (const auto& [mode, result] : results) {
      if (results.size() > 1) std::printf("== %s\n", mode.c_str());
      std::fputs(eval::to_table(result, a.per_query).c_str(), stdout);
    }
    if (results.size() > 1) std::fputs(("\n" + modes_table(results, sizes)).c_str(), stdout);
  }
  return rc;
}

int run_eval(const EvalArgs& a) {
  if (!a.dataset.empty()) {
    if (!a.run.empty() || !a.qrels.empty())
      throw InvalidInput("give either --dataset DIR, or --run RUN with --qrels QRELS");
    return run_dataset_eval(a);
  }
  if (a.run.empty() || a.qrels.empty())
    throw InvalidInput("eval needs --dataset DIR (a BEIR-format dataset) or --run RUN with --qrels QRELS");
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
  auto* sub = app.add_subcommand("eval", "Embed and score a BEIR-format dataset, or score a ranked run, with nDCG, "
                                         "recall, MAP, MRR at k exactly as trec_eval / pytrec_eval / BEIR compute them");
  add_model_options(*sub, a->model);
  add_embed_options(*sub, a->options);
  sub->add_option("--dataset", a->dataset,
                  "BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv (items may name image, audio, "
                  "video files relative to it)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--split", a->split, "Which qrels/SPLIT.tsv to score")->capture_default_str();
  sub->add_option("--modality", a->modalities,
                  "What of each corpus item to embed, comma separated for one row per mode: all, text, image, audio, "
                  "video")
      ->delimiter(',')
      ->check(CLI::IsMember(eval::MODALITY_MODES))
      ->capture_default_str();
  sub->add_option("--late-weight", a->late_weight,
                  "With --fusion late: a video document's score is W · frames score + (1 − W) · sound score")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  add_media_window_options(*sub, a->media_window, a->media_overlap,
                           "0, the default: each document whole, as the model card embeds it; with windows a "
                           "document ranks once, as its best window");
  sub->add_option("--cache", a->cache, "Where corpus and query vectors are kept (default DATASET/.omni-embed-cache)");
  sub->add_option("--save-run", a->save_run, "Also write the ranking as a TREC run file (FILE.MODE for several modes)");
  sub->add_option("--top", a->top, "Documents retrieved per query")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--batch-tokens", a->batch_tokens, "Tokens per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
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
      "With --dataset, vectors are cached, so a second run (another --k, --complete, ...) embeds nothing.");
  return [a] { return run_eval(*a); };
}

}  // namespace oe::cli
