// Byte-level BPE tokenizer of the Qwen2 family, loaded from a Hugging Face tokenizer.json (spec qwen25-omni-thinker.md §9):
// NFC normalisation, added/special tokens matched first as literal strings, the Qwen2 pre-tokenizer regex rules
// (hand-coded: single digits, contractions, the whitespace look-ahead rule), the GPT-2 byte-to-unicode map, and
// rank-ordered BPE merges. Ids are identical to the Hugging Face fast tokenizer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace oe::text {

class Tokenizer {
 public:
  // Parses tokenizer.json (BPE model with vocab and merges in either "a b" or ["a", "b"] form, added_tokens,
  // NFC normalizer, ByteLevel). Errors name the file and what was wrong.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);

  // Invalid UTF-8 is an InvalidInput error. Thread-safe (const).
  std::vector<int32_t> encode(std::string_view text) const;
  // Inverse of the byte mapping; skip_special drops added tokens marked special. As in HF tokenizers, ids without a
  // token are dropped and bytes that do not form UTF-8 become U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent (vocab or added tokens)
  std::string id_to_token(int32_t id) const;           // "" when absent
  // Number of ids (largest id + 1), counting added tokens.
  int64_t vocab_size() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oe::text
