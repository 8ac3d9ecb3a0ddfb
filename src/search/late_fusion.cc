#include "search/late_fusion.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace oe::search {

void check_late_fusion_weight(double weight) {
  if (!(weight >= 0.0 && weight <= 1.0))
    throw InvalidInput(fmt::format("the late fusion weight {} is not within [0, 1]", weight));
}

std::vector<std::pair<size_t, float>> fuse_views(const std::vector<ScoredView>& rows, double weight) {
  check_late_fusion_weight(weight);
  std::unordered_map<std::string, float> sound;
  for (const ScoredView& r : rows)
    if (r.sound) sound[r.document] = r.score;
  std::vector<std::pair<size_t, float>> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].sound) continue;
    auto it = sound.find(rows[i].document);
    out.emplace_back(i, it == sound.end() ? rows[i].score : late_fusion_score(rows[i].score, it->second, weight));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

}  // namespace oe::search
