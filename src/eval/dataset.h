// Evaluating a BEIR-format dataset end to end: corpus.jsonl and queries.jsonl are embedded (through the index, so
// the vectors are cached in a folder, re-used by later runs and resumed after an interruption), every judged query is
// searched exactly over the corpus, and the run is scored with trec_eval's definitions (metrics.h).
//
//   DATASET/corpus.jsonl   {"_id", "title", "text", and optionally "image" / "audio" / "video": paths relative to
//                          DATASET}
//   DATASET/queries.jsonl  {"_id", "text", and optionally media as above}
//   DATASET/qrels/SPLIT.tsv  query-id \t corpus-id \t score (header line first)
//
// A modality mode restricts what of each corpus item is embedded (the paper's ablation): "all" (everything the item
// has), "text", "image", "audio", "video". Items with nothing of that modality are left out of that mode's corpus.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "eval/trec.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"

namespace oe::eval {

// The modality modes of an evaluation: "all" and the four kinds of content.
inline const std::vector<std::string> MODALITY_MODES = {"all", "text", "image", "audio", "video"};

struct DatasetOptions {
  std::filesystem::path dataset;
  std::string split = "test";
  std::filesystem::path cache;  // default: DATASET/.omni-embed-cache
  std::string modality = "all";
  int64_t top = 1000;           // documents retrieved per query
  int64_t batch_tokens = 4096;
  // Late fusion (the corpus options' late_fusion): a video document's score is late_weight · frames score +
  // (1 − late_weight) · sound score. Queries are one vector each (search/retriever.h).
  double late_weight = 0.5;
  // Audio and video documents are embedded whole (audio cut at the clip length), as the model card embeds them; with
  // media_window > 0 (seconds) they are cut into windows as an index cuts them (media_overlap shared) and each
  // document ranks once, as its best window (search::rank_documents). Queries are always whole.
  double media_window = 0, media_overlap = 0;
  // For mining hard negatives (train/mining.h): also return the items and each query's score against every judged
  // document of the corpus, wherever it ranks (DatasetRun::judged_scores).
  bool keep_items = false;
};

struct DatasetRun {
  std::string modality;
  Run run;
  Qrels qrels;
  int64_t corpus_size = 0;        // items in this mode's corpus
  int64_t corpus_embedded = 0;    // embedded now (the rest came from the cache)
  int64_t queries = 0, queries_embedded = 0;
  int64_t left_out = 0;           // corpus items without content of this modality
  std::vector<std::pair<std::string, std::string>> failures;  // (item, why): not embedded, so not ranked
  std::vector<std::string> warnings;                          // e.g. judgments naming ids not in the corpus
  double seconds = 0;
  // With keep_items: the items read, by id (media paths absolute; corpus items restricted to the modality mode), and
  // query id → corpus id → score for every judgment whose query and document were both embedded, scored as the
  // ranking scores (cosine; fused under late fusion).
  std::map<std::string, pipeline::EmbedItem> corpus_items, query_items;
  std::map<std::string, std::map<std::string, float>> judged_scores;
};

using DatasetProgress = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

// Embeds (or loads from the cache) and ranks; InvalidInput for a dataset that is not in the BEIR layout. Qrels that
// name corpus ids not in the corpus are kept (they count as relevant documents never retrieved, as in BEIR) and
// reported in `warnings`.
DatasetRun run_dataset(const pipeline::Encoder& corpus_encoder, const std::string& model_name,
                       const DatasetOptions& options, const DatasetProgress& progress = {});

// Writes a run in TREC format (qid Q0 docid rank score tag), best first; scores printed so they read back exactly.
void write_run(const std::filesystem::path& path, const Run& run, const std::string& tag);

}  // namespace oe::eval
