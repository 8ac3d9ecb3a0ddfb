// Byte-level BPE model of the GPT-2 / Qwen2 family (spec qwen25-omni-thinker.md §9): the GPT-2 byte-to-unicode
// map, a vocabulary of mapped token strings, and ranked merges applied lowest rank first (leftmost on ties), as the
// Hugging Face tokenizers BPE model does. Works on ids: a pre-token's bytes start as the ids of their one-character
// tokens and merge through a (left id, right id) -> (rank, merged id) table.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace oe::text {

// GPT-2 bytes_to_unicode: bytes 33..126, 161..172, 174..255 map to themselves, the other 68 bytes to U+0100.. in
// increasing byte order (so ' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
char32_t byte_to_unicode(uint8_t b);
// Inverse of byte_to_unicode; -1 when cp is not the image of a byte.
int unicode_to_byte(char32_t cp);
// The mapped token string of raw bytes, e.g. " hi" -> "Ġhi".
std::string byte_level_encode(std::string_view bytes);
// Raw bytes of a token string as the ByteLevel decoder of HF tokenizers gives them: every character mapped back
// to its byte, or, when some character is not the image of a byte, the token's own UTF-8 bytes unchanged.
std::string byte_level_decode(std::string_view token);

class BpeModel {
 public:
  BpeModel();
  ~BpeModel();
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Building, in this order. Problems throw InvalidInput with a message naming the token or merge (the caller
  // adds the file). add_token: a token string (byte-level mapped) with its id; duplicate strings or ids throw, and
  // so does an id past MAX_TOKEN_ID (the token table is indexed by id, so one huge id would allocate for all below).
  static constexpr int32_t MAX_TOKEN_ID = (1 << 21) - 1;  // 2,097,151: 8x the largest vocabularies in use (256k)
  void add_token(std::string token, int32_t id);
  // The merge of rank `rank` (0 = applied first). Both parts and their concatenation must be in the vocabulary.
  // A pair listed twice keeps its last rank, as HF tokenizers does.
  void add_merge(std::string_view left, std::string_view right, uint32_t rank);
  // Checks that every byte has its one-character token and precomputes decoding tables.
  void finish();

  // Appends the ids of one pre-token (raw bytes). Thread-safe; results of short pre-tokens are cached.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent
  const std::string* id_to_token(int32_t id) const;   // nullptr when absent
  const std::string* id_to_bytes(int32_t id) const;   // decoded bytes of the token; nullptr when absent
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }
  size_t n_tokens() const;
  size_t n_merges() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  class TokenIndex;
  class PairTable;
  class WordCache;

  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;    // by id; "" for ids without a token
  std::unique_ptr<TokenIndex> index_;  // token string -> id
  std::vector<bool> present_;          // by id
  std::vector<std::string> bytes_;     // by id: byte_level_decode(token)
  std::array<int32_t, 256> byte_ids_{};
  std::unique_ptr<PairTable> merges_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace oe::text
