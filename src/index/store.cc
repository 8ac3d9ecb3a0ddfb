#include "index/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "index/knn.h"
#include "index/sqlite.h"
#include "io/atomic_file.h"
#include "io/hash.h"

namespace oe::index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* CATALOG = "catalog.sqlite";

constexpr const char* SCHEMA = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  path TEXT NOT NULL,
  origin TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  modality TEXT NOT NULL,
  duration REAL NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  indexed_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE items(
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  segment INTEGER NOT NULL,
  modality TEXT NOT NULL,
  start REAL NOT NULL,
  end REAL NOT NULL,
  unit TEXT NOT NULL,
  preview TEXT NOT NULL,
  n_tokens INTEGER NOT NULL,
  vector BLOB NOT NULL);
CREATE INDEX items_by_source ON items(source_id);
CREATE INDEX items_by_modality ON items(modality);
)sql";

json settings_json(const IndexSettings& s) {
  return json{{"model", s.model},
              {"model_fingerprint", s.model_fingerprint},
              {"embedding", s.embedding},
              {"dim", s.dim},
              {"vectors", s.vectors},
              {"hnsw_m", s.hnsw_m},
              {"hnsw_ef_construction", s.hnsw_ef_construction},
              {"text_window", s.text_window},
              {"text_overlap", s.text_overlap},
              {"media_window", s.media_window},
              {"media_overlap", s.media_overlap}};
}

IndexSettings settings_from_json(const json& j) {
  IndexSettings s;
  s.model = j.at("model").get<std::string>();
  s.model_fingerprint = j.at("model_fingerprint").get<std::string>();
  s.embedding = j.at("embedding").get<std::string>();
  s.dim = j.at("dim").get<int64_t>();
  s.vectors = j.at("vectors").get<std::string>();
  s.hnsw_m = j.at("hnsw_m").get<int64_t>();
  s.hnsw_ef_construction = j.at("hnsw_ef_construction").get<int64_t>();
  s.text_window = j.at("text_window").get<int64_t>();
  s.text_overlap = j.at("text_overlap").get<int64_t>();
  s.media_window = j.at("media_window").get<double>();
  s.media_overlap = j.at("media_overlap").get<double>();
  return s;
}

std::string meta_value(Database& db, const std::string& key) {
  auto st = db.prepare("SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  return st.step() ? st.text(0) : std::string();
}

void set_meta(Database& db, const std::string& key, const std::string& value) {
  db.prepare("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

bool has_meta_table(Database& db) {
  auto st = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
  return st.step();
}

// A database without any table: what SQLite leaves when a process dies after opening a new file and before its first
// commit (catalogs are created by rename now, but a zero-byte file can still be met).
bool is_blank(Database& db) { return !db.prepare("SELECT 1 FROM sqlite_master").step(); }

// Validates the format version and returns the stored settings.
IndexSettings read_checked_settings(Database& db, const fs::path& dir) {
  if (is_blank(db))
    throw InvalidInput(fmt::format("index {} was never completely created (its catalog is empty): run omni-embed "
                                   "index into it again",
                                   dir.string()));
  if (!has_meta_table(db))
    throw InvalidInput(fmt::format("{} is not an omni-embed index (its catalog has no meta table)", dir.string()));
  const std::string version = meta_value(db, "format_version");
  if (version != std::to_string(FORMAT_VERSION))
    throw InvalidInput(fmt::format(
        "index {} has format version {}, and this omni-embed reads version {}: build a new index in another folder "
        "(the existing one is left untouched)",
        dir.string(), version.empty() ? "(none)" : version, FORMAT_VERSION));
  try {
    return settings_from_json(json::parse(meta_value(db, "settings")));
  } catch (const json::exception& e) {
    throw InvalidInput(fmt::format("index {}: unreadable settings in its catalog ({})", dir.string(), e.what()));
  }
}

std::string modality_filter_sql(const std::vector<std::string>& modalities) {
  if (modalities.empty()) return "";
  std::string sql = " WHERE modality IN (";
  for (size_t i = 0; i < modalities.size(); ++i) sql += i ? ",?" : "?";
  return sql + ")";
}

}  // namespace

struct Store::Impl {
  fs::path dir;
  std::unique_ptr<Database> db;
  int lock_fd = -1;
  // The HNSW graph of one generation, loaded or built on first search.
  mutable std::mutex ann_mutex;
  mutable std::unique_ptr<Hnsw> ann;
  mutable int64_t ann_generation = -1;
  // The flat vector file of one generation, memory-mapped (guarded by flat_mutex).
  mutable std::mutex flat_mutex;
  mutable void* flat_map = nullptr;
  mutable size_t flat_bytes = 0;
  mutable int64_t flat_generation = -1, flat_count = 0;

  ~Impl() {
    if (flat_map) ::munmap(flat_map, flat_bytes);
    db.reset();
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  int64_t generation() const { return std::stoll(meta_value(*db, "generation")); }
  void bump_generation() { set_meta(*db, "generation", std::to_string(generation() + 1)); }
};

Store::~Store() = default;

std::string settings_difference(const IndexSettings& stored, const IndexSettings& wanted) {
  if (stored.model_fingerprint != wanted.model_fingerprint)
    return fmt::format("it was built with model {} (fingerprint {}), not {} (fingerprint {})", stored.model,
                       stored.model_fingerprint.substr(0, 12), wanted.model, wanted.model_fingerprint.substr(0, 12));
  if (stored.dim != wanted.dim)
    return fmt::format("its vectors have {} dimensions, not {}", stored.dim, wanted.dim);
  if (stored.embedding != wanted.embedding)
    return fmt::format("it was built with other embedding settings ({} instead of {})", stored.embedding,
                       wanted.embedding);
  return "";
}

IndexSettings read_settings(const fs::path& dir) {
  if (!fs::exists(dir / CATALOG))
    throw InvalidInput(fmt::format("{} is not an omni-embed index (no {} in it)", dir.string(), CATALOG));
  Database db(dir / CATALOG, true);
  return read_checked_settings(db, dir);
}

std::unique_ptr<Store> Store::open(const fs::path& dir) {
  if (!fs::exists(dir / CATALOG))
    throw InvalidInput(fmt::format("{} is not an omni-embed index (no {} in it)", dir.string(), CATALOG));
  std::unique_ptr<Store> s(new Store());
  s->impl_ = std::make_unique<Impl>();
  s->dir_ = s->impl_->dir = dir;
  s->impl_->db = std::make_unique<Database>(dir / CATALOG, true);
  s->settings_ = read_checked_settings(*s->impl_->db, dir);
  return s;
}

namespace {

// Writes a complete new catalog (schema, format version, settings) under a temporary name and renames it into place,
// so that a crash leaves no catalog or a complete one; never an empty database file, which SQLite would otherwise
// create the moment the connection opens, before any table exists. Called with the writer's lock held.
void create_catalog(const fs::path& dir, const IndexSettings& settings) {
  const fs::path tmp = dir / (std::string(CATALOG) + ".new");
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(tmp.string() + suffix, ec);
  {
    Database db(tmp, false);
    db.exec("PRAGMA synchronous=FULL");
    Transaction tx(db);
    db.exec(SCHEMA);
    set_meta(db, "format_version", std::to_string(FORMAT_VERSION));
    set_meta(db, "settings", settings_json(settings).dump());
    set_meta(db, "generation", "0");
    tx.commit();
  }
  fs::rename(tmp, dir / CATALOG, ec);
  if (ec) throw IoError(fmt::format("cannot create {}: {}", (dir / CATALOG).string(), ec.message()));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

std::unique_ptr<Store> Store::open_for_writing(const fs::path& dir, const IndexSettings& settings,
                                               bool reset_on_mismatch) {
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
  std::unique_ptr<Store> s(new Store());
  s->impl_ = std::make_unique<Impl>();
  s->dir_ = s->impl_->dir = dir;
  s->writable_ = true;
  Impl& im = *s->impl_;
  im.lock_fd = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (im.lock_fd < 0)
    throw IoError(fmt::format("cannot create {}: {}", (dir / "lock").string(), std::strerror(errno)));
  if (::flock(im.lock_fd, LOCK_EX | LOCK_NB) != 0)
    throw InvalidInput(fmt::format("index {} is being written by another omni-embed process; wait for it to finish",
                                   dir.string()));
  bool blank = !has_catalog;
  if (has_catalog) {
    Database probe(dir / CATALOG, false);
    blank = is_blank(probe);
  }
  if (blank) create_catalog(dir, settings);
  im.db = std::make_unique<Database>(dir / CATALOG, false);
  Database& db = *im.db;
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=NORMAL");
  db.exec("PRAGMA foreign_keys=ON");
  IndexSettings stored = read_checked_settings(db, dir);
  const std::string diff = settings_difference(stored, settings);
  if (!diff.empty()) {
    if (!reset_on_mismatch)
      throw InvalidInput(fmt::format("index {}: {}; use another --index folder, or --rebuild to re-embed everything "
                                     "with the new settings",
                                     dir.string(), diff));
    Transaction tx(db);
    db.exec("DELETE FROM items; DELETE FROM sources;");
    set_meta(db, "settings", settings_json(settings).dump());
    im.bump_generation();
    tx.commit();
    stored = settings;
  }
  // Segmenting and ANN settings may change between runs; the new values apply from now on.
  stored.vectors = settings.vectors;
  stored.hnsw_m = settings.hnsw_m;
  stored.hnsw_ef_construction = settings.hnsw_ef_construction;
  stored.text_window = settings.text_window;
  stored.text_overlap = settings.text_overlap;
  stored.media_window = settings.media_window;
  stored.media_overlap = settings.media_overlap;
  stored.model = settings.model;
  {
    Transaction tx(db);
    set_meta(db, "settings", settings_json(stored).dump());
    tx.commit();
  }
  s->settings_ = stored;
  return s;
}

namespace {

SourceRecord source_from_row(const Statement& st) {
  SourceRecord r;
  r.id = st.int64(0);
  r.key = st.text(1);
  r.path = st.text(2);
  r.origin = st.text(3);
  r.content_hash = st.text(4);
  r.size = st.int64(5);
  r.modality = st.text(6);
  r.duration = st.real(7);
  r.status = st.text(8);
  r.error = st.text(9);
  return r;
}

constexpr const char* SOURCE_COLUMNS =
    "id, key, path, origin, content_hash, size, modality, duration, status, error";

}  // namespace

std::optional<SourceRecord> Store::find_source(const std::string& key) const {
  auto st = impl_->db->prepare(fmt::format("SELECT {} FROM sources WHERE key = ?", SOURCE_COLUMNS));
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return source_from_row(st);
}

std::vector<SourceRecord> Store::sources() const {
  auto st = impl_->db->prepare(fmt::format("SELECT {} FROM sources ORDER BY key", SOURCE_COLUMNS));
  std::vector<SourceRecord> out;
  while (st.step()) out.push_back(source_from_row(st));
  return out;
}

StoreStats Store::stats() const {
  Database& db = *impl_->db;
  StoreStats s;
  auto q = [&](const char* sql) {
    auto st = db.prepare(sql);
    return st.step() ? st.int64(0) : int64_t{0};
  };
  s.sources = q("SELECT COUNT(*) FROM sources");
  s.failed = q("SELECT COUNT(*) FROM sources WHERE status != 'ok'");
  s.items = q("SELECT COUNT(*) FROM items");
  s.generation = impl_->generation();
  return s;
}

void Store::put(const std::vector<SourceUpdate>& updates) {
  OE_CHECK(writable_, "Store::put on a read-only index");
  if (updates.empty()) return;
  Database& db = *impl_->db;
  Transaction tx(db);
  auto del = db.prepare("DELETE FROM sources WHERE key = ?");
  auto ins = db.prepare(
      "INSERT INTO sources(key, path, origin, content_hash, size, modality, duration, status, error) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  auto item = db.prepare(
      "INSERT INTO items(source_id, segment, modality, start, end, unit, preview, n_tokens, vector) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& u : updates) {
    const SourceRecord& r = u.source;
    del.bind(1, r.key).run();  // its old items go with it (ON DELETE CASCADE)
    ins.bind(1, r.key).bind(2, r.path).bind(3, r.origin).bind(4, r.content_hash).bind(5, r.size);
    ins.bind(6, r.modality).bind(7, r.duration).bind(8, r.status).bind(9, r.error).run();
    const int64_t source_id = db.last_insert_rowid();
    for (const auto& seg : u.segments) {
      if (static_cast<int64_t>(seg.vector.size()) != settings_.dim)
        throw InternalError(fmt::format("{}: a {}-d vector for an index of {} dimensions", r.key, seg.vector.size(),
                                        settings_.dim));
      item.bind(1, source_id).bind(2, seg.index).bind(3, seg.modality).bind(4, seg.start).bind(5, seg.end);
      item.bind(6, seg.unit).bind(7, seg.preview).bind(8, seg.n_tokens);
      item.bind_blob(9, seg.vector.data(), seg.vector.size() * sizeof(float)).run();
    }
  }
  impl_->bump_generation();
  tx.commit();
}

int64_t Store::remove(const std::vector<std::string>& keys) {
  OE_CHECK(writable_, "Store::remove on a read-only index");
  if (keys.empty()) return 0;
  Database& db = *impl_->db;
  Transaction tx(db);
  auto del = db.prepare("DELETE FROM sources WHERE key = ?");
  int64_t n = 0;
  for (const auto& k : keys) {
    del.bind(1, k).run();
    n += db.changes();
  }
  impl_->bump_generation();
  tx.commit();
  return n;
}

void Store::load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                         const std::vector<std::string>& modalities) const {
  Database& db = *impl_->db;
  const int64_t d = settings_.dim;
  ids.clear();
  matrix.clear();
  {
    auto count = db.prepare("SELECT COUNT(*) FROM items" + modality_filter_sql(modalities));
    for (size_t i = 0; i < modalities.size(); ++i) count.bind(static_cast<int>(i + 1), modalities[i]);
    if (count.step()) {
      ids.reserve(static_cast<size_t>(count.int64(0)));
      matrix.reserve(static_cast<size_t>(count.int64(0) * d));
    }
  }
  auto st = db.prepare("SELECT id, vector FROM items" + modality_filter_sql(modalities) + " ORDER BY id");
  for (size_t i = 0; i < modalities.size(); ++i) st.bind(static_cast<int>(i + 1), modalities[i]);
  while (st.step()) {
    std::string_view b = st.blob(1);
    if (b.size() != static_cast<size_t>(d) * sizeof(float))
      throw IoError(fmt::format("index {}: item {} has a vector of {} bytes, expected {}", dir_.string(), st.int64(0),
                                b.size(), d * 4));
    ids.push_back(st.int64(0));
    const size_t at = matrix.size();
    matrix.resize(at + static_cast<size_t>(d));
    std::memcpy(matrix.data() + at, b.data(), b.size());
  }
}

std::vector<Hit> Store::describe(const std::vector<int64_t>& item_ids) const {
  auto st = impl_->db->prepare(
      "SELECT i.id, s.path, s.key, i.modality, i.segment, i.start, i.end, i.unit, i.preview FROM items i "
      "JOIN sources s ON s.id = i.source_id WHERE i.id = ?");
  std::vector<Hit> out;
  for (int64_t id : item_ids) {
    st.bind(1, id);
    Hit h;
    h.item_id = id;
    if (st.step()) {
      h.path = st.text(1);
      h.key = st.text(2);
      h.modality = st.text(3);
      h.segment = st.int64(4);
      h.start = st.real(5);
      h.end = st.real(6);
      h.unit = st.text(7);
      h.preview = st.text(8);
    }
    st.reset();
    out.push_back(std::move(h));
  }
  return out;
}

std::map<int64_t, std::string> Store::item_keys() const {
  auto st = impl_->db->prepare("SELECT i.id, s.key FROM items i JOIN sources s ON s.id = i.source_id");
  std::map<int64_t, std::string> out;
  while (st.step()) out.emplace(st.int64(0), st.text(1));
  return out;
}

namespace {

// The flat vector file: "OEFLAT01", dim and count (int64), ids [count] (int64), modality codes [count] (uint8,
// padded to 8 bytes), vectors [count, dim] (float32). Written to a temporary name, synced and renamed, so a reader
// sees a complete file or none; its size is checked against its header before use.
constexpr char FLAT_MAGIC[8] = {'O', 'E', 'F', 'L', 'A', 'T', '0', '1'};

uint8_t modality_code(const std::string& m) {
  static const char* names[] = {"text", "image", "audio", "video", "mixed", "video-sound"};
  for (uint8_t i = 0; i < 6; ++i)
    if (m == names[i]) return static_cast<uint8_t>(i + 1);
  return 7;
}

size_t flat_file_bytes(int64_t count, int64_t dim) {
  const size_t codes = (static_cast<size_t>(count) + 7) / 8 * 8;
  return 24 + 8 * static_cast<size_t>(count) + codes + 4 * static_cast<size_t>(count) * static_cast<size_t>(dim);
}

}  // namespace

// Maps the flat vector file of the current generation, writing it first when it is missing and the folder is
// writable. False when neither works (the caller then reads the catalog).
bool Store::map_flat() const {
  Impl& im = *impl_;
  const int64_t gen = im.generation();
  if (im.flat_map && im.flat_generation == gen) return true;
  if (im.flat_map) {
    ::munmap(im.flat_map, im.flat_bytes);
    im.flat_map = nullptr;
  }
  const fs::path path = dir_ / fmt::format("flat-{}.bin", gen);
  const int64_t d = settings_.dim;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!fs::exists(path)) {
      try {
        std::vector<int64_t> ids;
        std::vector<float> m;
        load_vectors(ids, m);
        std::vector<uint8_t> codes((ids.size() + 7) / 8 * 8, 0);
        {
          auto st = impl_->db->prepare("SELECT modality FROM items ORDER BY id");
          for (size_t i = 0; st.step() && i < ids.size(); ++i) codes[i] = modality_code(st.text(0));
        }
        const fs::path tmp = dir_ / fmt::format("flat-{}.bin.{}.tmp", gen, ::getpid());
        std::FILE* f = std::fopen(tmp.c_str(), "wb");
        if (!f) return false;
        const int64_t header[2] = {d, static_cast<int64_t>(ids.size())};
        bool ok = std::fwrite(FLAT_MAGIC, 1, 8, f) == 8 && std::fwrite(header, 8, 2, f) == 2 &&
                  std::fwrite(ids.data(), 8, ids.size(), f) == ids.size() &&
                  std::fwrite(codes.data(), 1, codes.size(), f) == codes.size() &&
                  std::fwrite(m.data(), 4, m.size(), f) == m.size();
        ok = std::fflush(f) == 0 && ok && ::fsync(fileno(f)) == 0;
        std::fclose(f);
        if (!ok) {
          fs::remove(tmp);
          return false;
        }
        fs::rename(tmp, path);
        for (const auto& e : fs::directory_iterator(dir_)) {
          const std::string name = e.path().filename().string();
          if (name.rfind("flat-", 0) == 0 && e.path() != path && name.find(".tmp") == std::string::npos)
            fs::remove(e.path());
        }
      } catch (const std::exception&) {
        return false;  // a read-only folder, a full disk: search from the catalog
      }
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat sb {};
    char magic[8];
    int64_t header[2] = {0, 0};
    const bool readable = ::fstat(fd, &sb) == 0 && ::pread(fd, magic, 8, 0) == 8 && ::pread(fd, header, 16, 8) == 16 &&
                          std::memcmp(magic, FLAT_MAGIC, 8) == 0 && header[0] == d && header[1] >= 0 &&
                          static_cast<size_t>(sb.st_size) == flat_file_bytes(header[1], d);
    if (!readable) {
      ::close(fd);
      std::error_code ec;
      fs::remove(path, ec);  // not ours, or torn: written again
      continue;
    }
    void* p = sb.st_size > 0 ? ::mmap(nullptr, static_cast<size_t>(sb.st_size), PROT_READ, MAP_SHARED, fd, 0) : nullptr;
    ::close(fd);
    if (p == MAP_FAILED || !p) return false;
    im.flat_map = p;
    im.flat_bytes = static_cast<size_t>(sb.st_size);
    im.flat_count = header[1];
    im.flat_generation = gen;
    return true;
  }
  return false;
}

void Store::prepare_search() const {
  if (settings_.vectors != "hnsw") {
    std::lock_guard<std::mutex> flat_lock(impl_->flat_mutex);
    map_flat();
    return;
  }
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.ann_mutex);
  const int64_t gen = im.generation();
  if (im.ann && im.ann_generation == gen) return;
  // The cached graph of this generation, when its checksum (written after it) matches: a torn or foreign file is
  // never handed to the graph reader.
  const fs::path cache = dir_ / fmt::format("hnsw-{}.bin", gen), sum = dir_ / fmt::format("hnsw-{}.sha256", gen);
  if (fs::exists(cache) && fs::exists(sum)) {
    try {
      std::ifstream in(sum);
      std::string want;
      in >> want;
      if (!want.empty() && want == io::sha256_file_hex(cache)) {
        im.ann = Hnsw::load(cache, settings_.dim);
        im.ann_generation = gen;
        return;
      }
    } catch (const Error&) {
      // Rebuilt below.
    }
  }
  std::vector<int64_t> ids;
  std::vector<float> m;
  load_vectors(ids, m);
  auto graph = std::make_unique<Hnsw>(settings_.dim, static_cast<int64_t>(ids.size()), settings_.hnsw_m,
                                      settings_.hnsw_ef_construction);
  graph->add(m.data(), static_cast<int64_t>(ids.size()), ids.data());
  // Cached for later searches when the folder is writable; a failure only costs the next search a rebuild.
  try {
    const fs::path tmp = dir_ / fmt::format("hnsw-{}.bin.{}.tmp", gen, ::getpid());
    graph->save(tmp);
    const std::string hash = io::sha256_file_hex(tmp);
    fs::rename(tmp, cache);
    io::AtomicFile f(sum);
    f.write(hash + "\n");
    f.commit();
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("hnsw-", 0) == 0 && e.path() != cache && e.path() != sum && name.find(".tmp") == std::string::npos)
        fs::remove(e.path());
    }
  } catch (const std::exception&) {
  }
  im.ann = std::move(graph);
  im.ann_generation = gen;
}

std::vector<Hit> Store::search(const float* query, int64_t k, const std::vector<std::string>& modalities,
                               int64_t hnsw_ef_search) const {
  if (k <= 0) return {};
  std::vector<int64_t> top_ids;
  std::vector<float> top_scores;
  const int64_t d = settings_.dim;
  if (settings_.vectors == "hnsw") {
    prepare_search();
    std::lock_guard<std::mutex> lock(impl_->ann_mutex);
    const Hnsw& ann = *impl_->ann;
    std::unordered_map<int64_t, std::string> modality_of;
    if (!modalities.empty()) {
      auto st = impl_->db->prepare("SELECT id, modality FROM items");
      while (st.step()) modality_of.emplace(st.int64(0), st.text(1));
    }
    // With a modality filter, ask for more neighbours until k of them pass (or the whole index was returned).
    const int64_t total = ann.size();
    for (int64_t want = std::min(total, modalities.empty() ? k : 4 * k);; want = std::min(total, 2 * want)) {
      const TopK top = ann.search(query, 1, want, hnsw_ef_search > 0 ? hnsw_ef_search : 64);
      top_ids.clear();
      top_scores.clear();
      for (int64_t i = 0; i < top.k && static_cast<int64_t>(top_ids.size()) < k; ++i) {
        const int64_t id = top.labels[i];
        if (id < 0) continue;
        if (!modalities.empty()) {
          auto it = modality_of.find(id);
          if (it == modality_of.end() ||
              std::find(modalities.begin(), modalities.end(), it->second) == modalities.end())
            continue;
        }
        top_ids.push_back(id);
        top_scores.push_back(top.scores[i]);
      }
      if (static_cast<int64_t>(top_ids.size()) >= k || want >= total) break;
    }
  } else {
    // Exact: over the memory-mapped vector file (no copy; the page cache keeps it between searches), or over the
    // vectors read from the catalog when that file cannot be had.
    std::lock_guard<std::mutex> flat_lock(impl_->flat_mutex);
    int64_t n = 0;
    const int64_t* ids = nullptr;
    const float* m = nullptr;
    std::vector<uint8_t> allow;
    std::vector<int64_t> loaded_ids;
    std::vector<float> loaded;
    if (map_flat()) {
      const Impl& im = *impl_;
      n = im.flat_count;
      const auto* base = static_cast<const char*>(im.flat_map);
      ids = reinterpret_cast<const int64_t*>(base + 24);
      const auto* codes = reinterpret_cast<const uint8_t*>(base + 24 + 8 * n);
      m = reinterpret_cast<const float*>(base + 24 + 8 * n + (n + 7) / 8 * 8);
      if (!modalities.empty()) {
        allow.resize(static_cast<size_t>(n));
        std::vector<uint8_t> wanted;
        for (const auto& mod : modalities) wanted.push_back(modality_code(mod));
        for (int64_t i = 0; i < n; ++i) allow[i] = std::find(wanted.begin(), wanted.end(), codes[i]) != wanted.end();
      }
    } else {
      load_vectors(loaded_ids, loaded, modalities);
      n = static_cast<int64_t>(loaded_ids.size());
      ids = loaded_ids.data();
      m = loaded.data();
    }
    const TopK top = exact_top_k(m, n, d, query, 1, k, allow.empty() ? nullptr : allow.data());
    for (int64_t i = 0; i < top.k; ++i) {
      if (top.labels[i] < 0) continue;
      top_ids.push_back(ids[top.labels[i]]);
      top_scores.push_back(top.scores[i]);
    }
  }
  std::vector<Hit> hits = describe(top_ids);
  for (size_t i = 0; i < hits.size(); ++i) hits[i].score = top_scores[i];
  return hits;
}

CheckReport Store::check() const {
  Database& db = *impl_->db;
  CheckReport r;
  {
    auto st = db.prepare("PRAGMA integrity_check");
    while (st.step())
      if (st.text(0) != "ok") r.problems.push_back("SQLite integrity: " + st.text(0));
  }
  auto each = [&](const std::string& sql, const std::function<void(const Statement&)>& f) {
    auto st = db.prepare(sql);
    while (st.step()) f(st);
  };
  each("SELECT i.id FROM items i LEFT JOIN sources s ON s.id = i.source_id WHERE s.id IS NULL",
       [&](const Statement& st) { r.problems.push_back(fmt::format("item {} has no source (orphan)", st.int64(0))); });
  each(
      "SELECT s.key FROM sources s WHERE s.status = 'ok' AND NOT EXISTS (SELECT 1 FROM items i WHERE i.source_id = "
      "s.id)",
      [&](const Statement& st) { r.problems.push_back(fmt::format("source {} has no items", st.text(0))); });
  each("SELECT s.key FROM sources s WHERE s.status != 'ok' AND EXISTS (SELECT 1 FROM items i WHERE i.source_id = s.id)",
       [&](const Statement& st) { r.problems.push_back(fmt::format("failed source {} has items", st.text(0))); });
  // A segment may have several views (a late-fusion video: frames and sound, two modalities), never two of one
  // modality; the segments of a source are numbered 0..n-1.
  each("SELECT s.key, COUNT(DISTINCT i.segment), MIN(i.segment), MAX(i.segment), COUNT(*), "
       "COUNT(DISTINCT i.segment || '/' || i.modality) FROM items i JOIN sources s ON s.id = i.source_id "
       "GROUP BY i.source_id",
       [&](const Statement& st) {
         const int64_t n = st.int64(1);
         if (st.int64(2) != 0 || st.int64(3) != n - 1)
           r.problems.push_back(fmt::format("source {}: its segments are not numbered 0..{}", st.text(0), n - 1));
         if (st.int64(4) != st.int64(5))
           r.problems.push_back(fmt::format("source {}: a segment has two items of one modality", st.text(0)));
       });
  const int64_t d = settings_.dim;
  each("SELECT id, vector FROM items", [&](const Statement& st) {
    std::string_view b = st.blob(1);
    if (b.size() != static_cast<size_t>(d) * sizeof(float)) {
      r.problems.push_back(fmt::format("item {}: vector of {} bytes, expected {}", st.int64(0), b.size(), d * 4));
      return;
    }
    std::vector<float> v(static_cast<size_t>(d));
    std::memcpy(v.data(), b.data(), b.size());
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    if (!std::isfinite(norm) || std::abs(std::sqrt(norm) - 1.0) > 1e-3)
      r.problems.push_back(fmt::format("item {}: vector norm {} is not 1", st.int64(0), std::sqrt(norm)));
  });
  return r;
}

}  // namespace oe::index
