// Fast reading of a Hugging Face tokenizer.json: a SAX pass (nlohmann) streams model.vocab into the BPE model and
// collects model.merges as string pairs, without building a DOM for those two large members (151k entries each for
// Qwen2); everything else (added_tokens, normalizer, pre_tokenizer, decoder, the other model fields) comes back as
// an ordinary DOM.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/bpe.h"

namespace oe::text {

struct TokenizerJson {
  nlohmann::json doc;  // the file without model.vocab and model.merges
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order; a "left right" entry is split here
};

// Parses `text`; vocab entries go to bpe.add_token as they are read. InvalidInput for malformed JSON (with the
// byte position), a vocab value that is not an id, or a merge entry that is neither "left right" nor
// ["left", "right"] (naming model.merges[i]).
TokenizerJson parse_tokenizer_json(std::string_view text, BpeModel& bpe);

}  // namespace oe::text
