// Late-fusion search over an HNSW index (search/late_search.h): candidates from each view's graph, then every view of
// their segments scored exactly from its stored vector, must give the exact scan's top-k. The reference is brute
// force over the catalog's vectors, fused here; the exact (flat) index of the same sources is the old all-items path.
#include "search/late_search.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "index/store.h"

namespace oe::search {
namespace {

using index::Hit;
using index::Store;
using oe::testing::TempDir;

constexpr int64_t D = 32;
constexpr int64_t K = 10;
// The HNSW path scores in double, the flat path by float32 sgemm: they agree to a few float32 ulps of a cosine.
constexpr double TOL = 1e-6;

index::IndexSettings settings(const std::string& vectors) {
  index::IndexSettings s;
  s.model = "test-model";
  s.model_fingerprint = "f00d";
  s.embedding = R"({"fusion":"late"})";
  s.dim = D;
  s.vectors = vectors;
  s.hnsw_m = 16;
  return s;
}

std::vector<float> normalized(std::vector<float> v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

std::vector<float> unit_vector(std::mt19937& rng) {
  std::normal_distribution<float> n;
  std::vector<float> v(D);
  for (auto& x : v) x = n(rng);
  return normalized(v);
}

// `v` moved by a random direction of length `noise`, back on the sphere.
std::vector<float> near(const float* v, float noise, std::mt19937& rng) {
  const std::vector<float> r = unit_vector(rng);
  std::vector<float> out(D);
  for (int64_t i = 0; i < D; ++i) out[i] = v[i] + noise * r[i];
  return normalized(out);
}

double dot(const std::vector<float>& a, const float* b) {
  double s = 0;
  for (int64_t i = 0; i < D; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

index::Segment segment(int64_t index, const std::string& modality, std::mt19937& rng) {
  index::Segment s;
  s.index = index;
  s.modality = modality;
  s.vector = unit_vector(rng);
  return s;
}

// A late-fusion corpus: 160 videos of 1-2 segments, each a frames item and (but for every fifth video, silent) a
// sound item, and 120 texts (1-2 segments) and images: 360 documents, 580 items.
std::vector<Store::SourceUpdate> late_corpus(std::mt19937& rng) {
  std::vector<Store::SourceUpdate> out;
  auto source = [&](const std::string& name, const std::string& modality) {
    Store::SourceUpdate u;
    u.source.key = u.source.path = "/data/" + name;
    u.source.origin = "/data";
    u.source.content_hash = name;
    u.source.modality = modality;
    u.source.status = "ok";
    return u;
  };
  for (int i = 0; i < 160; ++i) {
    Store::SourceUpdate u = source(fmt::format("v{}.mkv", i), "video");
    for (int j = 0; j < 1 + i % 2; ++j) {
      u.segments.push_back(segment(j, "video", rng));
      if (i % 5 != 4) u.segments.push_back(segment(j, "video-sound", rng));
    }
    out.push_back(std::move(u));
  }
  for (int i = 0; i < 120; ++i) {
    const bool text = i % 2 == 0;
    Store::SourceUpdate u = source(fmt::format("d{}.{}", i, text ? "txt" : "png"), text ? "text" : "image");
    for (int j = 0; j < (text ? 1 + i % 4 / 2 : 1); ++j) u.segments.push_back(segment(j, u.source.modality, rng));
    out.push_back(std::move(u));
  }
  return out;
}

// Every stored item: its catalog row and its vector.
struct Corpus {
  std::vector<Hit> items;
  std::vector<float> vectors;  // [items, D]
  std::map<int64_t, size_t> row_of;  // item id -> row
  explicit Corpus(const Store& store) {
    std::vector<int64_t> ids;
    store.load_vectors(ids, vectors);
    items = store.describe(ids);
    for (size_t r = 0; r < ids.size(); ++r) row_of[ids[r]] = r;
  }
  const float* vector(int64_t id) const { return vectors.data() + row_of.at(id) * D; }
  // The rank (from 0) of item `id` among the items of `modalities` for query q (brute force).
  int64_t rank(const std::vector<float>& q, int64_t id, const std::vector<std::string>& modalities) const {
    const double s = dot(q, vector(id));
    int64_t better = 0;
    for (size_t r = 0; r < items.size(); ++r)
      if (std::count(modalities.begin(), modalities.end(), items[r].modality) && dot(q, vectors.data() + r * D) > s)
        ++better;
    return better;
  }
  // The sound item of the segment whose frames item is `frames` (0: none).
  int64_t sound_of(int64_t frames) const {
    const Hit& f = items[row_of.at(frames)];
    for (const Hit& h : items)
      if (h.key == f.key && h.segment == f.segment && h.modality == "video-sound") return h.item_id;
    return 0;
  }
};

// Brute force: every segment of the requested modalities (all when empty) as its frames (or only) item with
// W · frames + (1 − W) · sound (frames alone without sound), best first.
std::vector<Hit> fused_reference(const Corpus& c, const std::vector<float>& q, double w,
                                 const std::vector<std::string>& modalities = {}) {
  std::map<std::pair<std::string, int64_t>, double> sound;
  for (const Hit& item : c.items)
    if (item.modality == "video-sound") sound[{item.key, item.segment}] = dot(q, c.vector(item.item_id));
  std::vector<Hit> out;
  for (const Hit& item : c.items) {
    if (item.modality == "video-sound") continue;
    if (!modalities.empty() && !std::count(modalities.begin(), modalities.end(), item.modality)) continue;
    const double frames = dot(q, c.vector(item.item_id));
    auto it = sound.find({item.key, item.segment});
    Hit h = item;
    h.score = static_cast<float>(it == sound.end() ? frames : w * frames + (1 - w) * it->second);
    out.push_back(h);
  }
  std::sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) {
    return a.score > b.score || (a.score == b.score && a.item_id < b.item_id);
  });
  return out;
}

// `got` is the top-k of `want`: at every rank the same score (within TOL) and the same item, or one that `want`
// scores within TOL of it (two near-equal documents that float rounding may order either way).
void expect_same_top_k(const std::vector<Hit>& got, const std::vector<Hit>& want, int64_t k, const std::string& what) {
  ASSERT_EQ(got.size(), std::min<size_t>(k, want.size())) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, want[i].score, TOL) << what << ", rank " << i;
    if (got[i].item_id == want[i].item_id) continue;
    auto same = std::find_if(want.begin(), want.end(), [&](const Hit& h) { return h.item_id == got[i].item_id; });
    EXPECT_TRUE(same != want.end() && std::abs(same->score - want[i].score) <= TOL)
        << what << ", rank " << i << ": item " << got[i].item_id << " instead of " << want[i].item_id;
  }
}

class LateSearch : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(17);
    const auto sources = late_corpus(rng);
    hnsw_ = Store::open_for_writing(tmp_ / "hnsw", settings("hnsw"));
    hnsw_->put(sources);
    flat_ = Store::open_for_writing(tmp_ / "flat", settings("flat"));
    flat_->put(sources);
  }
  TempDir tmp_;
  std::unique_ptr<Store> hnsw_, flat_;
};

// Many queries (random, and near one document's frames or sound so that its other view is far down its own list),
// weights and modality filters: HNSW with the default candidates gives the exact scan's top-10.
TEST_F(LateSearch, HnswGivesTheExactScansTopKWithExactScores) {
  const Corpus c(*hnsw_);
  std::vector<int64_t> frames_ids, sound_ids;
  for (const Hit& h : c.items) (h.modality == "video-sound" ? sound_ids : frames_ids).push_back(h.item_id);
  std::mt19937 rng(3);
  const std::vector<std::vector<std::string>> filters = {{}, {"video"}, {}, {"text", "image"}};
  const std::vector<std::string> frames_side = {"text", "image", "video"};
  int rescued = 0;  // hits with a view that was not among its graph's candidates
  for (int i = 0; i < 60; ++i) {
    std::vector<float> q = unit_vector(rng);
    if (i % 3 == 1) q = near(c.vector(frames_ids[rng() % frames_ids.size()]), 0.3f, rng);
    if (i % 3 == 2) q = near(c.vector(sound_ids[rng() % sound_ids.size()]), 0.3f, rng);
    const double w = std::vector<double>{0.5, 0.7, 0.3}[i % 3];
    const auto& filter = filters[i % filters.size()];
    const std::string what = fmt::format("query {} (weight {}, {} modalities)", i, w, filter.size());
    const LateSearchOptions options{w};
    const auto got = late_fusion_search(*hnsw_, q.data(), K, filter, options);
    const auto exact = late_fusion_search(*flat_, q.data(), K, filter, options);
    const auto want = fused_reference(c, q, w, filter);
    expect_same_top_k(exact, want, K, what + ", exact index");
    expect_same_top_k(got, exact, K, what + ", HNSW against the exact index");
    const int64_t candidates = late_candidates(K, options);
    for (const Hit& h : got) {
      const int64_t sound = h.modality == "video" ? c.sound_of(h.item_id) : 0;
      rescued += c.rank(q, h.item_id, frames_side) >= candidates ||
                 (sound != 0 && c.rank(q, sound, {"video-sound"}) >= candidates);
    }
  }
  // Otherwise the queries never needed a view that the graphs did not return.
  EXPECT_GT(rescued, 5);
}

// With as few candidates as hits, most views come from no graph: each is still scored from its stored vector. Queries
// equal to one video's frames (its sound not among the sound graph's candidates) and to another's sound (its frames
// not among the frames graph's): both videos are hits with their exact fused scores, and so is every other hit.
TEST_F(LateSearch, AViewTheGraphDidNotReturnIsScoredFromItsStoredVector) {
  const Corpus c(*hnsw_);
  const LateSearchOptions options{/*weight=*/0.5, /*hnsw_ef_search=*/0, /*candidates=*/K};
  const std::vector<std::string> frames_side = {"text", "image", "video"}, sound_side = {"video-sound"};
  int checked[2] = {0, 0};  // queries equal to the frames, to the sound
  for (const Hit& item : c.items) {
    const int64_t sound = item.modality == "video" ? c.sound_of(item.item_id) : 0;
    if (sound == 0) continue;
    for (const bool by_sound : {false, true}) {
      const int64_t matched = by_sound ? sound : item.item_id, other = by_sound ? item.item_id : sound;
      const std::vector<float> q(c.vector(matched), c.vector(matched) + D);
      // Only where the other view is outside its graph's top K (a view that its graph returns proves nothing).
      if (checked[by_sound] == 5 || c.rank(q, other, by_sound ? frames_side : sound_side) < K) continue;
      ++checked[by_sound];
      const auto got = late_fusion_search(*hnsw_, q.data(), K, {}, options);
      const auto want = fused_reference(c, q, options.weight);
      auto hit = std::find_if(got.begin(), got.end(), [&](const Hit& h) { return h.item_id == item.item_id; });
      ASSERT_NE(hit, got.end()) << item.key << ": the video whose view is the query is not a hit";
      EXPECT_NEAR(hit->score, 0.5 * dot(q, c.vector(item.item_id)) + 0.5 * dot(q, c.vector(sound)), TOL) << item.key;
      for (const Hit& h : got) {
        auto ref = std::find_if(want.begin(), want.end(), [&](const Hit& r) { return r.item_id == h.item_id; });
        ASSERT_NE(ref, want.end()) << "item " << h.item_id << " is no document";
        EXPECT_NEAR(h.score, ref->score, TOL) << "item " << h.item_id;
      }
    }
  }
  EXPECT_EQ(checked[0], 5);
  EXPECT_EQ(checked[1], 5);
}

// What the rescoring reads: every view of the given items' segments, each once, with the vector stored for it.
TEST_F(LateSearch, SegmentViewsGivesEveryViewOfTheItemsSegments) {
  const Corpus c(*hnsw_);
  int64_t frames = 0, text = 0;
  for (const Hit& h : c.items) {
    if (!frames && h.modality == "video" && c.sound_of(h.item_id)) frames = h.item_id;
    if (!text && h.modality == "text") text = h.item_id;
  }
  const int64_t sound = c.sound_of(frames);
  const auto views = hnsw_->segment_views({sound, text, frames, /*not stored=*/1000000});
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[0].hit.item_id, frames);  // the sound's segment, by item id
  EXPECT_EQ(views[1].hit.item_id, sound);
  EXPECT_EQ(views[2].hit.item_id, text);
  EXPECT_EQ(views[0].hit.modality, "video");
  EXPECT_EQ(views[1].hit.modality, "video-sound");
  for (const auto& v : views) {
    const Hit& row = c.items[c.row_of.at(v.hit.item_id)];
    EXPECT_EQ(v.hit.key, row.key);
    EXPECT_EQ(v.hit.segment, row.segment);
    EXPECT_EQ(v.hit.path, row.path);
    EXPECT_EQ(v.vector, hnsw_->vector_of(v.hit.item_id).value());
  }
}

// The sound-view candidates: a filter to video-sound alone (a third of the items) returns as many as asked, all sound
// views, nearly all of the exact top; after a change of the catalog the filter knows the new items' modalities.
TEST_F(LateSearch, HnswFilterToSoundViewsFindsTheirTopC) {
  const Corpus c(*hnsw_);
  std::mt19937 rng(9);
  int found = 0, total = 0;
  for (int i = 0; i < 20; ++i) {
    const auto q = unit_vector(rng);
    const auto got = hnsw_->search(q.data(), 64, {"video-sound"});
    ASSERT_EQ(got.size(), 64u);
    for (const Hit& h : got) {
      EXPECT_EQ(h.modality, "video-sound");
      found += c.rank(q, h.item_id, {"video-sound"}) < 64;
    }
    total += 64;
  }
  EXPECT_GE(found, total * 98 / 100) << found << " of " << total;
  // A new video whose sound is the query.
  const auto q = unit_vector(rng);
  Store::SourceUpdate u;
  u.source.key = u.source.path = "/data/new.mkv";
  u.source.content_hash = "new";
  u.source.modality = "video";
  u.source.status = "ok";
  u.segments.push_back(segment(0, "video", rng));
  u.segments.push_back(segment(0, "video-sound", rng));
  u.segments.back().vector = q;
  hnsw_->put({u});
  const auto got = hnsw_->search(q.data(), 1, {"video-sound"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, "/data/new.mkv");
  EXPECT_NEAR(got[0].score, 1.0, 1e-5);
}

}  // namespace
}  // namespace oe::search
