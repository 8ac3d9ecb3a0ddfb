// Score-level late fusion (the paper's fourth audio+video mode, omni-embed-nemotron.md §3): a video under late
// fusion has two vectors, its frames and its sound (pipeline/views.h; in an index, the sound item has modality
// video-sound, same source and segment). A query is scored against both and the video ranks by
//   score = weight · cos(query, frames) + (1 − weight) · cos(query, sound)
// A video without sound keeps its frames score; every other item keeps its own score. The one rule, for search over
// an index and for eval over a corpus held in memory.
#pragma once

#include <cstddef>
#include <cstdint>
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

// One scored row: a view of one segment of a document (an index's source, or a corpus id; the segment is a window of
// a long text, audio or video).
struct ScoredView {
  std::string document;
  bool sound = false;  // the sound view of a video
  float score = 0;
  int64_t segment = 0;
};
// The segments of `rows` with their fused scores, best first (equal scores keep the rows' order): each segment is
// given as the position in `rows` of its frames (or only) view, sound views never appear themselves.
std::vector<std::pair<size_t, float>> fuse_views(const std::vector<ScoredView>& rows, double weight);
// The documents of `rows`, each ranked once by its best segment (each segment's views fused first when `late`),
// best first: the position in `rows` of that segment's frames (or only) view and its score. This is how eval ranks
// a corpus whose long media are embedded in windows: a document is as relevant as its best window.
std::vector<std::pair<size_t, float>> rank_documents(const std::vector<ScoredView>& rows, bool late, double weight);

}  // namespace oe::search
