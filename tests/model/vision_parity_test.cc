// Image documents and queries against the independent numpy reference (tools/reference/text_embed.py, which runs
// its own vision tower, TMRoPE positions and merge when the dump has pixel_values.npy) on the tiny checkpoint:
// positions, vision tower states per block, merged rows, and final vectors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "model/embedder.h"
#include "parity_util.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;
using testing::npy_floats;
using testing::npy_ints;
using testing::relative_max_error;
using testing::run_reference;

media::RgbImage noise_image(int64_t width, int64_t height, uint32_t seed) {
  media::RgbImage im;
  im.width = width;
  im.height = height;
  im.pixels.resize(static_cast<size_t>(width * height * 3));
  std::mt19937 rng(seed);
  for (auto& p : im.pixels) p = static_cast<uint8_t>(rng() & 0xff);
  return im;
}

struct Case {
  const char* name;
  text::Role role;
  std::string text;
  std::vector<std::pair<int64_t, int64_t>> image_sizes;  // (width, height), already multiples of 28
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class VisionParity : public ::testing::TestWithParam<Case> {};

struct EngineRun {
  PreparedInput input;
  Embedding embedding;
  std::vector<float> vision_rows;
  std::vector<std::vector<float>> vision_states;  // after the patch embedding, then after each block
};

EngineRun run_engine(const fs::path& model, kernels::Compute compute, const Case& c) {
  LoadOptions lo;
  lo.compute = compute;
  auto m = Model::load(model, lo);
  EmbedOptions eo;
  Embedder e(m, eo);
  std::vector<media::RgbImage> images;
  uint32_t seed = 7;
  for (auto [w, h] : c.image_sizes) images.push_back(noise_image(w, h, seed++));
  EngineRun r;
  r.input = e.prepare(c.role, c.text, images);
  r.embedding = e.embed_prepared({r.input}, nullptr, {}, nullptr, &r.vision_rows).front();
  // The tower alone, observed per block.
  const auto& enc = m->vision_encoder();
  int64_t patches = 0;
  for (const auto& g : r.input.image_grids) patches += g.patches();
  std::vector<float> rows(static_cast<size_t>(patches / enc.merge_unit() * enc.config().out_d_model));
  enc.encode(r.input.pixel_values.data(), r.input.image_grids, rows.data(),
             [&](int64_t, const float* x, int64_t n) { r.vision_states.emplace_back(x, x + n * enc.config().d_model); });
  EXPECT_EQ(rows, r.vision_rows) << "the tower alone gives the rows merged into the sequence";
  return r;
}

TEST_P(VisionParity, MatchesReferenceInFp32) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  EngineRun r = run_engine(model, kernels::Compute::F32, c);
  testing::TempDir tmp;
  const fs::path ref = run_reference(model, r.input, tmp.path(), "fp32");

  // Positions: the reference computes its own from the ids and grids.
  EXPECT_EQ(npy_ints(ref / "position_ids.npy"), r.input.position_ids);

  // Vision tower: after the patch embedding and after every block, in processor order.
  const auto patch = npy_floats(ref / "vision_patch_embeds.npy");
  const auto blocks = npy_floats(ref / "vision_block_outputs.npy");
  ASSERT_FALSE(r.vision_states.empty());
  const size_t state = r.vision_states.front().size();
  ASSERT_EQ(blocks.size(), state * (r.vision_states.size() - 1));
  EXPECT_LT(relative_max_error(r.vision_states.front(), patch), 1e-5);
  for (size_t j = 1; j < r.vision_states.size(); ++j) {
    std::vector<float> want(blocks.begin() + static_cast<std::ptrdiff_t>((j - 1) * state),
                            blocks.begin() + static_cast<std::ptrdiff_t>(j * state));
    EXPECT_LT(relative_max_error(r.vision_states[j], want), 1e-5) << "after vision block " << j - 1;
  }
  const auto merged = npy_floats(ref / "vision_embeds.npy");
  ASSERT_EQ(merged.size(), r.vision_rows.size());
  EXPECT_GE(testing::cosine(r.vision_rows, merged), 0.99999);
  EXPECT_LT(relative_max_error(r.vision_rows, merged), 1e-5);

  // The whole item.
  const auto want = npy_floats(ref / "embedding.npy");
  EXPECT_GE(testing::cosine(r.embedding.vector, want), 0.99999);
}

// BF16 against the reference's bf16 replay and against fp32.
TEST_P(VisionParity, Bf16CloseToFp32AndReference) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  EngineRun f32 = run_engine(model, kernels::Compute::F32, c);
  EngineRun b16 = run_engine(model, kernels::Compute::BF16, c);
  EXPECT_EQ(f32.input.position_ids, b16.input.position_ids);
  EXPECT_GE(testing::cosine(b16.vision_rows, f32.vision_rows), 0.999);
  EXPECT_GE(testing::cosine(b16.embedding.vector, f32.embedding.vector), 0.999);
  testing::TempDir tmp;
  const fs::path ref = run_reference(model, b16.input, tmp.path(), "bf16");
  EXPECT_GE(testing::cosine(b16.vision_rows, npy_floats(ref / "vision_embeds.npy")), 0.999);
  EXPECT_GE(testing::cosine(b16.embedding.vector, npy_floats(ref / "embedding.npy")), 0.999);
}

INSTANTIATE_TEST_SUITE_P(
    Images, VisionParity,
    ::testing::Values(
        // Merged grid 5 × 7: partial windows at the bottom and right edges.
        Case{"partial_windows", text::Role::Document, "a photo of a harbour", {{196, 140}}},
        // Two images in one document: an exact 4 × 4-window grid (8 × 8 merged) and a 3 × 6 one.
        Case{"two_images", text::Role::Document, "", {{224, 224}, {168, 84}}},
        // An image query at exactly min_pixels (56 × 56 = 3136), with text.
        Case{"query_image", text::Role::Query, "what is this?", {{56, 56}}}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// The merged rows depend only on each image: encoding two images together equals encoding each alone.
TEST(VisionEncoder, ImagesAreIndependent) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  EmbedOptions eo;
  Embedder e(m, eo);
  auto a = e.prepare(text::Role::Document, "", {noise_image(112, 84, 1)});
  auto b = e.prepare(text::Role::Document, "", {noise_image(140, 56, 2)});
  auto ab = e.prepare(text::Role::Document, "", {noise_image(112, 84, 1), noise_image(140, 56, 2)});
  const auto& enc = m->vision_encoder();
  auto encode = [&](const PreparedInput& p) {
    int64_t patches = 0;
    for (const auto& g : p.image_grids) patches += g.patches();
    std::vector<float> rows(static_cast<size_t>(patches / 4 * enc.config().out_d_model));
    enc.encode(p.pixel_values.data(), p.image_grids, rows.data());
    return rows;
  };
  auto ra = encode(a), rb = encode(b), rab = encode(ab);
  ra.insert(ra.end(), rb.begin(), rb.end());
  ASSERT_EQ(ra.size(), rab.size());
  EXPECT_LT(relative_max_error(rab, ra), 1e-6);
}

// An image document packed with text items in one pass equals each embedded alone.
TEST(VisionEmbedder, PackedBatchEqualsOneByOne) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  EmbedOptions eo;
  Embedder e(m, eo);
  std::vector<PreparedInput> items = {e.prepare({text::Role::Query, "first query", {}}),
                                      e.prepare(text::Role::Document, "caption", {noise_image(84, 112, 3)}),
                                      e.prepare({text::Role::Document, "plain text document", {}})};
  auto batch = e.embed_prepared(items);
  for (size_t i = 0; i < items.size(); ++i) {
    auto alone = e.embed_prepared({items[i]}).front();
    EXPECT_GE(testing::cosine(batch[i].vector, alone.vector), 0.9999999) << "item " << i;
  }
}

TEST(VisionEmbedder, PromptLayoutAndLimits) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  EmbedOptions eo;
  Embedder e(m, eo);
  const auto& t = m->config().tokens;
  // Text first, then <|vision_bos|> <|IMAGE|> × (h·w/4) <|vision_eos|>, then the closing tokens.
  auto p = e.prepare(text::Role::Document, "hi", {noise_image(56, 84, 4)});  // grid 6 × 4 -> 6 image tokens
  auto text_only = e.prepare({text::Role::Document, "hi", {}});
  const size_t head = text_only.input_ids.size() - 2;  // without "<|im_end|>\n"
  ASSERT_EQ(p.input_ids.size(), text_only.input_ids.size() + 8);
  EXPECT_TRUE(std::equal(text_only.input_ids.begin(), text_only.input_ids.begin() + head, p.input_ids.begin()));
  EXPECT_EQ(p.input_ids[head], t.vision_start);
  for (size_t i = 1; i <= 6; ++i) EXPECT_EQ(p.input_ids[head + i], t.image);
  EXPECT_EQ(p.input_ids[head + 7], t.vision_end);
  EXPECT_EQ(p.image_grids.size(), 1u);
  EXPECT_EQ(p.image_grids[0].h, 6);
  EXPECT_EQ(p.image_grids[0].w, 4);
  EXPECT_FALSE(p.truncated);

  // A token limit too small for the image is a clear error; a long text is cut before the image.
  EmbedOptions small = eo;
  small.max_tokens = 20;
  Embedder es(m, small);
  EXPECT_THROW(es.prepare(text::Role::Document, "", {noise_image(280, 280, 5)}), InvalidInput);  // 100 image tokens
  small.max_tokens = 40;
  Embedder cut(m, small);
  std::string long_text;
  for (int i = 0; i < 50; ++i) long_text += " word";
  auto q = cut.prepare(text::Role::Document, long_text, {noise_image(56, 56, 6)});
  EXPECT_TRUE(q.truncated);
  EXPECT_EQ(q.n_tokens(), 40);
  EXPECT_EQ(q.input_ids[q.input_ids.size() - 3], t.vision_end);

  // The placeholder tokens are reserved for media.
  EXPECT_THROW(e.prepare({text::Role::Document, "see <|IMAGE|> here", {}}), InvalidInput);
  // An image query needs no text; an empty query with no image is an error.
  EXPECT_NO_THROW(e.prepare(text::Role::Query, "", {noise_image(56, 56, 7)}));
  EXPECT_THROW(e.prepare({text::Role::Query, "", {}}), InvalidInput);
}

}  // namespace
}  // namespace oe::model
