// omni-embed mine: hard negatives for fine-tuning from a BEIR-format dataset, with NV-Retriever's positive-aware
// filters (src/train/mining.h); one JSON line per (query, positive) pair.
#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "pipeline/encoder.h"
#include "train/mining.h"

namespace oe::cli {
namespace {

struct MineArgs {
  ModelArgs model;
  pipeline::EmbedOptions options;
  train::MineOptions mine;
  std::string filter = "perc-pos";
  std::string dataset, out, report, cache;
};

int run_mine(MineArgs& a) {
  auto filter = train::negative_filter_from_name(a.filter);
  if (!filter) throw InvalidInput(fmt::format("--filter '{}': expected perc-pos, margin-pos, abs, top-k-shifted, "
                                              "top-k or sample", a.filter));
  a.mine.filter.filter = *filter;
  a.mine.filter.validate();  // before the model is loaded
  a.options.validate();
  a.mine.dataset.dataset = a.dataset;
  a.mine.dataset.cache = a.cache;
  a.mine.out = a.out;
  const pipeline::Encoder encoder(load_model(a.model), a.options);
  StageProgress progress;
  const auto r = train::mine(encoder, a.model.model, a.mine, std::ref(progress));
  progress.finish();
  for (const auto& w : r.run.warnings) log_warn("{}", w);
  for (const auto& [what, why] : r.run.failures) log_warn("{}: {}", what, why);
  if (r.positives_missing > 0)
    log_warn("{} judged positive(s) were not embedded (not in the corpus, failed, or without {} content): no line",
             r.positives_missing, a.mine.dataset.modality);
  log_info("{} ({}): {} corpus items ({} embedded now, the rest cached), {} queries ({} embedded now), {:.1f} s",
           a.dataset, a.mine.dataset.modality, r.run.corpus_size, r.run.corpus_embedded, r.run.queries,
           r.run.queries_embedded, r.run.seconds);
  log_info("{}: {} pairs of {} queries written to {}; {} of {} candidates removed by the filter; {} pair(s) of {} "
           "quer(ies) with fewer than {} negatives; mean positive score {:.4f}, mean negative score {:.4f}",
           r.filter, r.pairs, r.queries, a.out, r.removed, r.candidates, r.short_pairs, r.short_queries,
           a.mine.filter.negatives, r.mean_positive_score, r.mean_negative_score);
  if (!a.report.empty()) {
    io::AtomicFile f(a.report);
    f.write(r.to_json().dump(2) + "\n");
    f.commit();
  }
  return r.run.failures.empty() ? 0 : 1;
}

}  // namespace

VerbRunner register_mine(CLI::App& app) {
  auto a = std::make_shared<MineArgs>();
  a->mine.dataset.split = "train";
  auto* sub = app.add_subcommand("mine", "Mine hard negatives from a BEIR-format dataset for fine-tuning, with "
                                         "NV-Retriever's positive-aware filters; one JSON line per (query, positive)");
  add_model_options(*sub, a->model);
  add_embed_options(*sub, a->options);
  sub->add_option("--dataset", a->dataset, "BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--split", a->mine.dataset.split, "Which qrels/SPLIT.tsv gives the positives")
      ->capture_default_str();
  sub->add_option("--out", a->out, "Output JSONL, one line per (query, positive) pair")->required();
  sub->add_option("--report", a->report, "Also write the summary as a JSON object to this file");
  sub->add_option("--filter", a->filter, "perc-pos, margin-pos, abs, top-k-shifted, top-k or sample")
      ->capture_default_str();
  auto& f = a->mine.filter;
  sub->add_option("--negatives", f.negatives, "K: negatives per pair")->capture_default_str();
  sub->add_option("--perc", f.perc, "perc-pos and sample: keep a candidate only if its score < perc · positive score")
      ->capture_default_str();
  sub->add_option("--margin", f.margin, "margin-pos: keep a candidate only if its score < positive score − margin")
      ->capture_default_str();
  sub->add_option("--threshold", f.threshold, "abs: keep a candidate only if its score < threshold")
      ->capture_default_str();
  sub->add_option("--shift", f.shift, "top-k-shifted: candidates skipped before the first K")->capture_default_str();
  sub->add_option("--sample-top", f.sample_top, "sample: draw from this many top candidates that pass perc-pos")
      ->capture_default_str();
  sub->add_option("--temperature", f.temperature,
                  "sample: draw with probabilities softmax(score / temperature), scores being cosines (1: the "
                  "paper's softmax(score), close to uniform; 0.05: mostly the best)")
      ->capture_default_str();
  sub->add_option("--seed", f.seed, "sample: the seed of the draws (each pair draws from it and its ids)")
      ->capture_default_str();
  sub->add_option("--depth", a->mine.depth, "Candidates per query (top by cosine, the query's positives left out)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--modality", a->mine.dataset.modality, "What of each corpus item to embed: all, text, image, "
                                                          "audio, video")
      ->check(CLI::IsMember(eval::MODALITY_MODES))
      ->capture_default_str();
  sub->add_option("--late-weight", a->mine.dataset.late_weight,
                  "With --fusion late: a video document's score is W · frames score + (1 − W) · sound score")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--cache", a->cache, "Where corpus and query vectors are kept (default DATASET/.omni-embed-cache, "
                                       "shared with eval)");
  sub->add_option("--batch-tokens", a->mine.dataset.batch_tokens, "Tokens per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->footer(
      "Candidates are the top --depth corpus items by cosine to the query, its positives (qrels score > 0) left out;\n"
      "each positive gets its own line, the filter's bound taken from its score. A pair with fewer passing\n"
      "candidates than --negatives is written with the ones there are (counted in the summary). Vectors are cached\n"
      "as eval caches them, so a second run (another filter) embeds nothing. Format: see README, \"mine\".");
  return [a] { return run_mine(*a); };
}

}  // namespace oe::cli
