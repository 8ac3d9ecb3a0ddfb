// Hard-negative mining with NV-Retriever's positive-aware filters (arXiv 2407.15831; spec omni-embed-nemotron.md §5).
// A teacher model embeds a BEIR-format dataset through the eval layer (eval/dataset.h: vectors cached, re-used and
// resumed); for every judged query, the top `depth` corpus items by cosine, the query's positives (qrels score > 0)
// left out, are the candidates, and a filter picks K of them as hard negatives for each positive:
//
//   top-k          the first K candidates
//   top-k-shifted  the first K after skipping the first N (--shift)
//   abs            the first K with s(q,n) < T                 (TopK-Abs)
//   margin-pos     the first K with s(q,n) < s⁺ − m            (TopK-MarginPos)
//   perc-pos       the first K with s(q,n) < p · s⁺            (TopK-PercPos; the paper's setting p = 0.95, K = 2)
//   sample         K drawn without replacement from the first `sample_top` candidates that pass perc-pos, each draw
//                  with probability softmax(s / temperature) over those not drawn yet
//
// s⁺ is the score of the one positive of the line, wherever it ranks. Comparisons are strict: a candidate that scores
// exactly the bound is removed. The rules are applied as published, also when s⁺ ≤ 0 (then p · s⁺ ≥ s⁺). A pair with
// fewer passing candidates than K is written with the ones there are and counted in the report.
//
// The output is one JSON line per (query, positive) pair, in this format (the training verb reads it):
//   {"query": ITEM, "positive": ITEM, "negatives": [ITEM, ...], "query_id": "...", "positive_id": "...",
//    "negative_ids": ["..."], "positive_score": 0.83, "negative_scores": [0.71, 0.69]}
// ITEM is an item as `embed --input` reads it (pipeline/item.h) without "role" (its position says it): "text" (a
// corpus title already joined to it), and "image" / "audio" / "video" as absolute paths (a string, or a list for
// several). Items are written as they were embedded: under a modality mode, a corpus item keeps only that content.
// Negatives are listed best first (for sample too); scores are cosines as the ranking computes them (fused under late
// fusion), written as the shortest decimal that reads back as the same 32-bit float.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/dataset.h"
#include "pipeline/encoder.h"

namespace oe::train {

enum class NegativeFilter { PercPos, MarginPos, Abs, TopKShifted, TopK, Sample };
// The filters by name, the default first.
inline const std::vector<std::string> NEGATIVE_FILTERS = {"perc-pos", "margin-pos", "abs",
                                                          "top-k-shifted", "top-k", "sample"};
std::optional<NegativeFilter> negative_filter_from_name(const std::string& name);
const char* negative_filter_name(NegativeFilter filter);

struct FilterOptions {
  NegativeFilter filter = NegativeFilter::PercPos;
  int64_t negatives = 2;       // K, ≥ 1
  double perc = 0.95;          // perc-pos and sample: keep s < perc · s⁺; in (0, 1]
  double margin = 0.05;        // margin-pos: keep s < s⁺ − margin; ≥ 0
  double threshold = 0.7;      // abs: keep s < threshold
  int64_t shift = 10;          // top-k-shifted: candidates skipped first; ≥ 0
  int64_t sample_top = 10;     // sample: the pool is the first sample_top candidates that pass; ≥ 1
  double temperature = 1.0;    // sample: probabilities softmax(score / temperature), in score (cosine) units; > 0
  uint64_t seed = 0;           // sample: with the pair's ids, decides the draw (pair_seed)

  // InvalidInput naming the flag (--negatives, --perc, ...) and the value.
  void validate() const;
};

struct Candidate {
  std::string id;
  float score = 0;
};

struct Selection {
  std::vector<Candidate> negatives;  // at most K, best first
  int64_t removed = 0;               // candidates the filter's rule removed (top-k-shifted: the ones skipped)
};

// Picks the negatives of one (query, positive) pair. `candidates` are best first, the query's positives already left
// out; `positive_score` is s⁺; `seed` decides the draw of the sample filter (ignored by the others).
Selection select_negatives(const std::vector<Candidate>& candidates, float positive_score, const FilterOptions& options,
                           uint64_t seed = 0);

// Draws min(k, n) of the n `scores` without replacement, each draw with probability softmax(score / temperature) over
// the ones left; returns their positions in draw order. The same seed gives the same draw on every platform.
std::vector<size_t> sample_softmax(const std::vector<float>& scores, int64_t k, double temperature, uint64_t seed);

// The seed of one pair's draw: a hash of the run's seed and the two ids, so a pair draws the same whatever else the
// dataset holds and in whatever order pairs are visited.
uint64_t pair_seed(uint64_t seed, const std::string& query_id, const std::string& positive_id);

// An item as a line of the output shows it (see the format above).
nlohmann::ordered_json item_json(const pipeline::EmbedItem& item);

struct MineOptions {
  eval::DatasetOptions dataset;  // its `top` and `keep_items` are set by mine()
  FilterOptions filter;
  int64_t depth = 100;           // candidates per query, positives left out; ≥ 1
  std::filesystem::path out;     // written atomically
};

struct MineReport {
  std::string filter;
  int64_t queries = 0;             // queries with at least one positive that was embedded
  int64_t pairs = 0;               // lines written
  int64_t candidates = 0;          // candidates looked at, summed over pairs
  int64_t removed = 0;             // of them, removed by the filter's rule
  int64_t negatives = 0;           // negatives written
  int64_t short_pairs = 0;         // pairs written with fewer than K negatives
  int64_t short_queries = 0;       // queries with at least one such pair
  int64_t positives_missing = 0;   // judged positives that were not embedded (not in the corpus, failed, left out)
  double mean_positive_score = 0;  // over pairs
  double mean_negative_score = 0;  // over negatives written
  eval::DatasetRun run;            // the embedding side: sizes, cache use, failures, warnings (run.run emptied)

  nlohmann::ordered_json to_json() const;
};

// Embeds the dataset (or loads its cached vectors) with `encoder` and writes options.out. InvalidInput for bad
// options or a dataset that is not in the BEIR layout; IoError when the output cannot be written (checked before
// anything is embedded).
MineReport mine(const pipeline::Encoder& encoder, const std::string& model_name, const MineOptions& options,
                const eval::DatasetProgress& progress = {});

}  // namespace oe::train
