// Score-level late fusion (the paper's fourth audio+video mode, omni-embed-nemotron.md §3): an index made with
// `--fusion late` holds two vectors per video segment, its frames (modality "video", or "mixed" for an entry with
// text or other media too) and its sound (modality indexer.h SOUND_VIEW, same source and segment). A query is scored
// against both and the segment ranks by
//   score = weight · cos(query, frames) + (1 − weight) · cos(query, sound)
// A video without sound keeps its frames score; every other item keeps its own score.
#pragma once

#include <string>
#include <vector>

#include "index/store.h"

namespace oe::index {

// The one late-fusion rule, for search over an index and for eval over a BEIR corpus: a video segment scores
// weight · frames + (1 − weight) · sound (in double); check_late_fusion_weight throws InvalidInput for a weight
// outside [0, 1].
void check_late_fusion_weight(double weight);
inline float late_fusion_score(float frames, float sound, double weight) {
  return static_cast<float>(weight * static_cast<double>(frames) + (1.0 - weight) * static_cast<double>(sound));
}

// Top-k hits of the store under late fusion. The hit of a video segment is its frames item with the combined score;
// sound items are never hits of their own. `modalities` filters as Store::search does ("video" covers the pairs).
// Exact over every stored item (an HNSW index is searched for all of its items, then combined).
std::vector<Hit> late_fusion_search(const Store& store, const float* query, int64_t k, double weight,
                                    const std::vector<std::string>& modalities = {}, int64_t hnsw_ef_search = 0);

}  // namespace oe::index
