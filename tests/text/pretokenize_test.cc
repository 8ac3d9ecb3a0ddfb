// The hand-coded Qwen2 pre-tokenizer against splits worked out from the regex (spec qwen25-omni-thinker.md §9):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// The whole table (including the U+0085, U+FEFF and long-s rows, where JavaScript's regex differs) was also
// confirmed once against Python's `regex` module, which the slow HF Qwen2Tokenizer runs with the same pattern.
#include "text/pretokenize.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/text_test_util.h"

namespace oe::text {
namespace {

using oe::text::testing::escaped;

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string_view> pieces;
  pretokenize_qwen2(text, pieces);
  return {pieces.begin(), pieces.end()};
}

struct Case {
  std::string text;
  std::vector<std::string> pieces;
};

TEST(Pretokenize, SplitsAsTheRegex) {
  const std::vector<Case> cases = {
      {"", {}},
      {"Hello world", {"Hello", " world"}},
      {"Hello, World!", {"Hello", ",", " World", "!"}},
      // whitespace runs: the run minus its last character, which then starts the next piece
      {"x  y", {"x", " ", " y"}},
      {"x \ty", {"x", " ", "\ty"}},  // a tab before a letter joins it through [^\r\n\p{L}\p{N}]?
      {"   start", {"  ", " start"}},
      {"end   ", {"end", "   "}},  // at the end the whole run stays together
      {"  1", {" ", " ", "1"}},    // a lone space before a digit is its own piece
      {"a  !!", {"a", " ", " !!"}},
      {"trailing \t ", {"trailing", " \t "}},
      // newlines: \s*[\r\n]+ ends after the last newline of the run
      {"a  \n", {"a", "  \n"}},
      {"a \n b", {"a", " \n", " b"}},
      {"\n\n  x", {"\n\n", " ", " x"}},
      {"x\r\n\r\ny", {"x", "\r\n\r\n", "y"}},
      {"x\n \n  ", {"x", "\n \n", "  "}},
      {"a\nb", {"a", "\n", "b"}},
      // punctuation runs take the newlines that follow them
      {"!!!\n\n", {"!!!\n\n"}},
      {"a!!\n\n b", {"a", "!!\n\n", " b"}},
      {" ...\r\n", {" ...\r\n"}},
      {"!abc", {"!abc"}},  // one non-letter may lead a letter run
      {"\u20AC100", {"\u20AC", "1", "0", "0"}},
      // digits one by one
      {"12345", {"1", "2", "3", "4", "5"}},
      {"v1.2", {"v", "1", ".", "2"}},
      // contractions, case-insensitive, first alternative wins
      {"it's", {"it", "'s"}},
      {"IT'S", {"IT", "'S"}},
      {"we'VE", {"we", "'VE"}},
      {"you'Re here", {"you", "'Re", " here"}},
      {"'sa", {"'s", "a"}},
      {"'x", {"'x"}},
      {"don't", {"don", "'t"}},
      {"y'all'll", {"y", "'all", "'ll"}},
      // Unicode: letters of any script, other white space, symbols
      {"\xE4\xB8\xAD\xE6\x96\x87 ok", {"\xE4\xB8\xAD\xE6\x96\x87", " ok"}},
      {"a\u3000b", {"a", "\u3000b"}},                  // U+3000 then a letter
      {"a\u00A0\u00A0b", {"a", "\u00A0", "\u00A0b"}},  // NBSP run
      {"\xF0\x9F\x98\x80\xF0\x9F\x98\x80 ok", {"\xF0\x9F\x98\x80\xF0\x9F\x98\x80", " ok"}},
      {"caf\xC3\xA9", {"caf\xC3\xA9"}},
      {"e\xCC\x81", {"e", "\xCC\x81"}},  // a combining mark is not \p{L}: split off (input should be NFC'd first)
      {"\xC2\xBD\xE2\x85\xAB", {"\xC2\xBD", "\xE2\x85\xAB"}},  // No and Nl are \p{N}: one piece each
      // Where JavaScript's regex differs from HF's engines (see tests/text/tokenizer_oracle.mjs):
      {"a \uFEFFb", {"a", " \uFEFF", "b"}},  // U+FEFF is not \s
      {"a \u0085b", {"a", " ", "\u0085b"}},  // U+0085 is \s
      {"a\u0085\u0085b", {"a", "\u0085", "\u0085b"}},
      {"it'\xC5\xBFx", {"it", "'\xC5\xBF", "x"}},  // U+017F folds to 's': (?i:'s) matches
  };
  for (const auto& c : cases) {
    EXPECT_EQ(split(c.text), c.pieces) << "text \"" << escaped(c.text) << "\"";
  }
}

TEST(Pretokenize, PiecesCoverTheText) {
  const std::string text = "Mixed \t\n text, 123 numbers\r\n\r\n  and 'quotes' \xE4\xB8\xAD\xF0\x9F\x98\x80  ";
  std::string joined;
  for (const auto& p : split(text)) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace oe::text
