// The Qwen2 pre-tokenizer (spec qwen25-omni-thinker.md §9), hand-coded instead of run through a regex engine:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with the semantics of a backtracking engine (Oniguruma, as Hugging Face tokenizers runs it): at each position the
// first alternative that matches wins, and each alternative backtracks as the regex would.
#pragma once

#include <string_view>
#include <vector>

namespace oe::text {

// The exact pattern string this matcher implements, as it appears in tokenizer.json.
extern const std::string_view QWEN2_PRETOKENIZE_PATTERN;

// Splits one well-formed UTF-8 segment (already NFC) into pre-tokens, appended to `out` as views into `text`.
// The pieces cover `text` exactly, in order.
void pretokenize_qwen2(std::string_view text, std::vector<std::string_view>& out);

}  // namespace oe::text
