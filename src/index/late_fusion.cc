#include "index/late_fusion.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "index/indexer.h"

namespace oe::index {

void check_late_fusion_weight(double weight) {
  if (!(weight >= 0.0 && weight <= 1.0))
    throw InvalidInput(fmt::format("the late fusion weight {} is not within [0, 1]", weight));
}

std::vector<Hit> late_fusion_search(const Store& store, const float* query, int64_t k, double weight,
                                    const std::vector<std::string>& modalities, int64_t hnsw_ef_search) {
  check_late_fusion_weight(weight);
  if (k <= 0) return {};
  const int64_t n = store.stats().items;
  std::vector<Hit> all = store.search(query, n, {}, hnsw_ef_search > 0 ? std::max(hnsw_ef_search, n) : 0);
  // The sound score of each (source, segment).
  std::map<std::pair<std::string, int64_t>, float> sound;
  for (const Hit& h : all)
    if (h.modality == SOUND_VIEW) sound[{h.key, h.segment}] = h.score;
  std::vector<Hit> out;
  for (Hit& h : all) {
    if (h.modality == SOUND_VIEW) continue;
    if (!modalities.empty() && std::find(modalities.begin(), modalities.end(), h.modality) == modalities.end())
      continue;
    auto it = sound.find({h.key, h.segment});
    if (it != sound.end()) h.score = late_fusion_score(h.score, it->second, weight);
    out.push_back(std::move(h));
  }
  std::stable_sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) { return a.score > b.score; });
  if (static_cast<int64_t>(out.size()) > k) out.resize(static_cast<size_t>(k));
  return out;
}

}  // namespace oe::index
