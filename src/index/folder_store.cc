#include "index/folder_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "index/catalog.h"
#include "index/knn.h"
#include "index/vector_cache.h"
#include "io/atomic_file.h"
#include "io/hash.h"

namespace oe::index {

namespace fs = std::filesystem;

struct FolderStore::Impl {
  explicit Impl(const fs::path& dir) : flat(dir) {}

  int lock_fd = -1;
  std::unique_ptr<Catalog> catalog;
  // The HNSW graph of one generation, loaded or built on first search.
  mutable std::mutex ann_mutex;
  mutable std::unique_ptr<Hnsw> ann;
  mutable int64_t ann_generation = -1;
  // item id -> flat_modality_code, read from the catalog on the first filtered search of the graph (guarded by
  // ann_mutex), so that a filtered search reads no catalog row per item (late fusion makes two per query).
  mutable std::unordered_map<int64_t, uint8_t> ann_codes;
  mutable bool ann_codes_read = false;
  // The flat vector file of one generation, memory-mapped (guarded by flat_mutex).
  mutable std::mutex flat_mutex;
  mutable VectorCache flat;

  ~Impl() {
    flat.unmap();
    catalog.reset();
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }
};

FolderStore::FolderStore(fs::path dir, IndexSettings settings, bool writable)
    : Store(std::move(settings), writable), dir_(std::move(dir)) {}

FolderStore::~FolderStore() = default;

IndexSettings read_settings(const fs::path& dir) { return Catalog::open_existing(dir)->read_settings(); }

std::unique_ptr<FolderStore> FolderStore::open(const fs::path& dir) {
  auto im = std::make_unique<Impl>(dir);
  im->catalog = Catalog::open_existing(dir);
  std::unique_ptr<FolderStore> s(new FolderStore(dir, im->catalog->read_settings(), /*writable=*/false));
  s->impl_ = std::move(im);
  return s;
}

namespace {

// Creates the index folder when missing. InvalidInput when it is a file, or holds other files and no catalog.
// Returns whether it holds a catalog.
bool prepare_folder(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_directory(dir))
    throw InvalidInput(fmt::format("--index {} is a file, not a folder", dir.string()));
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create the index folder {}: {}", dir.string(), ec.message()));
  const bool has_catalog = fs::exists(dir / CATALOG);
  if (!has_catalog) {
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name != "lock" && name.rfind(CATALOG, 0) != 0)
        throw InvalidInput(fmt::format("{} is not empty and holds no omni-embed index: choose an empty or new folder",
                                       dir.string()));
    }
  }
  return has_catalog;
}

// Takes the folder's write lock (flock on DIR/lock), held until the returned descriptor is closed. InvalidInput
// when another process holds it, IoError when the lock file cannot be created.
int take_write_lock(const fs::path& dir) {
  const int fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("cannot create {}: {}", (dir / "lock").string(), std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw InvalidInput(fmt::format("index {} is being written by another omni-embed process; wait for it to finish",
                                   dir.string()));
  }
  return fd;
}

// The stored settings that fix what the vectors are, with this run's others.
IndexSettings continued_settings(IndexSettings stored, const IndexSettings& settings) {
  // Segmenting and ANN settings may change between runs; the new values apply from now on.
  stored.vectors = settings.vectors;
  stored.hnsw_m = settings.hnsw_m;
  stored.hnsw_ef_construction = settings.hnsw_ef_construction;
  stored.text_window = settings.text_window;
  stored.text_overlap = settings.text_overlap;
  stored.media_window = settings.media_window;
  stored.media_overlap = settings.media_overlap;
  stored.model = settings.model;
  stored.model_fingerprint = settings.model_fingerprint;  // the same weights (settings_difference), perhaps an alias
  stored.adapter = settings.adapter;  // the same adapter (settings_difference), perhaps moved
  return stored;
}

}  // namespace

std::unique_ptr<FolderStore> FolderStore::open_for_writing(const fs::path& dir, const IndexSettings& settings,
                                                           bool reset_on_mismatch) {
  const bool has_catalog = prepare_folder(dir);
  auto impl = std::make_unique<Impl>(dir);
  Impl& im = *impl;
  im.lock_fd = take_write_lock(dir);
  if (!has_catalog || Catalog::is_blank(dir)) Catalog::create(dir, settings);
  im.catalog = std::make_unique<Catalog>(dir, /*read_only=*/false);
  // Before anything is written: a writer must not build on a damaged catalog (SQLite notices a bad page only when
  // it reads it, possibly in the middle of a run).
  if (const std::string damage = im.catalog->quick_check(); !damage.empty())
    throw InvalidInput(fmt::format("index {}: its catalog is damaged ({}); nothing was written: restore the folder "
                                   "from a copy, or index into a new folder",
                                   dir.string(), damage));
  IndexSettings stored = im.catalog->read_settings();
  const std::string diff = settings_difference(stored, settings);
  if (!diff.empty()) {
    if (!reset_on_mismatch)
      throw InvalidInput(fmt::format("index {}: {}; use another --index folder, or --rebuild to re-embed everything "
                                     "with the new settings",
                                     dir.string(), diff));
    im.catalog->reset(settings);
    stored = settings;
  }
  stored = continued_settings(stored, settings);
  im.catalog->write_settings(stored);
  std::unique_ptr<FolderStore> s(new FolderStore(dir, stored, /*writable=*/true));
  s->impl_ = std::move(impl);
  return s;
}

std::optional<SourceRecord> FolderStore::find_source(const std::string& key) const {
  return impl_->catalog->find_source(key);
}

std::optional<SourceRecord> FolderStore::find_source_by_path(const std::string& path) const {
  return impl_->catalog->find_source_by_path(path);
}

std::vector<SourceRecord> FolderStore::sources() const { return impl_->catalog->sources(); }

StoreStats FolderStore::stats() const { return impl_->catalog->stats(); }

void FolderStore::put(const std::vector<SourceUpdate>& updates) {
  OE_CHECK(writable_, "FolderStore::put on a read-only index");
  if (updates.empty()) return;
  impl_->catalog->put(updates, settings_.dim);
}

int64_t FolderStore::remove(const std::vector<std::string>& keys) {
  OE_CHECK(writable_, "FolderStore::remove on a read-only index");
  if (keys.empty()) return 0;
  return impl_->catalog->remove(keys);
}

void FolderStore::load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                         const std::vector<std::string>& modalities) const {
  impl_->catalog->load_vectors(ids, matrix, modalities, settings_.dim);
}

std::optional<std::vector<float>> FolderStore::vector_of(int64_t item_id) const {
  return impl_->catalog->vector_of(item_id, settings_.dim);
}

std::map<std::string, int64_t> FolderStore::items_by_modality() const { return impl_->catalog->items_by_modality(); }

std::vector<Hit> FolderStore::describe(const std::vector<int64_t>& item_ids) const {
  return impl_->catalog->describe(item_ids);
}

std::map<int64_t, std::string> FolderStore::item_keys() const { return impl_->catalog->item_keys(); }

std::vector<StoredItem> FolderStore::segment_views(const std::vector<int64_t>& item_ids) const {
  return impl_->catalog->segment_views(item_ids, settings_.dim);
}

CheckReport FolderStore::check() const {
  const Catalog& catalog = *impl_->catalog;
  CheckReport r = catalog.check(settings_.dim);
  // The caches of the current generation, where they exist and the catalog records their checksum (a file without
  // one, such as an earlier version's, is never read: the next search writes it again).
  const int64_t gen = catalog.generation();
  for (const std::string& name : {fmt::format("flat-{}.bin", gen), fmt::format("hnsw-{}.bin", gen)}) {
    const fs::path path = dir_ / name;
    const std::string want = catalog.cache_checksum(name);
    if (want.empty() || !fs::exists(path)) continue;
    std::string got;
    try {
      got = io::cache_checksum_file_hex(path);
    } catch (const Error& e) {
      got = e.what();
    }
    if (got != want)
      r.problems.push_back(fmt::format("the cache {} does not have the checksum the catalog records for it (damaged "
                                       "or changed outside omni-embed); searches do not read it, and the next one "
                                       "writes it again",
                                       name));
  }
  return r;
}

namespace {

// What the flat vector file of the catalog's current state holds: every vector in item id order, with its code.
VectorCache::Contents flat_contents(const Catalog& catalog, int64_t dim) {
  VectorCache::Contents c;
  catalog.load_vectors(c.ids, c.vectors, /*modalities=*/{}, dim);
  const std::vector<std::string> modalities = catalog.item_modalities();
  c.codes.assign(c.ids.size(), 0);
  for (size_t i = 0; i < modalities.size() && i < c.ids.size(); ++i) c.codes[i] = flat_modality_code(modalities[i]);
  return c;
}

// The cached graph file of this generation, when its bytes have the checksum the catalog records for it: a torn,
// damaged, foreign or tampered file is never handed to the graph reader (hnswlib trusts every offset in it). Null
// when there is none that can be read (the caller rebuilds it).
std::unique_ptr<Hnsw> load_cached_graph(const Catalog& catalog, const fs::path& cache, int64_t dim) {
  if (!fs::exists(cache)) return nullptr;
  try {
    const std::string want = catalog.cache_checksum(cache.filename().string());
    if (!want.empty() && want == io::cache_checksum_file_hex(cache)) return Hnsw::load(cache, dim);
  } catch (const Error&) {
    // Rebuilt by the caller.
  }
  return nullptr;
}

// Writes the graph to `cache` through a temporary name, recording its checksum in the catalog before the rename,
// then removes the graphs of other generations. Cached for later searches when the folder and the catalog are
// writable; a failure only costs the next search a rebuild.
void cache_graph(const Hnsw& graph, const Catalog& catalog, const fs::path& dir, const fs::path& cache) {
  const fs::path tmp = cache.string() + fmt::format(".{}.tmp", ::getpid());
  try {
    graph.save(tmp);
    if (!catalog.record_cache_checksum(cache.filename().string(), io::cache_checksum_file_hex(tmp))) {
      fs::remove(tmp);
      return;
    }
    fs::rename(tmp, cache);
    // Older generations' graphs, and the checksum files earlier versions wrote beside them.
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("hnsw-", 0) == 0 && e.path() != cache && name.find(".tmp") == std::string::npos)
        fs::remove(e.path());
    }
  } catch (const std::exception&) {
    std::error_code ec;
    fs::remove(tmp, ec);
  }
}

// The best hits of one search, best first: item ids and scores.
struct Ranked {
  std::vector<int64_t> ids;
  std::vector<float> scores;
};

// One search: the query [d], how many hits, and the modalities they may have (all when empty).
struct Query {
  const float* vector;
  int64_t k;
  const std::vector<std::string>& modalities;
};

// The k best of the graph for `q`; code_of (item id -> flat_modality_code) is read only with a modality filter.
Ranked graph_top_k(const Hnsw& ann, const Query& q, int64_t hnsw_ef_search,
                   const std::unordered_map<int64_t, uint8_t>& code_of) {
  const int64_t k = q.k;
  const std::vector<std::string>& modalities = q.modalities;
  std::vector<uint8_t> wanted;
  for (const auto& mod : modalities) wanted.push_back(flat_modality_code(mod));
  Ranked r;
  // With a modality filter the graph is searched unfiltered and its neighbours post-filtered: it is asked for 4k
  // (beam max(ef, 4k)), then twice as many each time, until k of them pass or the whole index was returned. So a
  // filter always finds min(k, items of those modalities) up to the graph's recall, at the cost of a wider beam
  // when they are rare among the nearest items (a modality of 1% of the index walks most of the graph).
  const int64_t total = ann.size();
  for (int64_t want = std::min(total, modalities.empty() ? k : 4 * k);; want = std::min(total, 2 * want)) {
    const TopK top = ann.search(q.vector, 1, want, hnsw_ef_search > 0 ? hnsw_ef_search : 64);
    r.ids.clear();
    r.scores.clear();
    for (int64_t i = 0; i < top.k && static_cast<int64_t>(r.ids.size()) < k; ++i) {
      const int64_t id = top.labels[i];
      if (id < 0) continue;
      if (!modalities.empty()) {
        auto it = code_of.find(id);
        if (it == code_of.end() || std::find(wanted.begin(), wanted.end(), it->second) == wanted.end()) continue;
      }
      r.ids.push_back(id);
      r.scores.push_back(top.scores[i]);
    }
    if (static_cast<int64_t>(r.ids.size()) >= k || want >= total) break;
  }
  return r;
}

// The k best rows of m [n, d] (item ids [n]) for `q`, among those whose `allow` flag ([n]) is set (all when empty).
Ranked exact_rows_top_k(const float* m, const int64_t* ids, int64_t n, int64_t d, const Query& q,
                        const std::vector<uint8_t>& allow) {
  const TopK top = exact_top_k(m, n, d, q.vector, 1, q.k, allow.empty() ? nullptr : allow.data());
  Ranked r;
  for (int64_t i = 0; i < top.k; ++i) {
    if (top.labels[i] < 0) continue;
    r.ids.push_back(ids[top.labels[i]]);
    r.scores.push_back(top.scores[i]);
  }
  return r;
}

}  // namespace

// Maps the flat vector file of the current generation, writing it first when it is missing and the folder is
// writable. False when neither works (the caller then reads the catalog).
bool FolderStore::map_flat() const {
  const Catalog& catalog = *impl_->catalog;
  const int64_t d = settings_.dim;
  const VectorCache::Checksums sums{
      [&](const std::string& file) { return catalog.cache_checksum(file); },
      [&](const std::string& file, const std::string& sum) { return catalog.record_cache_checksum(file, sum); }};
  return impl_->flat.map(catalog.generation(), d, [&] { return flat_contents(catalog, d); }, sums);
}

void FolderStore::prepare_search() const {
  if (settings_.vectors != "hnsw") {
    std::lock_guard<std::mutex> flat_lock(impl_->flat_mutex);
    map_flat();
    return;
  }
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.ann_mutex);
  const int64_t gen = im.catalog->generation();
  if (im.ann && im.ann_generation == gen) return;
  const fs::path cache = dir_ / fmt::format("hnsw-{}.bin", gen);
  std::unique_ptr<Hnsw> graph = load_cached_graph(*im.catalog, cache, settings_.dim);
  if (!graph) {
    std::vector<int64_t> ids;
    std::vector<float> m;
    load_vectors(ids, m);
    graph = std::make_unique<Hnsw>(settings_.dim, static_cast<int64_t>(ids.size()), settings_.hnsw_m,
                                   settings_.hnsw_ef_construction);
    graph->add(m.data(), static_cast<int64_t>(ids.size()), ids.data());
    cache_graph(*graph, *im.catalog, dir_, cache);
  }
  im.ann = std::move(graph);
  im.ann_generation = gen;
  im.ann_codes.clear();
  im.ann_codes_read = false;
}

std::vector<Hit> FolderStore::search(const float* query, int64_t k, const std::vector<std::string>& modalities,
                               int64_t hnsw_ef_search) const {
  if (k <= 0) return {};
  const Query q{query, k, modalities};
  Ranked top;
  if (settings_.vectors == "hnsw") {
    prepare_search();
    Impl& im = *impl_;
    std::lock_guard<std::mutex> lock(im.ann_mutex);
    if (!modalities.empty() && !im.ann_codes_read) {
      for (const auto& [id, modality] : im.catalog->modality_by_item()) im.ann_codes[id] = flat_modality_code(modality);
      im.ann_codes_read = true;
    }
    top = graph_top_k(*im.ann, q, hnsw_ef_search, im.ann_codes);
  } else {
    // Exact: over the memory-mapped vector file (no copy; the page cache keeps it between searches), or over the
    // vectors read from the catalog when that file cannot be had.
    std::lock_guard<std::mutex> flat_lock(impl_->flat_mutex);
    if (map_flat()) {
      const VectorCache& flat = impl_->flat;
      const std::vector<uint8_t> allow = modalities.empty() ? std::vector<uint8_t>() : flat.allowed(modalities);
      top = exact_rows_top_k(flat.vectors(), flat.ids(), flat.count(), settings_.dim, q, allow);
    } else {
      std::vector<int64_t> ids;
      std::vector<float> m;
      load_vectors(ids, m, modalities);
      top = exact_rows_top_k(m.data(), ids.data(), static_cast<int64_t>(ids.size()), settings_.dim, q, /*allow=*/{});
    }
  }
  std::vector<Hit> hits = describe(top.ids);
  for (size_t i = 0; i < hits.size(); ++i) hits[i].score = top.scores[i];
  return hits;
}

}  // namespace oe::index
