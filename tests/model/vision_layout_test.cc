// Window layout of the vision tower and TMRoPE position ids, against cases worked out by hand from the spec
// (qwen25-omni-thinker.md §4.4, §8.2 and the worked examples of §8.5).
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/rope_index.h"
#include "model/vision_encoder.h"

namespace oe::model {
namespace {

// Merged grid 5 × 7 (not a multiple of the 4 × 4 window): windows rows {0..3, 4} × cols {0..3, 4..6}, sizes 16, 12,
// 4 and 3 merged tokens, enumerated row-major, tokens row-major inside each window.
TEST(VisionLayout, PartialEdgeWindows) {
  const VisionLayout L = vision_layout({{1, 10, 14}}, 2, 4);
  EXPECT_EQ(L.cu_window, (std::vector<int64_t>{0, 64, 112, 128, 140}));
  EXPECT_EQ(L.cu_full, (std::vector<int64_t>{0, 140}));
  ASSERT_EQ(L.order.size(), 35u);
  // First window: rows 0..3, cols 0..3 of the 7-wide merged grid.
  EXPECT_EQ((std::vector<int64_t>(L.order.begin(), L.order.begin() + 6)), (std::vector<int64_t>{0, 1, 2, 3, 7, 8}));
  // Second window starts at (0, 4): 4, 5, 6, then (1, 4) = 11.
  EXPECT_EQ((std::vector<int64_t>(L.order.begin() + 16, L.order.begin() + 20)),
            (std::vector<int64_t>{4, 5, 6, 11}));
  // Last two windows are the bottom row: (4, 0..3) then (4, 4..6).
  EXPECT_EQ((std::vector<int64_t>(L.order.begin() + 28, L.order.end())),
            (std::vector<int64_t>{28, 29, 30, 31, 32, 33, 34}));
  // Each merged token's 4 patches carry their own row and column: token (1, 0) -> patches (2..3, 0..1).
  const size_t k = 4;  // window slot of merged token 7 = (1, 0)
  EXPECT_EQ(L.order[k], 7);
  EXPECT_EQ((std::vector<int64_t>(L.patch_row.begin() + 4 * k, L.patch_row.begin() + 4 * k + 4)),
            (std::vector<int64_t>{2, 2, 3, 3}));
  EXPECT_EQ((std::vector<int64_t>(L.patch_col.begin() + 4 * k, L.patch_col.begin() + 4 * k + 4)),
            (std::vector<int64_t>{0, 1, 0, 1}));
}

// A merged grid that is an exact multiple of the window: the reference's padding adds an empty window row and
// column, which its de-duplication removes, so exactly 2 × 2 full windows remain.
TEST(VisionLayout, ExactMultipleHasNoEmptyWindows) {
  const VisionLayout L = vision_layout({{1, 16, 16}}, 2, 4);
  EXPECT_EQ(L.cu_window, (std::vector<int64_t>{0, 64, 128, 192, 256}));
}

// Two images, the second with two temporal slices: full-attention segments per (image, slice), windows never cross
// them, and merged indices continue across images.
TEST(VisionLayout, SegmentsPerImageAndSlice) {
  const VisionLayout L = vision_layout({{1, 4, 4}, {2, 2, 4}}, 2, 4);
  EXPECT_EQ(L.cu_full, (std::vector<int64_t>{0, 16, 24, 32}));
  EXPECT_EQ(L.cu_window, (std::vector<int64_t>{0, 16, 24, 32}));
  EXPECT_EQ(L.order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(VisionLayout, RejectsBadGrids) {
  EXPECT_THROW(vision_layout({{1, 5, 4}}, 2, 4), InvalidInput);
  EXPECT_THROW(vision_layout({{0, 4, 4}}, 2, 4), InvalidInput);
}

TokenIds omni_ids() {
  TokenIds t;
  t.image = 151655;
  t.video = 151656;
  t.audio = 151646;
  t.vision_start = 151652;
  t.vision_end = 151653;
  t.audio_start = 151647;
  t.audio_end = 151648;
  t.position_id_per_seconds = 25;
  t.seconds_per_chunk = 2;
  return t;
}

std::vector<int64_t> row(const std::vector<int64_t>& pos, int64_t r) {
  const size_t n = pos.size() / 3;
  return std::vector<int64_t>(pos.begin() + static_cast<std::ptrdiff_t>(r * n),
                              pos.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
}

// Spec §8.5: n0 text tokens, <|vision_bos|>, 256 image tokens (16 × 16 merged), <|vision_eos|>, r more tokens.
TEST(TmropePositions, WorkedImageExample) {
  const TokenIds t = omni_ids();
  const int64_t n0 = 3, r = 2;
  std::vector<int64_t> ids = {10, 11, 12, t.vision_start};
  ids.insert(ids.end(), 256, t.image);
  ids.insert(ids.end(), {t.vision_end, 13, 14});
  RopeMedia media;
  media.images = {{1, 32, 32}};
  const auto pos = tmrope_position_ids(ids, t, 2, media);
  const auto T = row(pos, 0), H = row(pos, 1), W = row(pos, 2);
  for (int64_t i = 0; i < n0; ++i) EXPECT_EQ(T[i], i);
  EXPECT_EQ(T[n0], n0);  // bos
  for (int64_t y = 0; y < 16; ++y)
    for (int64_t x = 0; x < 16; ++x) {
      const size_t i = static_cast<size_t>(n0 + 1 + y * 16 + x);
      EXPECT_EQ(T[i], n0 + 1);
      EXPECT_EQ(H[i], n0 + 1 + y);
      EXPECT_EQ(W[i], n0 + 1 + x);
    }
  const size_t eos = static_cast<size_t>(n0 + 1 + 256);
  EXPECT_EQ(T[eos], n0 + 17);
  EXPECT_EQ(H[eos], n0 + 17);
  for (int64_t k = 1; k <= r; ++k) EXPECT_EQ(W[eos + k], n0 + 17 + k);
  // delta = max + 1 - S = -240, as in the spec.
  EXPECT_EQ(*std::max_element(pos.begin(), pos.end()) + 1 - static_cast<int64_t>(ids.size()), -240);
}

// A video without interleaved audio (grid t = 4, 2 × 2 merged): T steps by ⌊ti·spg·25⌋ in fp32; the next token
// continues after the largest of the T, H and W offsets.
TEST(TmropePositions, VideoTemporalSteps) {
  const TokenIds t = omni_ids();
  std::vector<int64_t> ids = {t.vision_start};
  ids.insert(ids.end(), 16, t.video);
  ids.push_back(t.vision_end);
  for (float spg : {1.0f, 0.5f}) {
    RopeMedia media;
    media.videos = {{4, 4, 4}};
    media.video_second_per_grid = {spg};
    const auto pos = tmrope_position_ids(ids, t, 2, media);
    const auto T = row(pos, 0), H = row(pos, 1);
    const std::vector<int64_t> steps = spg == 1.0f ? std::vector<int64_t>{0, 25, 50, 75}
                                                   : std::vector<int64_t>{0, 12, 25, 37};
    for (int64_t ti = 0; ti < 4; ++ti)
      for (int64_t k = 0; k < 4; ++k) {
        EXPECT_EQ(T[static_cast<size_t>(1 + ti * 4 + k)], 1 + steps[static_cast<size_t>(ti)]);
        EXPECT_EQ(H[static_cast<size_t>(1 + ti * 4 + k)], 1 + k / 2);
      }
    EXPECT_EQ(T.back(), 1 + steps.back() + 1);
  }
}

// Spec §8.6: a 4 s clip, grid (4, 4, 4) (2 × 2 merged), 100 audio tokens, interleaved in 2-second chunks:
// bos bos | 8 V | 50 A | 8 V | 50 A | eos eos, with b = 2 after two text tokens.
TEST(TmropePositions, WorkedInterleavedExample) {
  const TokenIds t = omni_ids();
  const GridTHW g{4, 4, 4};
  const auto runs = interleaved_runs(g, 1.0f, 100, 2, t);
  ASSERT_EQ(runs.size(), 4u);
  const std::vector<std::pair<bool, int64_t>> want = {{true, 8}, {false, 50}, {true, 8}, {false, 50}};
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].video, want[i].first) << i;
    EXPECT_EQ(runs[i].count, want[i].second) << i;
  }
  std::vector<int64_t> ids = {7, 8, t.vision_start, t.audio_start};
  for (const auto& r : runs) ids.insert(ids.end(), static_cast<size_t>(r.count), r.video ? t.video : t.audio);
  ids.insert(ids.end(), {t.audio_end, t.vision_end, 9});
  RopeMedia media;
  media.videos = {g};
  media.video_second_per_grid = {1.0f};
  media.video_audio_tokens = {100};
  const auto pos = tmrope_position_ids(ids, t, 2, media);
  const auto T = row(pos, 0), H = row(pos, 1), W = row(pos, 2);
  const int64_t b = 2;
  for (size_t i : {2u, 3u}) EXPECT_EQ(T[i], b);
  const std::vector<int64_t> t0 = {0, 0, 0, 0, 25, 25, 25, 25}, hy = {0, 0, 1, 1, 0, 0, 1, 1},
                             wx = {0, 1, 0, 1, 0, 1, 0, 1};
  for (size_t k = 0; k < 8; ++k) {
    EXPECT_EQ(T[4 + k], b + 1 + t0[k]);                  // video chunk 0
    EXPECT_EQ(H[4 + k], b + 1 + hy[k]);
    EXPECT_EQ(W[4 + k], b + 1 + wx[k]);
    EXPECT_EQ(T[62 + k], b + 1 + t0[k] + 50);            // video chunk 1
    EXPECT_EQ(W[62 + k], b + 1 + wx[k]);
  }
  for (int64_t a = 0; a < 50; ++a) {
    EXPECT_EQ(T[static_cast<size_t>(12 + a)], b + 1 + a);  // audio chunk 0
    EXPECT_EQ(H[static_cast<size_t>(70 + a)], b + 1 + 50 + a);  // audio chunk 1
  }
  EXPECT_EQ(T[120], b + 101);  // both eos tokens
  EXPECT_EQ(W[121], b + 101);
  EXPECT_EQ(T[122], b + 102);  // the text after them
  // get_chunked_index makes at most one boundary per element, even over a jump of several chunk widths: 120 passes
  // 50 and 100 but opens one chunk; 130 then passes the next threshold (100) and opens another.
  EXPECT_EQ(chunked_index({0, 10, 120, 130}, 50),
            (std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 3}, {3, 4}}));
  // A run of the wrong kind is refused.
  std::vector<int64_t> bad = ids;
  bad[4] = t.audio;
  EXPECT_THROW(tmrope_position_ids(bad, t, 2, media), InvalidInput);
}

TEST(TmropePositions, TextOnlyIsSequential) {
  const auto pos = tmrope_position_ids({5, 6, 7}, omni_ids(), 2, {});
  EXPECT_EQ(pos, (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2}));
}

TEST(TmropePositions, MismatchedPlaceholdersAreInvalidInput) {
  const TokenIds t = omni_ids();
  RopeMedia one;
  one.images = {{1, 4, 4}};  // 4 merged tokens
  std::vector<int64_t> three = {t.vision_start, t.image, t.image, t.image, t.vision_end};
  EXPECT_THROW(tmrope_position_ids(three, t, 2, one), InvalidInput);
  std::vector<int64_t> none = {1, 2, 3};
  EXPECT_THROW(tmrope_position_ids(none, t, 2, one), InvalidInput);  // image left over
  std::vector<int64_t> four = {t.vision_start, t.image, t.image, t.image, t.image, t.vision_end};
  EXPECT_THROW(tmrope_position_ids(four, t, 2, {}), InvalidInput);  // placeholder without an image
  EXPECT_NO_THROW(tmrope_position_ids(four, t, 2, one));
}

}  // namespace
}  // namespace oe::model
