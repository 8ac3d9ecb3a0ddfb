// What every Store implementation must do (index/store.h), run against each one: today the index folder. Another
// store joins by adding its backend to BACKENDS (a fresh, empty location per test).
#include <functional>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "core/error.h"
#include "index/store.h"
#include "store_test_util.h"

namespace oe::index {
namespace {

using namespace oe::index::testing;
using oe::testing::TempDir;

struct Backend {
  std::string name;
  std::function<std::filesystem::path(const TempDir&)> fresh_location;
};

const Backend BACKENDS[] = {
    {"folder", [](const TempDir& tmp) { return tmp / "idx"; }},
};

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  std::filesystem::path location() {
    if (location_.empty()) location_ = GetParam().fresh_location(tmp_);
    return location_;
  }

 private:
  TempDir tmp_;
  std::filesystem::path location_;
};

TEST_P(StoreContract, ExactSearchEqualsBruteForce) {
  std::mt19937 rng(7);
  auto store = Store::open_for_writing(location(), settings());
  store->put(random_sources(300, rng));
  for (int q = 0; q < 20; ++q) {
    const auto query = unit_vector(rng);
    for (int64_t k : {1, 10, 50}) {
      const auto hits = store->search(query.data(), k);
      std::vector<int64_t> got;
      for (const auto& h : hits) got.push_back(h.item_id);
      EXPECT_EQ(got, brute_force(*store, query, k)) << "query " << q << " k " << k;
      for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
    }
    const auto images = store->search(query.data(), 10, {"image"});
    std::vector<int64_t> got;
    for (const auto& h : images) {
      got.push_back(h.item_id);
      EXPECT_EQ(h.modality, "image");
    }
    EXPECT_EQ(got, brute_force(*store, query, 10, {"image"}));
  }
  // k beyond the collection returns everything.
  const auto q = unit_vector(rng);
  EXPECT_EQ(store->search(q.data(), 100000).size(), static_cast<size_t>(store->stats().items));
  EXPECT_TRUE(store->check().ok());
}

TEST_P(StoreContract, HitsCarryTheCatalogRow) {
  std::mt19937 rng(1);
  auto store = Store::open_for_writing(location(), settings());
  Store::SourceUpdate u;
  u.source = {0, "/m.mp4", "/m.mp4", "/", "hash", 10, "video", 95.0, "ok", ""};
  for (int j = 0; j < 4; ++j) {
    Segment s;
    s.index = j;
    s.modality = "video";
    s.start = 30.0 * j;
    s.end = std::min(95.0, 30.0 * (j + 1));
    s.unit = "s";
    s.vector = unit_vector(rng);
    u.segments.push_back(s);
  }
  store->put({u});
  const auto& target = u.segments[2].vector;
  const auto hits = store->search(target.data(), 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].path, "/m.mp4");
  EXPECT_EQ(hits[0].segment, 2);
  EXPECT_EQ(hits[0].start, 60.0);
  EXPECT_EQ(hits[0].end, 90.0);
  EXPECT_EQ(hits[0].unit, "s");
  EXPECT_NEAR(hits[0].score, 1.0f, 1e-5);
}

TEST_P(StoreContract, ReplacingAndRemovingSourcesLeavesNoOrphans) {
  std::mt19937 rng(3);
  auto store = Store::open_for_writing(location(), settings());
  auto sources = random_sources(10, rng);
  store->put(sources);
  const int64_t before = store->stats().items;
  // Source 2 (3 segments) becomes one segment.
  auto changed = random_sources(3, rng);
  changed[0].source.key = sources[2].source.key;
  store->put({changed[0]});
  EXPECT_EQ(store->stats().items, before - 3 + 1);
  EXPECT_EQ(store->stats().sources, 10);
  EXPECT_EQ(store->remove({sources[0].source.key, "/not/there"}), 1);
  EXPECT_EQ(store->stats().sources, 9);
  // A failed source has no items.
  Store::SourceUpdate failed;
  failed.source = {0, "/bad.png", "/bad.png", "/", "h", 3, "image", 0, "failed", "not an image"};
  store->put({failed});
  EXPECT_EQ(store->find_source("/bad.png")->error, "not an image");
  EXPECT_TRUE(store->check().ok()) << store->check().problems.front();
  EXPECT_EQ(store->stats().failed, 1);
}

TEST_P(StoreContract, RefusesAnotherModelUnlessReset) {
  std::mt19937 rng(6);
  Store::open_for_writing(location(), settings())->put(random_sources(3, rng));
  auto other = settings();
  other.model_fingerprint = "beef";
  try {
    Store::open_for_writing(location(), other);
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("--rebuild"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Store::open(location())->stats().sources, 3);  // nothing lost
  auto store = Store::open_for_writing(location(), other, true);
  EXPECT_EQ(store->stats().sources, 0);
  EXPECT_EQ(store->settings().model_fingerprint, "beef");
}

TEST_P(StoreContract, OneWriterAtATime) {
    auto first = Store::open_for_writing(location(), settings());
  try {
    Store::open_for_writing(location(), settings());
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("another omni-embed process"), std::string::npos) << e.what();
  }
  first.reset();
  EXPECT_NO_THROW(Store::open_for_writing(location(), settings()));
}
// A batch is one transaction: when one source of it cannot be written, none of the batch is, and what was stored
// before stays. A reader opened before a write sees it once committed.
TEST_P(StoreContract, ABatchIsWrittenWholeOrNotAtAll) {
  std::mt19937 rng(8);
  auto store = Store::open_for_writing(location(), settings());
  store->put(random_sources(3, rng, "old"));
  const StoreStats before = store->stats();
  auto reader = Store::open(location());
  auto batch = random_sources(4, rng, "new");
  batch[2].segments[0].vector.pop_back();  // a vector of the wrong dimension
  EXPECT_THROW(store->put(batch), Error);
  EXPECT_EQ(store->stats().sources, before.sources);
  EXPECT_EQ(store->stats().items, before.items);
  EXPECT_FALSE(store->find_source(batch[0].source.key).has_value());
  EXPECT_TRUE(store->check().ok());
  batch[2].segments[0].vector = unit_vector(rng);
  store->put(batch);
  EXPECT_EQ(reader->stats().sources, before.sources + 4);
  EXPECT_TRUE(reader->find_source(batch[3].source.key).has_value());
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::ValuesIn(BACKENDS),
                         [](const ::testing::TestParamInfo<Backend>& info) { return info.param.name; });

}  // namespace
}  // namespace oe::index
