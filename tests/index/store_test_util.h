// What the store tests share: index settings of D-dimensional vectors, random unit vectors and sources, and the
// brute-force ranking of what a store holds.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "index/store.h"

namespace oe::index::testing {

constexpr int64_t D = 32;

inline IndexSettings settings(const std::string& vectors = "flat") {
  IndexSettings s;
  s.model = "test-model";
  s.model_fingerprint = "f00d";
  s.embedding = R"({"query_prefix":"query: "})";
  s.dim = D;
  s.vectors = vectors;
  return s;
}

inline std::vector<float> unit_vector(std::mt19937& rng) {
  std::normal_distribution<float> n;
  std::vector<float> v(D);
  double norm = 0;
  for (auto& x : v) {
    x = n(rng);
    norm += static_cast<double>(x) * x;
  }
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

// `n_sources` sources of 1-3 segments each, alternately text and image.
inline std::vector<Store::SourceUpdate> random_sources(int n_sources, std::mt19937& rng, const std::string& prefix = "s") {
  std::vector<Store::SourceUpdate> out;
  for (int i = 0; i < n_sources; ++i) {
    Store::SourceUpdate u;
    u.source.key = u.source.path = fmt::format("/data/{}{}", prefix, i);
    u.source.origin = "/data";
    u.source.content_hash = fmt::format("h{}", i);
    u.source.modality = i % 2 ? "image" : "text";
    u.source.status = "ok";
    const int segs = 1 + i % 3;
    for (int j = 0; j < segs; ++j) {
      Segment s;
      s.index = j;
      s.modality = u.source.modality;
      s.vector = unit_vector(rng);
      u.segments.push_back(std::move(s));
    }
    out.push_back(std::move(u));
  }
  return out;
}

// Brute force over what was stored: (item id, score) of the best k, ties by smaller id.
inline std::vector<int64_t> brute_force(const Store& store, const std::vector<float>& q, int64_t k,
                                 const std::vector<std::string>& modalities = {}) {
  std::vector<int64_t> ids;
  std::vector<float> m;
  store.load_vectors(ids, m, modalities);
  std::vector<std::pair<float, int64_t>> scored;
  for (size_t i = 0; i < ids.size(); ++i) {
    float s = 0;
    for (int64_t j = 0; j < D; ++j) s += m[i * D + j] * q[j];
    scored.push_back({s, ids[i]});
  }
  std::sort(scored.begin(), scored.end(),
            [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<int64_t> top;
  for (int64_t i = 0; i < std::min<int64_t>(k, scored.size()); ++i) top.push_back(scored[i].second);
  return top;
}

inline std::vector<int64_t> hit_ids(const std::vector<Hit>& hits) {
  std::vector<int64_t> out;
  for (const auto& h : hits) out.push_back(h.item_id);
  return out;
}

}  // namespace oe::index::testing
