// Searching what was embedded: the Retriever is built from the settings an index recorded (or a corpus's options)
// and owns the two decisions a search depends on. Queries are embedded the way the index was built, one vector each
// (a video query with separate fusion in a late-fusion index). Scores of a late-fusion index merge per video
// (late_fusion.h). Ranks over a store (exact or HNSW) or over vectors held in memory (eval).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/store.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"

namespace oe::search {

struct RetrieverOptions {
  double late_weight = 0.5;      // W of late fusion; InvalidInput outside [0, 1]
  int64_t hnsw_ef_search = 0;    // 0: the store's default
  // Late fusion on an HNSW index: the candidates taken from each view's graph (late_search.h); 0: max(4k, 64, ef).
  int64_t late_candidates = 0;
  bool allow_mismatch = false;   // search an index built with another model anyway (with a warning)
};

// The vectors of a corpus in memory: row r belongs to document ids[r]; sound[r] marks the sound view of a video.
struct CorpusMatrix {
  std::vector<std::string> ids;
  std::vector<float> vectors;  // [rows, d]
  std::vector<uint8_t> sound;
  std::vector<int64_t> segment;  // each row's segment (window) within its document; empty: all 0
  int64_t rows() const { return static_cast<int64_t>(ids.size()); }
};

struct RankedDoc {
  std::string id;
  float score = 0;
};

class Retriever {
 public:
  // For an index: its recorded settings say how queries are embedded and whether scores merge. InvalidInput when the
  // model's weights are not the index's (unless allow_mismatch) or its vectors have another dimension.
  Retriever(std::shared_ptr<const model::Model> model, const index::Store& store, RetrieverOptions options = {});
  // For a corpus embedded with `corpus_options`.
  Retriever(std::shared_ptr<const model::Model> model, const pipeline::EmbedOptions& corpus_options,
            RetrieverOptions options = {});

  // How queries are embedded: the corpus options without late fusion.
  const pipeline::Encoder& query_encoder() const { return query_encoder_; }
  bool late_fusion() const { return late_; }
  model::Embedding embed_query(const pipeline::EmbedItem& query) const;

  // The top-k hits of `store` for a query vector, filtered to `modalities` (all when empty); under late fusion each
  // video segment is one hit (its frames item) with the fused score (late_fusion_search).
  std::vector<index::Hit> search(const index::Store& store, const float* query, int64_t k,
                                 const std::vector<Modality>& modalities = {}) const;
  // The top-k documents of `corpus` for each query row of `queries` [nq, d], best first.
  std::vector<std::vector<RankedDoc>> rank(const CorpusMatrix& corpus, const float* queries, int64_t nq, int64_t d,
                                           int64_t k) const;

 private:
  RetrieverOptions options_;
  bool late_ = false;
  pipeline::Encoder query_encoder_;
};

// One hit as the search verb's JSON lines and the server's /v1/search show it: rank (from 1), score, path, modality,
// segment; start, end and unit ("seconds" or "characters") where the segment is a span; the preview where there is
// one; the key where it is not the path.
nlohmann::ordered_json hit_json(const index::Hit& hit, size_t rank);

}  // namespace oe::search
