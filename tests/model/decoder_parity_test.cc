// The text decoder and embedder against the independent numpy reference (tools/reference/text_embed.py) on the
// tiny random checkpoint: per-layer hidden states and the final vector.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "io/npy.h"
#include "model/embedder.h"
#include "test_util.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;

struct Captured {
  std::vector<std::vector<float>> layers;  // after each layer [S, d]
  std::vector<float> last_hidden;          // [S, d]
  Embedding embedding;
  PreparedInput input;
};

Captured run_engine(const fs::path& model_dir, kernels::Compute compute, AttentionMode mode, const std::string& text,
                    text::Role role) {
  LoadOptions lo;
  lo.compute = compute;
  auto m = Model::load(model_dir, lo);
  EmbedOptions eo;
  eo.attention = mode;
  Embedder e(m, eo);
  Captured c;
  c.input = e.prepare({role, text});
  const int64_t d = m->config().text.d_model;
  auto observer = [&](int64_t, const float* x, int64_t n) { c.layers.emplace_back(x, x + n * d); };
  c.embedding = e.embed_prepared({c.input}, &c.last_hidden, observer).front();
  return c;
}

fs::path run_reference(const fs::path& model_dir, const PreparedInput& p, const fs::path& work, const char* attention,
                       const char* precision) {
  write_prepared_input(work, p);
  fs::path out = work / "ref";
  std::string cmd = fmt::format("{} {}/tools/reference/text_embed.py --model {} --inputs {} --out {} --attention {} "
                                "--precision {}",
                                OE_PYTHON, OE_SOURCE_DIR, model_dir.string(), work.string(), out.string(), attention,
                                precision);
  std::string log;
  EXPECT_EQ(testing::run_command(cmd, &log), 0) << cmd << "\n" << log;
  return out;
}

// Largest |a - b| over the largest |b|: a scale-free error of a whole [S, d] state.
double relative_max_error(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

class DecoderParity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(DecoderParity, Fp32MatchesReferenceLayerByLayer) {
  const auto& [text, attention] = GetParam();
  testing::TempDir work;
  const fs::path model_dir = testing::test_model("tiny-f32");
  auto mode = attention == "causal" ? AttentionMode::Causal : AttentionMode::Bidirectional;
  Captured c = run_engine(model_dir, kernels::Compute::F32, mode, text, text::Role::Document);
  fs::path ref = run_reference(model_dir, c.input, work.path(), attention.c_str(), "fp32");

  Tensor layers = io::read_npy(ref / "layer_outputs.npy");  // [n_layers, S, d]
  ASSERT_EQ(layers.dim(0), static_cast<int64_t>(c.layers.size()));
  const size_t per_layer = static_cast<size_t>(layers.dim(1) * layers.dim(2));
  ASSERT_EQ(per_layer, c.layers[0].size());
  for (size_t il = 0; il < c.layers.size(); ++il) {
    // fp32 engine (fp32 accumulation in oneDNN) against a float64 reference: errors of a few fp32 ulps per op
    // growing through the layers; 1e-4 of the state's scale leaves a wide margin (observed: 4e-7 to 6e-7 on the tiny model).
    const double err = relative_max_error(c.layers[il].data(), layers.ptr<float>() + il * per_layer, per_layer);
    EXPECT_LT(err, 1e-4) << "layer " << il;
    std::printf("layer %zu: relative max error %.3g\n", il, err);
  }
  Tensor last = io::read_npy(ref / "last_hidden_state.npy");
  EXPECT_LT(relative_max_error(c.last_hidden.data(), last.ptr<float>(), c.last_hidden.size()), 1e-4);
  Tensor emb = io::read_npy(ref / "embedding.npy");
  std::vector<float> ref_vec(emb.ptr<float>(), emb.ptr<float>() + emb.numel());
  const double cos = testing::cosine(c.embedding.vector, ref_vec);
  EXPECT_GE(cos, 0.99999);
  std::printf("embedding cosine to the reference: 1 - %.3g\n", 1.0 - cos);
}

INSTANTIATE_TEST_SUITE_P(
    Texts, DecoderParity,
    ::testing::Values(std::make_tuple("A short passage about cats.", "bidirectional"),
                      std::make_tuple("", "bidirectional"),
                      std::make_tuple("Multilingual: 東京の天気は晴れ。 Ünïcödé, emoji 🙂 and digits 12345.", "bidirectional"),
                      std::make_tuple("The same text under causal attention, for comparison.", "causal")));

TEST(DecoderParity, Bf16EngineMatchesBf16ReferenceAndFp32) {
  testing::TempDir work;
  const fs::path model_dir = testing::test_model("tiny-bf16");
  const std::string text = "Drawing of a guitar with a long neck, in pencil on white paper.";
  Captured bf = run_engine(model_dir, kernels::Compute::BF16, AttentionMode::Bidirectional, text, text::Role::Query);
  Captured fp = run_engine(model_dir, kernels::Compute::F32, AttentionMode::Bidirectional, text, text::Role::Query);
  const double cos_bf_fp = testing::cosine(bf.embedding.vector, fp.embedding.vector);
  EXPECT_GE(cos_bf_fp, 0.999);
  fs::path ref = run_reference(model_dir, bf.input, work.path(), "bidirectional", "bf16");
  Tensor emb = io::read_npy(ref / "embedding.npy");
  std::vector<float> ref_vec(emb.ptr<float>(), emb.ptr<float>() + emb.numel());
  // Both emulate the reference's bf16 rounding points; summation order inside the matmuls differs, so a bf16
  // rounding can go the other way now and then: cosine, not equality.
  const double cos_ref = testing::cosine(bf.embedding.vector, ref_vec);
  EXPECT_GE(cos_ref, 0.9999);
  std::printf("bf16 vs fp32 engine: 1 - %.3g; bf16 engine vs bf16 reference: 1 - %.3g\n", 1.0 - cos_bf_fp,
              1.0 - cos_ref);
}

}  // namespace
}  // namespace oe::model
