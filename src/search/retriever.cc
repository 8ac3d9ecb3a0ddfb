#include "search/retriever.h"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "index/knn.h"
#include "search/late_fusion.h"
#include "search/late_search.h"

namespace oe::search {
namespace {

// The options an index was built with, checked against the model that is to embed its queries.
pipeline::EmbedOptions index_options(const model::Model& model, const index::Store& store, bool allow_mismatch) {
  const index::IndexSettings& s = store.settings();
  if (!model.has_fingerprint(s.model_fingerprint)) {
    const std::string msg = fmt::format("index {} was built with model {} (fingerprint {}), not {} (fingerprint {})",
                                        store.location(), s.model, s.model_fingerprint.substr(0, 12),
                                        model.dir().string(), model.fingerprint().substr(0, 12));
    if (!allow_mismatch) throw InvalidInput(msg + "; --allow-mismatch searches anyway");
    log_warn("{}: the scores are not meaningful", msg);
  }
  if (model.adapter_id() != s.adapter_id) {
    auto adapter = [](const std::string& dir, const std::string& id) {
      return id.empty() ? std::string("no adapter") : fmt::format("adapter {} (id {})", dir, id.substr(0, 12));
    };
    const std::string msg = fmt::format("index {} was built with {}, not {}", store.location(),
                                        adapter(s.adapter, s.adapter_id),
                                        adapter(model.adapter_dir().string(), model.adapter_id()));
    if (!allow_mismatch)
      throw InvalidInput(msg + (s.adapter_id.empty() ? "; search without --adapter" : "; give --adapter " + s.adapter) +
                         " (or --allow-mismatch to search anyway)");
    log_warn("{}: the scores are not meaningful", msg);
  }
  if (model.config().text.d_model != s.dim)
    throw InvalidInput(fmt::format("the model gives {}-d vectors but the index holds {}-d ones",
                                   model.config().text.d_model, s.dim));
  return pipeline::EmbedOptions::from_recorded(s.embedding, model);
}

}  // namespace

Retriever::Retriever(std::shared_ptr<const model::Model> model, const index::Store& store, RetrieverOptions options)
    : Retriever(model, index_options(*model, store, options.allow_mismatch), options) {}

Retriever::Retriever(std::shared_ptr<const model::Model> model, const pipeline::EmbedOptions& corpus_options,
                     RetrieverOptions options)
    : options_(options), late_(corpus_options.late_fusion), query_encoder_(std::move(model), corpus_options.for_queries()) {
  check_late_fusion_weight(options_.late_weight);
}

model::Embedding Retriever::embed_query(const pipeline::EmbedItem& query) const {
  return with_context("embedding the query",
                      [&] { return query_encoder_.embedder().embed(query.request()); });
}

std::vector<index::Hit> Retriever::search(const index::Store& store, const float* query, int64_t k,
                                          const std::vector<Modality>& modalities) const {
  std::vector<std::string> names;
  for (Modality m : modalities) names.push_back(modality_name(m));
  if (!late_) return store.search(query, k, names, options_.hnsw_ef_search);
  const LateSearchOptions late{options_.late_weight, options_.hnsw_ef_search, options_.late_candidates};
  return late_fusion_search(store, query, k, names, late);
}

std::vector<std::vector<RankedDoc>> Retriever::rank(const CorpusMatrix& corpus, const float* queries, int64_t nq,
                                                    int64_t d, int64_t k) const {
  std::vector<std::vector<RankedDoc>> out(static_cast<size_t>(nq));
  const int64_t n = corpus.rows();
  OE_CHECK(corpus.segment.empty() || std::ssize(corpus.segment) == n, "corpus segments");
  // A document ranks once, by its best window. Under late fusion every row is scored, then the views of each window
  // fused; otherwise the top k + (rows − documents) rows hold at least k documents.
  const std::unordered_set<std::string> documents(corpus.ids.begin(), corpus.ids.end());
  const int64_t extra = n - std::ssize(documents);
  const auto top = index::exact_top_k(corpus.vectors.data(), n, d, queries, nq, late_ ? n : std::min(n, k + extra));
  for (int64_t q = 0; q < nq; ++q) {
    std::vector<ScoredView> rows;
    for (int64_t j = 0; j < top.k; ++j) {
      const int64_t row = top.labels[q * top.k + j];
      if (row >= 0)
        rows.push_back({corpus.ids[row], late_ && corpus.sound[row] != 0, top.scores[q * top.k + j],
                        corpus.segment.empty() ? 0 : corpus.segment[row]});
    }
    // Equal fused scores rank by document id.
    if (late_)
      std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.document < b.document; });
    for (const auto& [row, score] : rank_documents(rows, late_, options_.late_weight)) {
      if (std::ssize(out[q]) == k) break;
      out[q].push_back({rows[row].document, score});
    }
  }
  return out;
}

nlohmann::ordered_json hit_json(const index::Hit& hit, size_t rank) {
  nlohmann::ordered_json j;
  j["rank"] = rank;
  j["score"] = hit.score;
  j["path"] = hit.path;
  j["modality"] = hit.modality;
  j["segment"] = hit.segment;
  if (hit.unit == "s" || hit.unit == "char") {
    j["start"] = hit.start;
    j["end"] = hit.end;
    j["unit"] = hit.unit == "s" ? "seconds" : "characters";
  }
  if (!hit.preview.empty()) j["preview"] = hit.preview;
  if (hit.key != hit.path) j["key"] = hit.key;
  return j;
}

}  // namespace oe::search
