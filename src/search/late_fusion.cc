#include "search/late_fusion.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace oe::search {

void check_late_fusion_weight(double weight) {
  if (!(weight >= 0.0 && weight <= 1.0))
    throw InvalidInput(fmt::format("the late fusion weight {} is not within [0, 1]", weight));
}

std::vector<std::pair<size_t, float>> fuse_views(const std::vector<ScoredView>& rows, double weight) {
  check_late_fusion_weight(weight);
  const auto key = [](const ScoredView& r) { return r.document + '\0' + std::to_string(r.segment); };
  std::unordered_map<std::string, float> sound;
  for (const ScoredView& r : rows)
    if (r.sound) sound[key(r)] = r.score;
  std::vector<std::pair<size_t, float>> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].sound) continue;
    auto it = sound.find(key(rows[i]));
    out.emplace_back(i, it == sound.end() ? rows[i].score : late_fusion_score(rows[i].score, it->second, weight));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

std::vector<std::pair<size_t, float>> rank_documents(const std::vector<ScoredView>& rows, bool late, double weight) {
  std::vector<std::pair<size_t, float>> segments;
  if (late) {
    segments = fuse_views(rows, weight);
  } else {
    for (size_t i = 0; i < rows.size(); ++i) segments.emplace_back(i, rows[i].score);
    std::stable_sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  std::unordered_set<std::string> seen;
  std::vector<std::pair<size_t, float>> out;
  for (const auto& s : segments)
    if (seen.insert(rows[s.first].document).second) out.push_back(s);
  return out;
}

}  // namespace oe::search
