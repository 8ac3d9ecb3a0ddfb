// Score-level late fusion (the paper's fourth audio+video mode, omni-embed-nemotron.md §3): a video under late
// fusion has two vectors, its frames and its sound (pipeline/views.h; in an index, the sound item has modality
// video-sound, same source and segment). A query is scored against both and the video ranks by
//   score = weight · cos(query, frames) + (1 − weight) · cos(query, sound)
// A video without sound keeps its frames score; every other item keeps its own score. The one rule, for search over
// an index and for eval over a corpus held in memory.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace oe::search {

// InvalidInput for a weight outside [0, 1].
void check_late_fusion_weight(double weight);
// weight · frames + (1 − weight) · sound, in double.
inline float late_fusion_score(float frames, float sound, double weight) {
  return static_cast<float>(weight * static_cast<double>(frames) + (1.0 - weight) * static_cast<double>(sound));
}

// One scored row: a view of a document (an index's source and segment, or a corpus id).
struct ScoredView {
  std::string document;
  bool sound = false;  // the sound view of a video
  float score = 0;
};
// The documents of `rows` with their fused scores, best first (equal scores keep the rows' order): each document is
// given as the position in `rows` of its frames (or only) view, sound views never appear themselves.
std::vector<std::pair<size_t, float>> fuse_views(const std::vector<ScoredView>& rows, double weight);

}  // namespace oe::search
