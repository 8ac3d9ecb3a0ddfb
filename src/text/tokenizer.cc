#include "text/tokenizer.h"

#include "io/read.h"

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/tokenizer_json.h"
#include "text/unicode.h"

namespace oe::text {

using nlohmann::json;

namespace {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  std::string bytes;  // what decode emits for it (ByteLevel decoder rule)
};

std::string read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError("no such file");
  return io::read_file(path, io::JSON_FILE_CAP);
}

// A short rendering of a JSON value for messages.
std::string brief(const json& j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

const json& require(const json& obj, const char* key, json::value_t type, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end()) throw InvalidInput(fmt::format("{} has no \"{}\"", where, key));
  if (it->type() != type) {
    throw InvalidInput(fmt::format("{}.{} has the wrong type: {}", where, key, brief(*it)));
  }
  return *it;
}

bool flag(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// Present and false (HF's ByteLevel defaults add_prefix_space and use_regex to true when they are absent).
bool is_false(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && !it->get<bool>();
}

bool null_or_empty(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty());
}

// The pipeline around the model must be the Qwen2 one this code implements; anything else is Unsupported.
void check_pipeline(const json& root) {
  auto normalizer = root.find("normalizer");
  if (normalizer != root.end() && !normalizer->is_null() && normalizer->value("type", "") != "NFC") {
    throw Unsupported(fmt::format("normalizer {} is not supported (only NFC)", brief(*normalizer)));
  }
  const std::string expected =
      "a Sequence of Split (the Qwen2 pattern, Isolated) and ByteLevel (add_prefix_space false, use_regex false)";
  auto pre = root.find("pre_tokenizer");
  if (pre == root.end() || !pre->is_object() || pre->value("type", "") != "Sequence") {
    throw Unsupported(fmt::format("pre_tokenizer must be {}", expected));
  }
  const json& steps = pre->value("pretokenizers", json::array());
  const bool ok = steps.is_array() && steps.size() == 2 && steps[0].value("type", "") == "Split" &&
                  steps[0].contains("pattern") && steps[0]["pattern"].value("Regex", "") == QWEN2_PRETOKENIZE_PATTERN &&
                  steps[0].value("behavior", "") == "Isolated" && !flag(steps[0], "invert") &&
                  steps[1].value("type", "") == "ByteLevel" && is_false(steps[1], "add_prefix_space") &&
                  is_false(steps[1], "use_regex");
  if (!ok) throw Unsupported(fmt::format("pre_tokenizer must be {}, found {}", expected, brief(*pre)));
  auto decoder = root.find("decoder");
  if (decoder == root.end() || !decoder->is_object() || decoder->value("type", "") != "ByteLevel") {
    throw Unsupported("decoder must be ByteLevel");
  }
}

// The model options and the merges; the vocabulary was streamed into bpe while parsing.
void load_model(const TokenizerJson& file, BpeModel& bpe) {
  auto it = file.doc.find("model");
  if (it == file.doc.end() || !it->is_object()) {
    throw InvalidInput("no \"model\" object (is this a Hugging Face tokenizer.json?)");
  }
  const json& model = *it;
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") throw Unsupported(fmt::format("model.type is \"{}\"; only \"BPE\" is supported", type));
  if (!null_or_empty(model, "continuing_subword_prefix") || !null_or_empty(model, "end_of_word_suffix") ||
      flag(model, "byte_fallback") || flag(model, "ignore_merges") || !null_or_empty(model, "dropout")) {
    throw Unsupported(
        "model options continuing_subword_prefix, end_of_word_suffix, byte_fallback, ignore_merges and dropout "
        "must be unset");
  }
  if (!file.has_vocab) {
    throw InvalidInput(model.contains("vocab") ? "model.vocab is not an object" : "model has no \"vocab\"");
  }
  if (!file.has_merges) {
    throw InvalidInput(model.contains("merges") ? "model.merges is not an array" : "model has no \"merges\"");
  }
  for (size_t rank = 0; rank < file.merges.size(); ++rank) {
    try {
      bpe.add_merge(file.merges[rank].first, file.merges[rank].second, static_cast<uint32_t>(rank));
    } catch (const InvalidInput& e) {
      throw InvalidInput(fmt::format("model.merges[{}]: {}", rank, e.what()));
    }
  }
  bpe.finish();
}

std::vector<AddedToken> load_added_tokens(const json& root) {
  std::vector<AddedToken> added;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return added;
  if (!it->is_array()) throw InvalidInput("added_tokens is not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& t = (*it)[i];
    const std::string where = fmt::format("added_tokens[{}]", i);
    if (!t.is_object()) throw InvalidInput(fmt::format("{} is not an object", where));
    const json& id = require(t, "id", json::value_t::number_unsigned, where.c_str());
    const json& content = require(t, "content", json::value_t::string, where.c_str());
    AddedToken a;
    a.id = static_cast<int32_t>(id.get<uint64_t>());
    a.content = content.get<std::string>();
    a.special = flag(t, "special");
    if (a.content.empty()) throw InvalidInput(fmt::format("{} has an empty content", where));
    if (id.get<uint64_t>() > static_cast<uint64_t>(BpeModel::MAX_TOKEN_ID)) {
      throw InvalidInput(fmt::format("{} has id {}, past the largest supported id {}", where, id.get<uint64_t>(),
                                     BpeModel::MAX_TOKEN_ID));
    }
    check_utf8(a.content, where);
    for (const char* key : {"lstrip", "rstrip", "single_word", "normalized"}) {
      if (flag(t, key)) {
        throw Unsupported(
            fmt::format("{} (\"{}\") sets {}: only tokens matched verbatim in the raw text are "
                        "supported (all four flags false, as in Qwen2)",
                        where, a.content, key));
      }
    }
    a.bytes = byte_level_decode(a.content);
    added.push_back(std::move(a));
  }
  return added;
}

}  // namespace

struct Tokenizer::Impl {
  BpeModel bpe;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  std::unordered_map<std::string, size_t> added_by_content;
  std::array<std::vector<size_t>, 256> added_by_first_byte;  // longest first
  int64_t vocab_size = 0;

  void index_added_tokens();
  // The leftmost added-token match at or after pos, the longest one at that position (HF's LeftmostLongest).
  // Returns {start, index into added}, or {npos, 0}.
  std::pair<size_t, size_t> find_added(std::string_view text, size_t pos) const;
  void encode_segment(std::string_view segment, std::vector<int32_t>& ids) const;
};

void Tokenizer::Impl::index_added_tokens() {
  int64_t max_id = bpe.max_id();
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& a = added[i];
    if (!added_by_id.emplace(a.id, i).second || !added_by_content.emplace(a.content, i).second) {
      throw InvalidInput(fmt::format("added token \"{}\" (id {}) is listed twice", a.content, a.id));
    }
    added_by_first_byte[static_cast<uint8_t>(a.content[0])].push_back(i);
    max_id = std::max<int64_t>(max_id, a.id);
  }
  for (auto& list : added_by_first_byte) {
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t x, size_t y) { return added[x].content.size() > added[y].content.size(); });
  }
  vocab_size = max_id + 1;
}

std::pair<size_t, size_t> Tokenizer::Impl::find_added(std::string_view text, size_t pos) const {
  if (added.empty()) return {std::string_view::npos, 0};
  for (size_t i = pos; i < text.size(); ++i) {
    for (size_t k : added_by_first_byte[static_cast<uint8_t>(text[i])]) {
      if (text.substr(i, added[k].content.size()) == added[k].content) return {i, k};
    }
  }
  return {std::string_view::npos, 0};
}

void Tokenizer::Impl::encode_segment(std::string_view segment, std::vector<int32_t>& ids) const {
  if (segment.empty()) return;
  const std::string normalized = nfc(segment);
  std::vector<std::string_view> pieces;
  pretokenize_qwen2(normalized, pieces);
  for (std::string_view piece : pieces) bpe.encode_word(piece, ids);
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  return with_context(fmt::format("tokenizer '{}'", tokenizer_json.string()), [&] {
    const std::string text = read_file(tokenizer_json);
    Tokenizer tok;
    const TokenizerJson file = parse_tokenizer_json(text, tok.impl_->bpe);
    const json& root = file.doc;
    if (!root.is_object()) throw InvalidInput("the top level is not a JSON object");
    try {
      load_model(file, tok.impl_->bpe);
      tok.impl_->added = load_added_tokens(root);
      tok.impl_->index_added_tokens();
      check_pipeline(root);
    } catch (const json::exception& e) {  // a value of an unexpected type deep in the pipeline description
      throw InvalidInput(fmt::format("unexpected structure: {}", e.what()));
    }
    return tok;
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  check_utf8(text, "tokenizer input");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (size_t pos = 0; pos < text.size();) {
    const auto [start, k] = impl_->find_added(text, pos);
    if (start == std::string_view::npos) {
      impl_->encode_segment(text.substr(pos), ids);
      break;
    }
    impl_->encode_segment(text.substr(pos, start - pos), ids);
    ids.push_back(impl_->added[k].id);
    pos = start + impl_->added[k].content.size();
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
      const AddedToken& a = impl_->added[it->second];
      if (!(skip_special && a.special)) bytes += a.bytes;
    } else if (const std::string* b = impl_->bpe.id_to_bytes(id)) {
      bytes += *b;
    }  // ids without a token are dropped, as HF tokenizers' decode does
  }
  return utf8_lossy(bytes);
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(std::string(token)); it != impl_->added_by_content.end()) {
    return impl_->added[it->second].id;
  }
  return impl_->bpe.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* t = impl_->bpe.id_to_token(id);
  return t ? *t : std::string();
}

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

}  // namespace oe::text
