// Splitting long texts into token windows for the index: windows cover the text, overlap as asked, respect the
// token budget, and cut only between words (so every window is valid UTF-8).
#include <gtest/gtest.h>

#include "ingest/segments.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace oe::ingest {
namespace {

const text::Tokenizer& tokenizer() {
  static const text::Tokenizer t = text::Tokenizer::from_file(testing::test_model("tiny-f32") / "tokenizer.json");
  return t;
}

std::string long_text() {
  std::string s;
  const char* words[] = {"naïve", "café", "日本語の文章", "tokens", "  spaced", "\nnew-line", "x=42;", "émigré"};
  for (int i = 0; i < 900; ++i) s += std::string(i ? " " : "") + words[(i * 7) % 8] + std::to_string(i % 13);
  return s;
}

int64_t tokens(const std::string& s) { return static_cast<int64_t>(tokenizer().encode(s).size()); }

TEST(TextWindows, ShortTextIsOneWindow) {
  const std::string t = "A short passage.";
  const auto w = text_windows(tokenizer(), t, 512, 64);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, t.size());
  EXPECT_EQ(text_windows(tokenizer(), long_text(), 0, 0).size(), 1u);  // 0: no splitting
}

TEST(TextWindows, CoverTheTextWithinTheBudgetAndOverlap) {
  const std::string t = long_text();
  for (auto [window, overlap] : {std::pair<int64_t, int64_t>{64, 16}, {100, 0}, {37, 36}}) {
    const auto w = text_windows(tokenizer(), t, window, overlap);
    ASSERT_GT(w.size(), 3u);
    EXPECT_EQ(w.front().begin, 0u);
    EXPECT_EQ(w.back().end, t.size());
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string piece = t.substr(w[i].begin, w[i].end - w[i].begin);
      // Word-boundary cuts: each window is valid UTF-8 and its own encoding stays within the budget (a word's
      // tokens alone may differ by one from its tokens in context, hence the slack).
      EXPECT_LE(tokens(piece), window + 2) << "window " << i;
      if (i == 0) continue;
      EXPECT_GT(w[i].begin, w[i - 1].begin);  // progress
      EXPECT_LE(w[i].begin, w[i - 1].end);    // no gap
      if (w[i].begin < w[i - 1].end) {
        const std::string shared = t.substr(w[i].begin, w[i - 1].end - w[i].begin);
        EXPECT_LE(tokens(shared), overlap + 2) << "window " << i;
      } else {
        EXPECT_EQ(overlap == 0 || w[i].begin == w[i - 1].end, true);
      }
    }
  }
}

TEST(TextWindows, AWordLongerThanTheWindowStandsAlone) {
  const std::string giant(3000, 'q');
  const std::string t = "before " + giant + " after";
  const auto w = text_windows(tokenizer(), t, 32, 4);
  bool alone = false;
  for (const auto& x : w) alone |= t.substr(x.begin, x.end - x.begin) == " " + giant;
  EXPECT_TRUE(alone);
  EXPECT_EQ(w.back().end, t.size());
}

}  // namespace
}  // namespace oe::ingest
