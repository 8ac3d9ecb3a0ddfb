#include "index/catalog.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json.h"

namespace oe::index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

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
  json j{{"model", s.model},
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
  if (!s.adapter_id.empty()) {  // absent without adapter: such an index's settings are as before adapters existed
    j["adapter"] = s.adapter;
    j["adapter_id"] = s.adapter_id;
  }
  return j;
}

IndexSettings settings_from_json(const json& j) {
  IndexSettings s;
  s.model = j.at("model").get<std::string>();
  s.model_fingerprint = j.at("model_fingerprint").get<std::string>();
  s.embedding = j.at("embedding").get<std::string>();
  s.dim = io::json_integer(j, "dim");
  s.vectors = j.at("vectors").get<std::string>();
  s.hnsw_m = io::json_integer(j, "hnsw_m");
  s.hnsw_ef_construction = io::json_integer(j, "hnsw_ef_construction");
  s.text_window = io::json_integer(j, "text_window");
  s.text_overlap = io::json_integer(j, "text_overlap");
  s.media_window = j.at("media_window").get<double>();
  s.media_overlap = j.at("media_overlap").get<double>();
  if (j.contains("adapter_id")) {
    s.adapter = j.value("adapter", std::string());
    s.adapter_id = j.at("adapter_id").get<std::string>();
  }
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
bool has_no_table(Database& db) { return !db.prepare("SELECT 1 FROM sqlite_master").step(); }

// Validates the format version and returns the stored settings.
IndexSettings read_checked_settings(Database& db, const fs::path& dir) {
  if (has_no_table(db))
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
  } catch (const InvalidInput& e) {  // a value of the wrong kind (io::json_integer)
    e.rethrow_with_context(fmt::format("index {}: unreadable settings in its catalog", dir.string()));
  }
}

std::string modality_filter_sql(const std::vector<std::string>& modalities) {
  if (modalities.empty()) return "";
  std::string sql = " WHERE modality IN (";
  for (size_t i = 0; i < modalities.size(); ++i) sql += i ? ",?" : "?";
  return sql + ")";
}

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

// The rows of `sql` (an id, then a text) as a map of id -> text.
template <typename Map>
Map text_by_id(Database& db, const char* sql) {
  auto st = db.prepare(sql);
  Map out;
  while (st.step()) out.emplace(st.int64(0), st.text(1));
  return out;
}

// The row of "SELECT id, vector FROM items": its vector must have d floats and unit length.
void check_vector(const Statement& st, int64_t d, CheckReport& r) {
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
}

}  // namespace

std::unique_ptr<Catalog> Catalog::open_existing(const fs::path& dir) {
  if (!fs::exists(dir / CATALOG))
    throw InvalidInput(fmt::format("{} is not an omni-embed index (no {} in it)", dir.string(), CATALOG));
  return std::make_unique<Catalog>(dir, /*read_only=*/true);
}

// Writes a complete new catalog (schema, format version, settings) under a temporary name and renames it into place,
// so that a crash leaves no catalog or a complete one; never an empty database file, which SQLite would otherwise
// create the moment the connection opens, before any table exists. Called with the writer's lock held.
void Catalog::create(const fs::path& dir, const IndexSettings& settings) {
  const fs::path tmp = dir / (std::string(CATALOG) + ".new");
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(tmp.string() + suffix, ec);
  {
    Database db(tmp, false);
    // In WAL mode from its first byte: switching a catalog in place takes a rollback-journal transaction, and a writer
    // killed inside it left a hot journal that no read-only connection may roll back.
    db.exec("PRAGMA journal_mode=WAL");
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

bool Catalog::is_blank(const fs::path& dir) {
  Database probe(dir / CATALOG, false);
  return has_no_table(probe);
}

Catalog::Catalog(const fs::path& dir, bool read_only)
    : dir_(dir), read_only_(read_only), db_(std::make_unique<Database>(dir / CATALOG, read_only)) {
  if (read_only) {
    recover_for_reading();
    return;
  }
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=NORMAL");
  db_->exec("PRAGMA foreign_keys=ON");
}

// A writer killed in the middle of a write may leave its write-ahead log, or (in a catalog switched to WAL mode in
// place, as before catalogs were created in it) a rollback journal, to be recovered before the catalog can be read,
// and a read-only connection cannot do that (SQLITE_READONLY_RECOVERY or _ROLLBACK: "attempt to write a readonly
// database"; the kill -9 test met it). One read-write connection recovers it as it first reads (SQLite's locks make
// that safe beside a writer running again), then the read-only one is opened anew. Recovery restores the catalog as
// of its last committed transaction, as any writer opening it would.
void Catalog::recover_for_reading() {
  try {
    db_->prepare("SELECT 1 FROM sqlite_master").step();
    return;
  } catch (const IoError&) {
    const int code = sqlite3_extended_errcode(db_->handle());
    if (code != SQLITE_READONLY_RECOVERY && code != SQLITE_READONLY_CANTINIT && code != SQLITE_READONLY_ROLLBACK)
      throw;
  }
  const fs::path path = dir_ / CATALOG;
  try {
    Database writer(path, /*read_only=*/false);
    writer.prepare("SELECT 1 FROM sqlite_master").step();
  } catch (const IoError& e) {
    throw IoError(fmt::format("index {}: a write to it was interrupted and its catalog must be recovered, which needs "
                              "write access to the folder ({})",
                              dir_.string(), e.what()));
  }
  db_ = std::make_unique<Database>(path, /*read_only=*/true);
}

IndexSettings Catalog::read_settings() const { return read_checked_settings(*db_, dir_); }

void Catalog::write_settings(const IndexSettings& settings) {
  Transaction tx(*db_);
  set_meta(*db_, "settings", settings_json(settings).dump());
  tx.commit();
}

void Catalog::reset(const IndexSettings& settings) {
  Transaction tx(*db_);
  db_->exec("DELETE FROM items; DELETE FROM sources;");
  set_meta(*db_, "settings", settings_json(settings).dump());
  bump_generation();
  tx.commit();
}

int64_t Catalog::generation() const {
  const std::string v = meta_value(*db_, "generation");
  int64_t g = -1;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), g);
  if (ec != std::errc() || end != v.data() + v.size() || g < 0)
    throw InvalidInput(fmt::format("index {}: its catalog's generation is '{}', not a count (the catalog was changed "
                                   "outside omni-embed)",
                                   dir_.string(), v));
  return g;
}

void Catalog::bump_generation() { set_meta(*db_, "generation", std::to_string(generation() + 1)); }

std::optional<SourceRecord> Catalog::find_source(const std::string& key) const {
  auto st = db_->prepare(fmt::format("SELECT {} FROM sources WHERE key = ?", SOURCE_COLUMNS));
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return source_from_row(st);
}

std::optional<SourceRecord> Catalog::find_source_by_path(const std::string& path) const {
  auto st = db_->prepare(fmt::format("SELECT {} FROM sources WHERE path = ? ORDER BY key LIMIT 1", SOURCE_COLUMNS));
  st.bind(1, path);
  if (!st.step()) return std::nullopt;
  return source_from_row(st);
}

std::vector<SourceRecord> Catalog::sources() const {
  auto st = db_->prepare(fmt::format("SELECT {} FROM sources ORDER BY key", SOURCE_COLUMNS));
  std::vector<SourceRecord> out;
  while (st.step()) out.push_back(source_from_row(st));
  return out;
}

StoreStats Catalog::stats() const {
  Database& db = *db_;
  StoreStats s;
  auto q = [&](const char* sql) {
    auto st = db.prepare(sql);
    return st.step() ? st.int64(0) : int64_t{0};
  };
  s.sources = q("SELECT COUNT(*) FROM sources");
  s.failed = q("SELECT COUNT(*) FROM sources WHERE status != 'ok'");
  s.items = q("SELECT COUNT(*) FROM items");
  s.generation = generation();
  return s;
}

void Catalog::put(const std::vector<Store::SourceUpdate>& updates, int64_t dim) {
  Database& db = *db_;
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
      if (static_cast<int64_t>(seg.vector.size()) != dim)
        throw InternalError(
            fmt::format("{}: a {}-d vector for an index of {} dimensions", r.key, seg.vector.size(), dim));
      item.bind(1, source_id).bind(2, seg.index).bind(3, seg.modality).bind(4, seg.start).bind(5, seg.end);
      item.bind(6, seg.unit).bind(7, seg.preview).bind(8, seg.n_tokens);
      item.bind_blob(9, seg.vector.data(), seg.vector.size() * sizeof(float)).run();
    }
  }
  bump_generation();
  tx.commit();
}

int64_t Catalog::remove(const std::vector<std::string>& keys) {
  Database& db = *db_;
  Transaction tx(db);
  auto del = db.prepare("DELETE FROM sources WHERE key = ?");
  int64_t n = 0;
  for (const auto& k : keys) {
    del.bind(1, k).run();
    n += db.changes();
  }
  bump_generation();
  tx.commit();
  return n;
}

void Catalog::load_vectors(std::vector<int64_t>& ids, std::vector<float>& matrix,
                           const std::vector<std::string>& modalities, int64_t dim) const {
  Database& db = *db_;
  ids.clear();
  matrix.clear();
  {
    auto count = db.prepare("SELECT COUNT(*) FROM items" + modality_filter_sql(modalities));
    for (size_t i = 0; i < modalities.size(); ++i) count.bind(static_cast<int>(i + 1), modalities[i]);
    if (count.step()) {
      ids.reserve(static_cast<size_t>(count.int64(0)));
      matrix.reserve(static_cast<size_t>(count.int64(0) * dim));
    }
  }
  auto st = db.prepare("SELECT id, vector FROM items" + modality_filter_sql(modalities) + " ORDER BY id");
  for (size_t i = 0; i < modalities.size(); ++i) st.bind(static_cast<int>(i + 1), modalities[i]);
  while (st.step()) {
    std::string_view b = st.blob(1);
    if (b.size() != static_cast<size_t>(dim) * sizeof(float))
      throw IoError(fmt::format("index {}: item {} has a vector of {} bytes, expected {}", dir_.string(), st.int64(0),
                                b.size(), dim * 4));
    ids.push_back(st.int64(0));
    const size_t at = matrix.size();
    matrix.resize(at + static_cast<size_t>(dim));
    std::memcpy(matrix.data() + at, b.data(), b.size());
  }
}

std::optional<std::vector<float>> Catalog::vector_of(int64_t item_id, int64_t dim) const {
  auto st = db_->prepare("SELECT vector FROM items WHERE id = ?");
  st.bind(1, item_id);
  if (!st.step()) return std::nullopt;
  std::string_view b = st.blob(0);
  if (b.size() != static_cast<size_t>(dim) * sizeof(float))
    throw IoError(fmt::format("index {}: item {} has a vector of {} bytes, expected {}", dir_.string(), item_id,
                              b.size(), dim * 4));
  std::vector<float> v(static_cast<size_t>(dim));
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::map<std::string, int64_t> Catalog::items_by_modality() const {
  auto st = db_->prepare("SELECT modality, COUNT(*) FROM items GROUP BY modality");
  std::map<std::string, int64_t> out;
  while (st.step()) out[st.text(0)] = st.int64(1);
  return out;
}

std::vector<std::string> Catalog::item_modalities() const {
  auto st = db_->prepare("SELECT modality FROM items ORDER BY id");
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

std::unordered_map<int64_t, std::string> Catalog::modality_by_item() const {
  return text_by_id<std::unordered_map<int64_t, std::string>>(*db_, "SELECT id, modality FROM items");
}

std::vector<Hit> Catalog::describe(const std::vector<int64_t>& item_ids) const {
  auto st = db_->prepare(
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

std::map<int64_t, std::string> Catalog::item_keys() const {
  using Keys = std::map<int64_t, std::string>;
  return text_by_id<Keys>(*db_, "SELECT i.id, s.key FROM items i JOIN sources s ON s.id = i.source_id");
}

std::vector<StoredItem> Catalog::segment_views(const std::vector<int64_t>& item_ids, int64_t dim) const {
  // The given item j, then every item i of its source and segment (j itself included), through items_by_source.
  auto st = db_->prepare(
      "SELECT i.id, s.path, s.key, i.modality, i.segment, i.start, i.end, i.unit, i.preview, i.vector FROM items j "
      "JOIN items i ON i.source_id = j.source_id AND i.segment = j.segment JOIN sources s ON s.id = i.source_id "
      "WHERE j.id = ? ORDER BY i.id");
  std::vector<StoredItem> out;
  std::unordered_set<int64_t> seen;
  for (int64_t id : item_ids) {
    if (seen.count(id)) continue;  // a view of a segment already read
    st.bind(1, id);
    while (st.step()) {
      const int64_t item = st.int64(0);
      if (!seen.insert(item).second) continue;
      std::string_view b = st.blob(9);
      if (b.size() != static_cast<size_t>(dim) * sizeof(float))
        throw IoError(fmt::format("index {}: item {} has a vector of {} bytes, expected {}", dir_.string(), item,
                                  b.size(), dim * 4));
      StoredItem v;
      v.hit.item_id = item;
      v.hit.path = st.text(1);
      v.hit.key = st.text(2);
      v.hit.modality = st.text(3);
      v.hit.segment = st.int64(4);
      v.hit.start = st.real(5);
      v.hit.end = st.real(6);
      v.hit.unit = st.text(7);
      v.hit.preview = st.text(8);
      v.vector.resize(static_cast<size_t>(dim));
      std::memcpy(v.vector.data(), b.data(), b.size());
      out.push_back(std::move(v));
    }
    st.reset();
  }
  return out;
}

namespace {

constexpr const char* CACHE_KEY_PREFIX = "cache:";

}  // namespace

std::string Catalog::cache_checksum(const std::string& file) const {
  return meta_value(*db_, CACHE_KEY_PREFIX + file);
}

bool Catalog::record_cache_checksum(const std::string& file, const std::string& checksum) const {
  const size_t dash = file.find('-');
  OE_CHECK(dash != std::string::npos, "cache file names are <kind>-<generation>.<ext>");
  try {
    std::unique_ptr<Database> own;
    if (read_only_) {
      own = std::make_unique<Database>(dir_ / CATALOG, /*read_only=*/false);
      sqlite3_busy_timeout(own->handle(), 1000);  // a reader does not wait long on a writer for this
    }
    Database& db = own ? *own : *db_;
    Transaction tx(db);
    db.prepare("DELETE FROM meta WHERE key >= ? AND key < ?")
        .bind(1, CACHE_KEY_PREFIX + file.substr(0, dash + 1))
        .bind(2, CACHE_KEY_PREFIX + file.substr(0, dash) + '.')  // '.' follows '-': every "<kind>-..." key
        .run();
    set_meta(db, CACHE_KEY_PREFIX + file, checksum);
    tx.commit();
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string Catalog::quick_check() const {
  try {
    auto st = db_->prepare("PRAGMA quick_check(1)");
    if (!st.step()) return "SQLite's quick check gave no answer";
    const std::string first = st.text(0);
    return first == "ok" ? "" : first;
  } catch (const Error& e) {  // SQLite may stop at the first bad page instead of listing it
    return e.what();
  }
}

CheckReport Catalog::check(int64_t dim) const {
  Database& db = *db_;
  CheckReport r;
  // A damaged catalog can stop a query at its first bad page: that is a problem to list, not the end of the check.
  auto each = [&](const std::string& sql, const std::function<void(const Statement&)>& f) {
    try {
      auto st = db.prepare(sql);
      while (st.step()) f(st);
    } catch (const IoError& e) {
      r.problems.push_back(fmt::format("SQLite: {}", e.what()));
    }
  };
  each("PRAGMA integrity_check", [&](const Statement& st) {
    if (st.text(0) != "ok") r.problems.push_back("SQLite integrity: " + st.text(0));
  });
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
  each("SELECT id, vector FROM items", [&](const Statement& st) { check_vector(st, dim, r); });
  return r;
}

}  // namespace oe::index
