#include "search/late_search.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/modality.h"
#include "search/late_fusion.h"

namespace oe::search {
namespace {

// The document a view belongs to: its source and segment.
std::string document_of(const index::Hit& h) { return fmt::format("{}#{}", h.key, h.segment); }

bool wanted(const std::vector<std::string>& modalities, const std::string& modality) {
  return modalities.empty() || std::find(modalities.begin(), modalities.end(), modality) != modalities.end();
}

// Fuses the scored views of `views` (scores in hits) and keeps the best k documents of the requested modalities.
std::vector<index::Hit> fuse_top_k(const std::vector<index::Hit>& views, int64_t k,
                                   const std::vector<std::string>& modalities, double weight) {
  const std::string sound = modality_name(Modality::VideoSound);
  std::vector<ScoredView> rows;
  rows.reserve(views.size());
  for (const index::Hit& h : views) rows.push_back({document_of(h), h.modality == sound, h.score});
  std::vector<index::Hit> out;
  for (const auto& [row, score] : fuse_views(rows, weight)) {
    if (static_cast<int64_t>(out.size()) == k) break;
    if (!wanted(modalities, views[row].modality)) continue;
    out.push_back(views[row]);
    out.back().score = score;
  }
  return out;
}

// Exact index: every item scored by the store's exact search (the whole flat matrix, which an exact search of k
// passes over anyway), then fused.
std::vector<index::Hit> search_all_items(const index::Store& store, const float* query, int64_t k,
                                         const std::vector<std::string>& modalities, double weight) {
  const int64_t n = store.stats().items;
  return fuse_top_k(store.search(query, n, /*modalities=*/{}, /*hnsw_ef_search=*/0), k, modalities, weight);
}

// The inner product of two vectors of d floats, accumulated in double.
float inner_product(const float* a, const float* b, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return static_cast<float>(s);
}

// HNSW index: the C best of each view's graph, then every view of their segments scored exactly and fused
// (late_search.h).
std::vector<index::Hit> search_candidates(const index::Store& store, const float* query, int64_t k,
                                          const std::vector<std::string>& modalities,
                                          const LateSearchOptions& options) {
  const std::string sound = modality_name(Modality::VideoSound);
  // The frames side: the requested modalities, or every one but the sound view (core/modality.h).
  std::vector<std::string> frames;
  for (const std::string& m : modalities)
    if (m != sound) frames.push_back(m);
  if (!modalities.empty() && frames.empty()) return {};  // only sound views asked for: they are never hits
  if (frames.empty())
    for (Modality m : {Modality::Text, Modality::Image, Modality::Audio, Modality::Video, Modality::Mixed})
      frames.push_back(modality_name(m));
  const int64_t c = late_candidates(k, options);
  std::vector<int64_t> ids;
  for (const auto& side : {frames, std::vector<std::string>{sound}})
    for (const index::Hit& h : store.search(query, c, side, options.hnsw_ef_search)) ids.push_back(h.item_id);
  // Both views of each candidate segment, from their stored vectors: a view the graph did not return counts with its
  // exact score, not as missing.
  std::vector<index::StoredItem> stored = store.segment_views(ids);
  std::vector<index::Hit> views;
  views.reserve(stored.size());
  const int64_t d = store.settings().dim;
  for (index::StoredItem& v : stored) {
    v.hit.score = inner_product(query, v.vector.data(), d);
    views.push_back(std::move(v.hit));
  }
  return fuse_top_k(views, k, modalities, options.weight);
}

}  // namespace

int64_t late_candidates(int64_t k, const LateSearchOptions& options) {
  if (options.candidates > 0) return std::max(k, options.candidates);
  return std::max({4 * k, int64_t{64}, options.hnsw_ef_search});
}

std::vector<index::Hit> late_fusion_search(const index::Store& store, const float* query, int64_t k,
                                           const std::vector<std::string>& modalities,
                                           const LateSearchOptions& options) {
  check_late_fusion_weight(options.weight);
  if (k <= 0) return {};
  if (store.settings().vectors == "hnsw") return search_candidates(store, query, k, modalities, options);
  return search_all_items(store, query, k, modalities, options.weight);
}

}  // namespace oe::search
