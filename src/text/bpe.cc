#include "text/bpe.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "text/unicode.h"

namespace oe::text {
namespace {

struct ByteMap {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 512> to_byte{};  // every image is below U+0200
  ByteMap() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool kept = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = kept ? static_cast<char32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int unicode_to_byte(char32_t cp) { return cp < 512 ? byte_map().to_byte[cp] : -1; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

std::string byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const int b = unicode_to_byte(next_code_point(token, pos));
    if (b < 0) return std::string(token);
    out += static_cast<char>(b);
  }
  return out;
}

// Open-addressing hash index from token strings (kept in tokens_) to ids: flat arrays, no per-entry allocation.
class BpeModel::TokenIndex {
 public:
  int32_t find(std::string_view s, const std::vector<std::string>& tokens) const {
    if (slots_.empty()) return -1;
    const size_t h = hash(s);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] < 0) return -1;
      if (hashes_[i] == static_cast<uint32_t>(h) && tokens[slots_[i]] == s) return slots_[i];
    }
  }
  // Adds tokens[id]; false when that string is already present.
  bool insert(int32_t id, const std::vector<std::string>& tokens) {
    if ((count_ + 1) * 2 > slots_.size()) grow(tokens);
    const size_t h = hash(tokens[id]);
    size_t i = h & mask_;
    for (; slots_[i] >= 0; i = (i + 1) & mask_) {
      if (hashes_[i] == static_cast<uint32_t>(h) && tokens[slots_[i]] == tokens[id]) return false;
    }
    slots_[i] = id;
    hashes_[i] = static_cast<uint32_t>(h);
    ++count_;
    return true;
  }
  size_t size() const { return count_; }

 private:
  static size_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
  void grow(const std::vector<std::string>& tokens) {
    std::vector<int32_t> old = std::move(slots_);
    slots_.assign(std::max<size_t>(1024, old.size() * 2), -1);
    hashes_.assign(slots_.size(), 0);
    mask_ = slots_.size() - 1;
    count_ = 0;
    for (int32_t id : old) {
      if (id >= 0) insert(id, tokens);
    }
  }
  std::vector<int32_t> slots_;  // ids, -1 when empty
  std::vector<uint32_t> hashes_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// Open-addressing hash table (left id, right id) -> (rank, merged id).
class BpeModel::PairTable {
 public:
  struct Merge {
    uint32_t rank;
    int32_t id;
  };
  void insert(int32_t left, int32_t right, Merge m) {
    if ((count_ + 1) * 2 > keys_.size()) grow();
    const uint64_t key = pack(left, right);
    size_t i = slot(key);
    while (keys_[i] != EMPTY && keys_[i] != key) i = (i + 1) & mask_;
    if (keys_[i] == EMPTY) ++count_;
    keys_[i] = key;
    values_[i] = m;
  }
  const Merge* find(int32_t left, int32_t right) const {
    if (keys_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == EMPTY) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t EMPTY = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17) & mask_; }
  void grow() {
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_values = std::move(values_);
    const size_t cap = std::max<size_t>(1024, old_keys.size() * 2);
    keys_.assign(cap, EMPTY);
    values_.assign(cap, Merge{});
    mask_ = cap - 1;
    count_ = 0;
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != EMPTY) {
        insert(static_cast<int32_t>(old_keys[i] >> 32), static_cast<int32_t>(old_keys[i] & 0xFFFFFFFFu), old_values[i]);
      }
    }
  }
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// Results of short pre-tokens, in mutex-guarded shards; a full shard is cleared.
class BpeModel::WordCache {
 public:
  static constexpr size_t MAX_KEY_BYTES = 48;
  bool get(std::string_view key, std::vector<int32_t>& out) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view key, const int32_t* ids, size_t n) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= SHARD_CAPACITY) s.map.clear();
    s.map.emplace(std::string(key), std::vector<int32_t>(ids, ids + n));
  }

 private:
  static constexpr size_t N_SHARDS = 16;
  static constexpr size_t SHARD_CAPACITY = 4096;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  Shard& shard(std::string_view key) { return shards_[std::hash<std::string_view>{}(key) % N_SHARDS]; }
  std::array<Shard, N_SHARDS> shards_;
};

BpeModel::BpeModel()
    : index_(std::make_unique<TokenIndex>()),
      merges_(std::make_unique<PairTable>()),
      cache_(std::make_unique<WordCache>()) {
  byte_ids_.fill(-1);
}
BpeModel::~BpeModel() = default;

size_t BpeModel::n_merges() const { return merges_->size(); }
size_t BpeModel::n_tokens() const { return index_->size(); }

void BpeModel::add_token(std::string token, int32_t id) {
  if (id < 0) throw InvalidInput(fmt::format("token \"{}\" has negative id {}", token, id));
  if (id > MAX_TOKEN_ID) {
    throw InvalidInput(fmt::format("token \"{}\" has id {}, past the largest supported id {}", token, id, MAX_TOKEN_ID));
  }
  if (static_cast<size_t>(id) >= tokens_.size()) {
    tokens_.resize(static_cast<size_t>(id) + 1);
    present_.resize(static_cast<size_t>(id) + 1, false);
  }
  if (present_[id]) {
    throw InvalidInput(fmt::format("id {} is given to both \"{}\" and \"{}\"", id, tokens_[id], token));
  }
  tokens_[id] = std::move(token);
  if (!index_->insert(id, tokens_)) {
    throw InvalidInput(
        fmt::format("token \"{}\" appears twice (ids {} and {})", tokens_[id], index_->find(tokens_[id], tokens_), id));
  }
  present_[id] = true;
}

void BpeModel::add_merge(std::string_view left, std::string_view right, uint32_t rank) {
  const int32_t a = token_to_id(left);
  const int32_t b = token_to_id(right);
  std::string joined;
  joined.reserve(left.size() + right.size());
  joined.append(left).append(right);
  const int32_t merged = token_to_id(joined);
  if (a < 0 || b < 0 || merged < 0) {
    throw InvalidInput(fmt::format("merge \"{} {}\": token \"{}\" is not in the vocabulary", left, right,
                                   a < 0   ? left
                                   : b < 0 ? right
                                           : std::string_view(joined)));
  }
  merges_->insert(a, b, PairTable::Merge{rank, merged});
}

void BpeModel::finish() {
  for (int b = 0; b < 256; ++b) {
    std::string single;
    append_utf8(single, byte_to_unicode(static_cast<uint8_t>(b)));
    byte_ids_[b] = token_to_id(single);
    if (byte_ids_[b] < 0) {
      throw InvalidInput(fmt::format("the vocabulary lacks the byte-level token \"{}\" of byte 0x{:02X}", single, b));
    }
  }
  bytes_.resize(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (present_[id]) bytes_[id] = byte_level_decode(tokens_[id]);
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const { return index_->find(token, tokens_); }

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !present_[id]) return nullptr;
  return &tokens_[id];
}

const std::string* BpeModel::id_to_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= bytes_.size() || !present_[id]) return nullptr;
  return &bytes_[id];
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    out.push_back(byte_ids_[static_cast<uint8_t>(bytes[0])]);
    return;
  }
  const bool cacheable = bytes.size() <= WordCache::MAX_KEY_BYTES;
  if (cacheable && cache_->get(bytes, out)) return;
  const size_t first = out.size();
  merge_word(bytes, out);
  if (cacheable) cache_->put(bytes, out.data() + first, out.size() - first);
}

// Mirrors the merge loop of HF tokenizers (models/bpe/word.rs, Word::merge_all): a min-heap of candidate merges
// ordered by (rank, position); a popped candidate is applied only if its pair is still adjacent and unchanged.
void BpeModel::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the linked list; -1 at the ends
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = static_cast<int32_t>(bytes.size());
  std::vector<Symbol> sym(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = Symbol{byte_ids_[static_cast<uint8_t>(bytes[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::vector<Candidate> heap;
  heap.reserve(static_cast<size_t>(n));
  auto push = [&](int32_t pos) {
    if (const auto* m = merges_->find(sym[pos].id, sym[sym[pos].next].id)) {
      heap.push_back(Candidate{m->rank, pos});
      std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& s = sym[top.pos];
    if (s.id < 0 || s.next < 0) continue;  // merged away, or now last
    const auto* m = merges_->find(s.id, sym[s.next].id);
    if (m == nullptr || m->rank != top.rank) continue;  // the pair changed since it was queued
    const int32_t gone = s.next;
    s.id = m->id;
    s.next = sym[gone].next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    sym[gone].id = -1;
    if (s.prev >= 0) push(s.prev);
    if (s.next >= 0) push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace oe::text
