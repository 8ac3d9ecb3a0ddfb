// The folder store: its caches (the memory-mapped vectors, the HNSW graph) are trusted only through the catalog's
// checksums, HNSW finds nearly what exact search finds, and every kind of bad folder gets a clear error that leaves
// the folder as it was. What every store must do is in store_contract_test.cc.
#include "index/folder_store.h"
#include "index/store.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "store_test_util.h"
#include "core/error.h"
#include "index/knn.h"
#include "index/sqlite.h"
#include "io/hash.h"

namespace oe::index {
namespace {

namespace fs = std::filesystem;
using oe::testing::TempDir;
using namespace oe::index::testing;

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Overwrites `n` bytes of the file at `offset` with `byte`, keeping its size.
void overwrite(const fs::path& path, size_t offset, size_t n, char byte) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  const std::string bytes(n, byte);
  f.write(bytes.data(), static_cast<std::streamsize>(n));
}

// The one file of the folder whose name starts with `prefix` and ends with ".bin".
fs::path only_cache_file(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.path().extension() == ".bin") found.push_back(e.path());
  }
  EXPECT_EQ(found.size(), 1u) << prefix;
  return found.empty() ? fs::path() : found[0];
}

bool mentions(const CheckReport& r, const std::string& what) {
  for (const auto& p : r.problems)
    if (p.find(what) != std::string::npos) return true;
  return false;
}

TEST(Store, ExactSearchReadsAMappedVectorFileAndSurvivesADamagedOne) {
  TempDir tmp;
  std::mt19937 rng(11);
  auto store = Store::open_for_writing(tmp / "idx", settings());
  store->put(random_sources(50, rng));
  store->prepare_search();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(tmp / "idx"))
    if (e.path().filename().string().rfind("flat-", 0) == 0) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const auto query = unit_vector(rng);
  auto ids = [&](const std::vector<Hit>& hits) {
    std::vector<int64_t> out;
    for (const auto& h : hits) out.push_back(h.item_id);
    return out;
  };
  const auto want = brute_force(*store, query, 10);
  EXPECT_EQ(ids(Store::open(tmp / "idx")->search(query.data(), 10)), want);
  // Torn, then foreign: the reader notices from the size and the header, and searches correctly anyway.
  const auto size = fs::file_size(files[0]);
  fs::resize_file(files[0], size - 5);
  EXPECT_EQ(ids(Store::open(tmp / "idx")->search(query.data(), 10)), want);
  EXPECT_EQ(fs::file_size(files[0]), size);  // written again
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.write("GARBAGE!", 8);
  }
  EXPECT_EQ(ids(Store::open(tmp / "idx")->search(query.data(), 10)), want);
  // A new generation replaces the file.
  store->put(random_sources(3, rng, "more"));
  const auto want2 = brute_force(*store, query, 10);
  EXPECT_EQ(ids(store->search(query.data(), 10)), want2);
  EXPECT_FALSE(fs::exists(files[0]));
}

TEST(Store, AFlatCacheWithOtherVectorsOfTheRightSizeIsNeitherReadNorCalledConsistent) {
  // Its header and size were all that was checked: other vectors in a file of the right size gave a wrong ranking
  // with exit 0, and --check did not look at the file.
  TempDir tmp;
  std::mt19937 rng(12);
  auto store = Store::open_for_writing(tmp / "idx", settings());
  store->put(random_sources(60, rng));
  store->prepare_search();
  const fs::path flat = only_cache_file(tmp / "idx", "flat-");
  const auto query = unit_vector(rng);
  const auto want = brute_force(*store, query, 10);
  ASSERT_EQ(hit_ids(Store::open(tmp / "idx")->search(query.data(), 10)), want);
  // The last 20 rows become vectors of 0.747 in every component, which would outscore every unit vector.
  const size_t size = fs::file_size(flat), rows = 20 * D * sizeof(float);
  overwrite(flat, size - rows, rows, '\x3f');
  auto reader = Store::open(tmp / "idx");
  EXPECT_TRUE(mentions(reader->check(), "the cache " + flat.filename().string() + " does not have the checksum"));
  EXPECT_EQ(hit_ids(reader->search(query.data(), 10)), want);
  // Written again from the catalog, and consistent from then on.
  EXPECT_TRUE(Store::open(tmp / "idx")->check().ok());
  EXPECT_EQ(file_bytes(flat).substr(size - rows).find(std::string(16, '\x3f')), std::string::npos);
}

TEST(Store, CheckFindsOrphansAndBadVectors) {
  TempDir tmp;
  std::mt19937 rng(4);
  {
    auto store = Store::open_for_writing(tmp / "idx", settings());
    store->put(random_sources(4, rng));
  }
  {
    Database db(tmp / "idx" / "catalog.sqlite", false);
    db.exec("PRAGMA foreign_keys=OFF; DELETE FROM sources WHERE key = '/data/s1';"
            "UPDATE items SET vector = zeroblob(8) WHERE id = 1;");
  }
  auto store = Store::open(tmp / "idx");
  const auto report = store->check();
  EXPECT_FALSE(report.ok());
  std::string all;
  for (const auto& p : report.problems) all += p + "\n";
  EXPECT_NE(all.find("orphan"), std::string::npos) << all;
  EXPECT_NE(all.find("vector of 8 bytes"), std::string::npos) << all;
}

// A late-fusion video has two views of one segment (frames and sound): consistent. Two items of one modality in
// one segment, or a gap in the numbering, are not.
TEST(Store, CheckTakesTwoViewsOfASegmentButNotTwoOfOneModality) {
  TempDir tmp;
  std::mt19937 rng(5);
  auto store = Store::open_for_writing(tmp / "idx", settings());
  auto sources = random_sources(2, rng);
  Segment sound = sources[0].segments[0];
  sound.modality = "video-sound";
  sound.vector = unit_vector(rng);
  sources[0].segments.push_back(sound);
  store->put(sources);
  EXPECT_TRUE(store->check().ok()) << store->check().problems.front();
  {
    Database db(tmp / "idx" / "catalog.sqlite", false);
    db.exec("UPDATE items SET modality = 'text' WHERE modality = 'video-sound'");
  }
  auto report = store->check();
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.problems.front().find("a segment has two items of one modality"), std::string::npos)
      << report.problems.front();
  {
    Database db(tmp / "idx" / "catalog.sqlite", false);
    db.exec("UPDATE items SET modality = 'video-sound' WHERE modality = 'text' AND id = (SELECT MAX(id) FROM items "
            "WHERE segment = 0 AND source_id = (SELECT MIN(source_id) FROM items));"
            "UPDATE items SET segment = segment + 1 WHERE source_id = (SELECT MAX(source_id) FROM items)");
  }
  report = store->check();
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.problems.front().find("its segments are not numbered 0..1"), std::string::npos)
      << report.problems.front();
}

TEST(Store, HnswFindsAlmostAllExactNeighboursAndCachesItsGraph) {
  TempDir tmp;
  std::mt19937 rng(5);
  auto s = settings("hnsw");
  s.hnsw_m = 16;
  auto store = Store::open_for_writing(tmp / "idx", s);
  store->put(random_sources(400, rng));
  store->prepare_search();
  int found = 0, total = 0;
  for (int q = 0; q < 20; ++q) {
    const auto query = unit_vector(rng);
    const auto exact = brute_force(*store, query, 10);
    std::vector<int64_t> got;
    for (const auto& h : store->search(query.data(), 10, {}, 200)) got.push_back(h.item_id);
    for (int64_t id : exact) found += std::count(got.begin(), got.end(), id) > 0;
    total += 10;
    for (const auto& h : store->search(query.data(), 5, {"text"})) EXPECT_EQ(h.modality, "text");
  }
  EXPECT_GE(found, total * 95 / 100) << found << " of " << total;
  std::vector<fs::path> graphs;
  for (const auto& e : fs::directory_iterator(tmp / "idx"))
    if (e.path().extension() == ".bin") graphs.push_back(e.path());
  ASSERT_EQ(graphs.size(), 1u);
  // A reader loads the cached graph and gives the same answer.
  const auto query = unit_vector(rng);
  const auto a = store->search(query.data(), 10);
  // Graphs built on several threads may differ a little: the answers must agree on nearly all neighbours.
  auto same = [&](const std::vector<Hit>& b) {
    ASSERT_EQ(a.size(), b.size());
    int common = 0;
    for (const auto& x : a)
      for (const auto& y : b) common += x.item_id == y.item_id;
    EXPECT_GE(common, 8);
  };
  same(Store::open(tmp / "idx")->search(query.data(), 10));
  // A damaged cache is not read: the graph is rebuilt from the catalog.
  const auto size = fs::file_size(graphs[0]);
  fs::resize_file(graphs[0], size / 2);
  same(Store::open(tmp / "idx")->search(query.data(), 10));
  EXPECT_EQ(fs::file_size(graphs[0]), size);  // and written again
  // A change of the catalog makes a new generation and a new graph.
  store->put(random_sources(2, rng, "new"));
  store->search(query.data(), 10);
  EXPECT_FALSE(fs::exists(graphs[0]));
}

TEST(Store, ATamperedGraphIsNotReadEvenWithItsChecksumFileRewritten) {
  // hnswlib trusts every count and neighbour id in the file: a graph changed together with the checksum file beside
  // it crashed search, while --check called the index consistent. The checksum is the catalog's now.
  TempDir tmp;
  std::mt19937 rng(13);
  auto s = settings("hnsw");
  s.hnsw_m = 16;
  auto store = Store::open_for_writing(tmp / "idx", s);
  store->put(random_sources(200, rng));
  store->prepare_search();
  const fs::path graph = only_cache_file(tmp / "idx", "hnsw-");
  // The middle half of the file (neighbour counts and ids) becomes 0x7f7f7f7f, far past the graph's size.
  const size_t size = fs::file_size(graph);
  overwrite(graph, size / 4, size / 2, '\x7f');
  for (const auto& e : fs::directory_iterator(tmp / "idx"))
    if (e.path().extension() == ".sha256") std::ofstream(e.path()) << io::sha256_file_hex(graph) << "\n";
  auto reader = Store::open(tmp / "idx");
  EXPECT_TRUE(mentions(reader->check(), "the cache " + graph.filename().string() + " does not have the checksum"));
  const auto query = unit_vector(rng);
  const auto exact = brute_force(*store, query, 10);
  const auto got = hit_ids(reader->search(query.data(), 10, {}, 200));  // rebuilt from the catalog
  int found = 0;
  for (int64_t id : exact) found += std::count(got.begin(), got.end(), id) > 0;
  EXPECT_GE(found, 8);
  EXPECT_TRUE(Store::open(tmp / "idx")->check().ok());
}

TEST(Store, AWriterRefusesADamagedCatalogAndChangesNothing) {
  // A bad page in the middle of the catalog was noticed only by --check, or by a write that reached it mid-run.
  TempDir tmp;
  std::mt19937 rng(14);
  Store::open_for_writing(tmp / "idx", settings())->put(random_sources(300, rng));  // closed: the WAL checkpointed
  const fs::path catalog = tmp / "idx" / "catalog.sqlite";
  const size_t page = 4096, pages = fs::file_size(catalog) / page;
  ASSERT_GE(pages, 8u);
  overwrite(catalog, (pages / 2) * page, page, '\xa5');
  const std::string before = file_bytes(catalog);
  try {
    Store::open_for_writing(tmp / "idx", settings())->put(random_sources(1, rng, "new"));
    ADD_FAILURE() << "a damaged catalog was opened for writing";
  } catch (const InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((tmp / "idx").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("its catalog is damaged"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nothing was written"), std::string::npos) << msg;
  }
  EXPECT_EQ(file_bytes(catalog), before);
  // --check lists the damage (a query stopped by a bad page is one more problem, not an exception).
  EXPECT_FALSE(Store::open(tmp / "idx")->check().ok());
}

TEST(Store, AnIndexRecordingAnAliasOfTheFingerprintIsTheSameModelsAndIsUpgraded) {
  // An index that recorded what earlier versions computed for the same weights keeps its vectors.
  TempDir tmp;
  std::mt19937 rng(7);
  Store::open_for_writing(tmp / "idx", settings())->put(random_sources(3, rng));  // records "f00d"
  auto now = settings();
  now.model_fingerprint = "c0ffee";
  now.fingerprint_aliases = {"f00d"};
  EXPECT_EQ(settings_difference(Store::open(tmp / "idx")->settings(), now), "");
  auto store = Store::open_for_writing(tmp / "idx", now);
  EXPECT_EQ(store->stats().sources, 3);
  EXPECT_EQ(store->settings().model_fingerprint, "c0ffee");
  store.reset();
  EXPECT_EQ(read_settings(tmp / "idx").model_fingerprint, "c0ffee");
}

TEST(Store, RefusesAnotherFormatVersionAndTouchesNothing) {
  TempDir tmp;
  std::mt19937 rng(8);
  Store::open_for_writing(tmp / "idx", settings())->put(random_sources(3, rng));
  {
    Database db(tmp / "idx" / "catalog.sqlite", false);
    db.exec("UPDATE meta SET value = '99' WHERE key = 'format_version'; PRAGMA wal_checkpoint(TRUNCATE);");
  }
  auto bytes = [&] {
    std::ifstream in(tmp / "idx" / "catalog.sqlite", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = bytes();
  for (int writing = 0; writing < 2; ++writing) {
    try {
      if (writing)
        Store::open_for_writing(tmp / "idx", settings());
      else
        Store::open(tmp / "idx");
      FAIL();
    } catch (const InvalidInput& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("format version 99"), std::string::npos) << msg;
      EXPECT_NE(msg.find("version 1"), std::string::npos) << msg;
    }
  }
  EXPECT_EQ(bytes(), before);
}

TEST(Store, RefusesSettingsWithAFloatForAnInteger) {
  // Found by fuzz/settings.cc: nlohmann cast "dim": 1e300 to int64, which is undefined (INT64_MIN in practice).
  TempDir tmp;
  Store::open_for_writing(tmp / "idx", settings());
  {
    Database db(tmp / "idx" / "catalog.sqlite", false);
    db.exec("UPDATE meta SET value = json_set(value, '$.dim', 1e300) WHERE key = 'settings';"
            "PRAGMA wal_checkpoint(TRUNCATE);");
  }
  try {
    read_settings(tmp / "idx");
    FAIL() << "read dim as " << read_settings(tmp / "idx").dim;
  } catch (const InvalidInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((tmp / "idx").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("'dim' must be an integer"), std::string::npos) << msg;
  }
}

TEST(Store, AGenerationThatIsNotACountIsAnErrorNamingTheIndex) {
  // It was std::stoll's "internal error: stoll" before.
  TempDir tmp;
  std::mt19937 rng(9);
  Store::open_for_writing(tmp / "idx", settings())->put(random_sources(3, rng));
  for (const char* bad : {"x", "", "-1", "12abc", "99999999999999999999"}) {
    {
      Database db(tmp / "idx" / "catalog.sqlite", false);
      db.exec(fmt::format("UPDATE meta SET value = '{}' WHERE key = 'generation'; PRAGMA wal_checkpoint(TRUNCATE);",
                          bad));
    }
    const std::vector<float> q(static_cast<size_t>(settings().dim), 0.125f);
    try {
      Store::open(tmp / "idx")->search(q.data(), 3);
      ADD_FAILURE() << "generation '" << bad << "' was read";
    } catch (const InvalidInput& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find((tmp / "idx").string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(fmt::format("generation is '{}', not a count", bad)), std::string::npos) << msg;
    }
  }
}

TEST(Store, RefusesFoldersThatAreNotIndexes) {
  TempDir tmp;
  fs::create_directories(tmp / "photos");
  std::ofstream(tmp / "photos" / "a.jpg") << "x";
  EXPECT_THROW(Store::open_for_writing(tmp / "photos", settings()), InvalidInput);
  EXPECT_TRUE(fs::exists(tmp / "photos" / "a.jpg"));
  EXPECT_THROW(Store::open(tmp / "photos"), InvalidInput);
  // A catalog that is not a database.
  fs::create_directories(tmp / "broken");
  std::ofstream(tmp / "broken" / "catalog.sqlite") << "this is not SQLite, just text of some length............";
  try {
    Store::open(tmp / "broken");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("catalog.sqlite"), std::string::npos) << e.what();
  }
  std::ofstream(tmp / "file") << "x";
  EXPECT_THROW(Store::open_for_writing(tmp / "file", settings()), InvalidInput);
}

TEST(Store, ABlankCatalogLeftByACrashIsReportedAndCreatedAgain) {
  // A process killed between opening a new SQLite file and its first commit leaves a database without tables.
  TempDir tmp;
  fs::create_directories(tmp / "idx");
  std::ofstream(tmp / "idx" / "catalog.sqlite").flush();
  try {
    Store::open(tmp / "idx");
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("never completely created"), std::string::npos) << e.what();
  }
  std::mt19937 rng(9);
  Store::open_for_writing(tmp / "idx", settings())->put(random_sources(2, rng));
  EXPECT_EQ(Store::open(tmp / "idx")->stats().sources, 2);
  // Creation goes through a temporary name: none is left behind.
  for (const auto& e : fs::directory_iterator(tmp / "idx"))
    EXPECT_EQ(e.path().filename().string().find(".new"), std::string::npos) << e.path();
}

TEST(Knn, ExactTopKMatchesBruteForceForManyQueries) {
  std::mt19937 rng(9);
  const int64_t n = 1000, nq = 40, k = 7;
  std::vector<float> m, q;
  for (int64_t i = 0; i < n; ++i) {
    auto v = unit_vector(rng);
    m.insert(m.end(), v.begin(), v.end());
  }
  for (int64_t i = 0; i < nq; ++i) {
    auto v = unit_vector(rng);
    q.insert(q.end(), v.begin(), v.end());
  }
  const TopK top = exact_top_k(m.data(), n, D, q.data(), nq, k);  // nq >= 20: FAISS's BLAS path
  ASSERT_EQ(top.k, k);
  for (int64_t i = 0; i < nq; ++i) {
    std::vector<std::pair<float, int64_t>> s;
    for (int64_t j = 0; j < n; ++j) {
      float dot = 0;
      for (int64_t c = 0; c < D; ++c) dot += q[i * D + c] * m[j * D + c];
      s.push_back({dot, j});
    }
    std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(top.labels[i * k + j], s[j].second) << i << " " << j;
      EXPECT_NEAR(top.scores[i * k + j], s[j].first, 1e-5);
    }
  }
  EXPECT_EQ(exact_top_k(m.data(), 3, D, q.data(), 1, 10).k, 3);
  EXPECT_EQ(exact_top_k(m.data(), 0, D, q.data(), 1, 10).k, 0);
}

}  // namespace
}  // namespace oe::index
