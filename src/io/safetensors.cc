// Safetensors reader: one memory-mapped file (SafetensorsFile) and a checkpoint of one file or index-listed shards
// (Checkpoint). Every header is validated against the file size before any tensor pointer is handed out.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "io/json.h"

namespace oe::io {

namespace fs = std::filesystem;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian; so must the host be");

DType dtype_from_safetensors(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U8") return DType::U8;
  static const char* const other_safetensors_dtypes[] = {"F64",     "I8",      "I16",     "U16", "U32",
                                                         "U64",     "BOOL",    "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                                         "F6_E2M3", "F6_E3M2", "F4",      "C64"};
  for (const char* o : other_safetensors_dtypes) {
    if (s == o) throw Unsupported(fmt::format("dtype {} is not supported (F32, BF16, F16, I32, I64, U8 are)", s));
  }
  throw InvalidInput(fmt::format("unknown dtype '{}' (expected F32, BF16, F16, I32, I64 or U8)", s));
}

namespace {

// A validated header entry, before pointers into the mapping are made.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Shape parse_shape(const json& j, size_t dsize, uint64_t* nbytes) {
  if (!j.is_array()) throw InvalidInput(fmt::format("'shape' must be an array, found {}", j.dump()));
  Shape shape;
  uint64_t n = dsize;
  for (const json& d : j) {
    if (!d.is_number_unsigned()) {  // nlohmann parses a non-negative integer as unsigned, -1 as signed
      throw InvalidInput(fmt::format("'shape' must hold non-negative integers, found {}", j.dump()));
    }
    uint64_t v = d.get<uint64_t>();
    if (v > uint64_t(INT64_MAX) || __builtin_mul_overflow(n, v, &n)) {
      throw InvalidInput(fmt::format("'shape' {} is too large", j.dump()));
    }
    shape.push_back(static_cast<int64_t>(v));
  }
  *nbytes = n;
  return shape;
}

Entry parse_entry(const std::string& name, const json& j, uint64_t data_size) {
  if (!j.is_object()) throw InvalidInput(fmt::format("entry must be an object, found {}", j.dump()));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) throw InvalidInput(fmt::format("entry has no '{}' (found {})", key, j.dump()));
  }
  if (!j["dtype"].is_string()) throw InvalidInput(fmt::format("'dtype' must be a string, found {}", j["dtype"].dump()));
  Entry e{name, dtype_from_safetensors(j["dtype"].get<std::string>()), {}, 0, 0};
  uint64_t nbytes = 0;
  e.shape = parse_shape(j["shape"], dtype_size(e.dtype), &nbytes);
  const json& off = j["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    throw InvalidInput(fmt::format("'data_offsets' must be two non-negative integers, found {}", off.dump()));
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) {
    throw InvalidInput(fmt::format("data_offsets [{}, {}] are reversed", e.begin, e.end));
  }
  if (e.end > data_size) {
    throw InvalidInput(fmt::format("data_offsets [{}, {}] reach past the end of the data block ({} bytes; the file "
                                   "is truncated or the header is wrong)",
                                   e.begin, e.end, data_size));
  }
  if (e.end - e.begin != nbytes) {
    throw InvalidInput(fmt::format("data_offsets [{}, {}] span {} bytes but {} {} needs {}", e.begin, e.end,
                                   e.end - e.begin, dtype_name(e.dtype), shape_str(e.shape), nbytes));
  }
  return e;
}

// Throws naming both tensors when two non-empty byte ranges overlap.
void check_no_overlap(std::vector<const Entry*> entries, const std::string& file) {
  std::erase_if(entries, [](const Entry* e) { return e->begin == e->end; });
  std::sort(entries.begin(), entries.end(),
            [](const Entry* a, const Entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = *entries[i - 1];
    const Entry& b = *entries[i];
    if (b.begin < a.end) {
      throw InvalidInput(fmt::format("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data block", file,
                                     a.name, a.begin, a.end, b.name, b.begin, b.end));
    }
  }
}

std::map<std::string, std::string> parse_metadata(const json& j) {
  if (!j.is_object()) throw InvalidInput(fmt::format("'__metadata__' must be an object, found {}", j.dump()));
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : j.items()) m[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return m;
}

}  // namespace

namespace {

// Maps the whole file read-only; the file must be at least 8 bytes long (the header length).
std::pair<void*, uint64_t> map_read_only(const fs::path& path) {
  const std::string file = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(fmt::format("{}: not a readable regular file", file));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw InvalidInput(fmt::format("{}: file is {} bytes, too short for a safetensors header", file, size));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) throw IoError(fmt::format("{}: mmap failed: {}", file, std::strerror(map_errno)));
  return {map, size};
}

// Parses and validates the header of a mapped file of `size` bytes; sets *data_start to the data block's offset.
std::vector<Entry> parse_header(const uint8_t* base, uint64_t size, const std::string& file,
                                std::map<std::string, std::string>* metadata, uint64_t* data_start) {
  uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8) {
    throw InvalidInput(fmt::format("{}: header length {} is larger than the file ({} bytes): not a safetensors "
                                   "file, or truncated",
                                   file, header_len, size));
  }
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base + 8), reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const json::exception& e) {  // a syntax error, or a number past double's range (out_of_range)
    throw InvalidInput(fmt::format("{}: header is not valid JSON: {}", file, e.what()));
  }
  if (!header.is_object()) {
    throw InvalidInput(fmt::format("{}: header must be a JSON object, found a {}", file, header.type_name()));
  }
  *data_start = 8 + header_len;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    try {
      if (name == "__metadata__") {
        *metadata = parse_metadata(value);
      } else {
        entries.push_back(parse_entry(name, value, size - *data_start));
      }
    } catch (const Error& e) {
      e.rethrow_with_context(name == "__metadata__" ? file : fmt::format("{}: tensor '{}'", file, name));
    }
  }
  std::vector<const Entry*> ptrs;
  for (const Entry& e : entries) ptrs.push_back(&e);
  check_no_overlap(ptrs, file);
  return entries;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  auto [map, size] = map_read_only(path);
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = map;  // from here the destructor unmaps, also when validation throws
  f->map_size_ = size;
  const auto* base = static_cast<const uint8_t*>(map);
  uint64_t data_start = 0;
  std::vector<Entry> entries = parse_header(base, size, path.string(), &f->metadata_, &data_start);
  const std::string file_name = path.filename().string();
  for (Entry& e : entries) {
    TensorInfo& t = f->tensors_[e.name];
    t.name = e.name;
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.data = base + data_start + e.begin;
    t.nbytes = e.end - e.begin;
    t.file = file_name;
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

void SafetensorsFile::release(const void* data, size_t nbytes) const {
  const auto begin = reinterpret_cast<uintptr_t>(data), map_begin = reinterpret_cast<uintptr_t>(map_);
  OE_CHECK(begin >= map_begin && begin + nbytes <= map_begin + map_size_, "release of a range outside {}",
           path_.string());
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the range: a page shared with a neighbouring tensor stays resident.
  const uintptr_t lo = (begin + page - 1) / page * page, hi = (begin + nbytes) / page * page;
  if (lo >= hi) return;
  if (::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0) {
    log_debug("{}: madvise(DONTNEED) failed: {}", path_.string(), std::strerror(errno));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoint

namespace {

constexpr const char* INDEX_NAME = "model.safetensors.index.json";
constexpr const char* SINGLE_NAME = "model.safetensors";

// weight_map of an index: tensor name -> shard file name (validated: plain relative names inside the folder).
std::map<std::string, std::string> read_weight_map(const fs::path& index_path) {
  json index = read_json_file(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw InvalidInput(fmt::format("{}: expected an object with a 'weight_map' object", index_path.string()));
  }
  std::map<std::string, std::string> map;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      throw InvalidInput(fmt::format("{}: weight_map['{}'] must be a file name, found {}", index_path.string(), name,
                                     shard.dump()));
    }
    fs::path p = shard.get<std::string>();
    bool escapes = p.empty() || p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& c) {
                     return c == "..";
                   });
    if (escapes) {
      throw InvalidInput(fmt::format("{}: weight_map['{}'] = '{}' is not a file name inside the folder",
                                     index_path.string(), name, p.string()));
    }
    map[name] = p.string();
  }
  return map;
}

// Opens every shard named by the index once and indexes the tensors the index lists (the index is authoritative).
void open_shards(const fs::path& dir, const fs::path& index_path, std::vector<std::shared_ptr<SafetensorsFile>>* files,
                 std::map<std::string, std::pair<const TensorInfo*, const SafetensorsFile*>>* index) {
  std::error_code ec;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  for (const auto& [name, shard] : read_weight_map(index_path)) {
    auto it = shards.find(shard);
    if (it == shards.end()) {
      const fs::path shard_path = dir / shard;
      if (!fs::is_regular_file(shard_path, ec)) {
        throw InvalidInput(fmt::format("{}: shard '{}' (listed for tensor '{}') is missing from {}",
                                       index_path.string(), shard, name, dir.string()));
      }
      it = shards.emplace(shard, SafetensorsFile::open(shard_path)).first;
      files->push_back(it->second);
    }
    const auto& tensors = it->second->tensors();
    auto t = tensors.find(name);
    if (t == tensors.end()) {
      throw InvalidInput(fmt::format("{}: tensor '{}' is listed in shard '{}', but that shard does not contain it",
                                     index_path.string(), name, shard));
    }
    (*index)[name] = {&t->second, it->second.get()};
  }
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir_or_file) {
  Checkpoint ck;
  ck.path_ = dir_or_file;
  std::error_code ec;
  const std::string where = dir_or_file.string();
  if (!fs::exists(dir_or_file, ec)) throw InvalidInput(fmt::format("checkpoint {} does not exist", where));

  auto add_all = [&ck](std::shared_ptr<SafetensorsFile> f) {
    for (const auto& [name, info] : f->tensors()) ck.index_[name] = {&info, f.get()};
    ck.files_.push_back(std::move(f));
  };

  if (!fs::is_directory(dir_or_file, ec)) {
    if (dir_or_file.extension() != ".safetensors") {
      throw InvalidInput(fmt::format("checkpoint {}: expected a .safetensors file or a folder holding {} or {}",
                                     where, SINGLE_NAME, INDEX_NAME));
    }
    add_all(SafetensorsFile::open(dir_or_file));
    return ck;
  }

  const fs::path index_path = dir_or_file / INDEX_NAME;
  if (!fs::exists(index_path, ec)) {
    const fs::path single = dir_or_file / SINGLE_NAME;
    if (!fs::exists(single, ec)) {
      throw InvalidInput(fmt::format("checkpoint folder {} holds neither {} nor {}", where, INDEX_NAME, SINGLE_NAME));
    }
    add_all(SafetensorsFile::open(single));
    return ck;
  }

  open_shards(dir_or_file, index_path, &ck.files_, &ck.index_);
  return ck;
}

bool Checkpoint::has(const std::string& name) const { return index_.count(name) != 0; }

const TensorInfo& Checkpoint::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    throw InvalidInput(fmt::format("tensor '{}' not found in checkpoint {} ({} tensors)", name, path_.string(),
                                   index_.size()));
  }
  return *it->second.first;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

void Checkpoint::release(const std::string& name) const {
  const TensorInfo& t = get(name);
  index_.at(name).second->release(t.data, t.nbytes);
}

}  // namespace oe::io
