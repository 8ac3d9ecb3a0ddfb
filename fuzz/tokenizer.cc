// Fuzz target: a Hugging Face tokenizer.json through text::Tokenizer::from_file (the SAX pass of tokenizer_json.cc
// that streams the vocabulary and collects the merges, then the model, added tokens and pipeline checks). A
// tokenizer that loads then encodes a fixed text with special tokens, several scripts and digits, and the input
// itself as text, decodes the ids back, and maps a range of ids and tokens both ways.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "text/tokenizer.h"

namespace {

constexpr const char* SAMPLE =
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nquery: Héllo wörld! "
    "1234 don't   \t\r\n ÅΣж 漢字 🙂 ab<|x|>abc<|im_end|>\n";

void exercise(const oe::text::Tokenizer& tok, std::string_view input) {
  std::vector<int32_t> ids = tok.encode(SAMPLE);
  (void)tok.decode(ids);
  (void)tok.decode(ids, /*skip_special=*/true);
  oe::fuzz::expect_clean([&] {  // InvalidInput when the input is not UTF-8
    const std::vector<int32_t> more = tok.encode(input);
    ids.insert(ids.end(), more.begin(), more.end());
  });
  const int64_t n = tok.vocab_size();
  for (int64_t id = -2; id < std::min<int64_t>(n + 2, 600); ++id) {
    const std::string token = tok.id_to_token(static_cast<int32_t>(id));
    if (!token.empty()) (void)tok.token_to_id(token);
    ids.push_back(static_cast<int32_t>(id));
  }
  (void)tok.decode(ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = oe::fuzz::write_input("tokenizer.json", data, size);
  oe::fuzz::expect_clean([&] { exercise(oe::text::Tokenizer::from_file(path), oe::fuzz::as_text(data, size)); },
                         path.string());
  return 0;
}
