#include "text/tokenizer_json.h"

#include <cstdint>

#include "core/error.h"

namespace oe::text {
namespace {

using nlohmann::json;

// SAX handler: a DOM builder (a stack of the open containers) that diverts model.vocab and model.merges.
class Handler {
 public:
  explicit Handler(BpeModel& bpe) : bpe_(bpe) {}

  TokenizerJson result;

  bool null() { return value(json(nullptr)); }
  bool boolean(bool b) { return value(json(b)); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == Mode::Vocab) {
      if (v < 0 || v > INT32_MAX) throw bad_vocab_value();
      bpe_.add_token(std::move(vocab_key_), static_cast<int32_t>(v));
      return true;
    }
    return value(json(v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (mode_ == Mode::Vocab) {
      if (v > INT32_MAX) throw bad_vocab_value();
      bpe_.add_token(std::move(vocab_key_), static_cast<int32_t>(v));
      return true;
    }
    return value(json(v));
  }
  bool number_float(json::number_float_t v, const std::string&) { return value(json(v)); }
  bool binary(json::binary_t&) { return value(json(nullptr)); }
  bool string(std::string& s) {
    if (mode_ == Mode::Merges) {
      const size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == s.size() ||
          s.find(' ', space + 1) != std::string::npos) {
        throw bad_merge();
      }
      result.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      return true;
    }
    if (mode_ == Mode::MergePair) {
      if (pair_.size() == 2) throw bad_merge();
      pair_.push_back(std::move(s));
      return true;
    }
    return value(json(std::move(s)));
  }
  bool key(std::string& k) {
    if (mode_ == Mode::Vocab) {
      vocab_key_ = std::move(k);
    } else {
      key_ = std::move(k);
    }
    return true;
  }
  bool start_object(size_t) {
    if (mode_ == Mode::Vocab) throw bad_vocab_value();
    if (mode_ != Mode::Dom) throw bad_merge();
    if (in_model() && key_ == "vocab") {
      mode_ = Mode::Vocab;
      result.has_vocab = true;
      return true;
    }
    stack_.push_back(add(json::object()));
    return true;
  }
  bool end_object() {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool start_array(size_t) {
    if (mode_ == Mode::Vocab) throw bad_vocab_value();
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_.clear();
      return true;
    }
    if (mode_ == Mode::MergePair) throw bad_merge();
    if (in_model() && key_ == "merges") {
      mode_ = Mode::Merges;
      result.has_merges = true;
      return true;
    }
    stack_.push_back(add(json::array()));
    return true;
  }
  bool end_array() {
    if (mode_ == Mode::MergePair) {
      if (pair_.size() != 2) throw bad_merge();
      result.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(size_t, const std::string&, const json::exception& e) {
    throw InvalidInput(fmt::format("not valid JSON: {}", e.what()));
  }

 private:
  enum class Mode { Dom, Vocab, Merges, MergePair };

  // The open container is the "model" object at the top level.
  bool in_model() const { return stack_.size() == 2 && model_ != nullptr && stack_.back() == model_; }

  json* add(json&& v) {
    if (stack_.empty()) {
      result.doc = std::move(v);
      return &result.doc;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    if (stack_.size() == 1 && key_ == "model" && slot.is_object()) model_ = &slot;
    return &slot;
  }
  bool value(json&& v) {
    if (mode_ == Mode::Vocab) throw bad_vocab_value();
    if (mode_ != Mode::Dom) throw bad_merge();
    add(std::move(v));
    return true;
  }
  InvalidInput bad_vocab_value() const {
    return InvalidInput(fmt::format("model.vocab[\"{}\"] is not a token id (an integer in 0..2^31-1)", vocab_key_));
  }
  InvalidInput bad_merge() const {
    return InvalidInput(fmt::format("model.merges[{}] is malformed: expected \"left right\" or [\"left\", \"right\"]",
                                    result.merges.size()));
  }

  BpeModel& bpe_;
  Mode mode_ = Mode::Dom;
  std::vector<json*> stack_;
  json* model_ = nullptr;
  std::string key_;
  std::string vocab_key_;
  std::vector<std::string> pair_;
};

}  // namespace

TokenizerJson parse_tokenizer_json(std::string_view text, BpeModel& bpe) {
  Handler handler(bpe);
  json::sax_parse(text.begin(), text.end(), &handler);
  return std::move(handler.result);
}

}  // namespace oe::text
