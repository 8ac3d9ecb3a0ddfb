// Searching a late-fusion index (late_fusion.h's rule): each video segment is stored as two items, its frames
// (modality video) and its sound (video-sound, same source and segment), and ranks by
// W · cos(query, frames) + (1 − W) · cos(query, sound).
//
// Exact index: every item is scored (one pass over the flat vectors, as exact search does anyway) and the views of
// each segment fused. HNSW index: the fused top-k is gathered without walking the whole graph, as in a two-list
// threshold search:
//   1. candidates: the C best items of the frames side (every modality but video-sound, or the requested ones) and
//      the C best video-sound items, each an HNSW search with a modality filter (Store::search);
//   2. exact rescoring: every view of every candidate's segment is read from the catalog (Store::segment_views),
//      including a view that the graph did not return, and scored by its exact inner product with the query;
//   3. the views are fused (fuse_views) and the best k segments of the requested modalities kept.
// A segment outside both candidate lists has frames ≤ f_C and sound ≤ s_C (the C-th scores), so it cannot beat a
// candidate whose fused score is above max(f_C, W·f_C + (1 − W)·s_C): with C well above k the result is the exact
// scan's up to the graph's recall.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "index/store.h"

namespace oe::search {

struct LateSearchOptions {
  double weight = 0.5;          // W; InvalidInput outside [0, 1]
  int64_t hnsw_ef_search = 0;   // 0: the store's default
  // C, the candidates taken from each view's graph on an HNSW index (at least k). 0: max(4k, 64, hnsw_ef_search),
  // which keeps the two searches near the cost of one search with a beam of 4C while leaving room for segments that
  // are strong in one view only.
  int64_t candidates = 0;
};

// C for a search of k under `options` (late_search.h's rule).
int64_t late_candidates(int64_t k, const LateSearchOptions& options);

// The top-k hits of a late-fusion `store` for `query` [dim], filtered to `modalities` (names; all when empty): each
// segment is one hit (its frames item, or its only item) with its fused score, best first. Sound views are never
// hits themselves.
std::vector<index::Hit> late_fusion_search(const index::Store& store, const float* query, int64_t k,
                                           const std::vector<std::string>& modalities,
                                           const LateSearchOptions& options);

}  // namespace oe::search
