// Audio documents and queries against the independent numpy reference (tools/reference/text_embed.py, which runs its
// own audio tower and merge when the dump has input_features.npy) on the tiny checkpoint: positions, the audio
// tower's states (conv stem + positions, after each layer), its output rows, and the final vectors. The clips cover
// one chunk, many chunks, a last chunk of one mel frame, an odd number of encoder frames, silence and speech.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
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

// Test signals at 16 kHz.
enum class Signal { Sine, Chirp, Silence, Noise };

AudioClip clip(Signal s, int64_t n, uint32_t seed = 1) {
  AudioClip c;
  c.name = fmt::format("clip-{}", n);
  c.samples.resize(static_cast<size_t>(n));
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 16000.0;
    float v = 0;
    switch (s) {
      case Signal::Sine: v = static_cast<float>(0.5 * std::sin(2 * M_PI * 440.0 * t)); break;
      case Signal::Chirp: v = static_cast<float>(0.4 * std::sin(2 * M_PI * (100.0 + 150.0 * t) * t)) + noise(rng); break;
      case Signal::Silence: v = 0; break;
      case Signal::Noise: v = noise(rng); break;
    }
    c.samples[static_cast<size_t>(i)] = v;
  }
  return c;
}

struct Case {
  const char* name;
  text::Role role;
  std::string text;
  std::vector<std::pair<Signal, int64_t>> clips;  // (signal, samples)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

struct EngineRun {
  PreparedInput input;
  Embedding embedding;
  std::vector<float> audio_rows;
  std::vector<std::vector<float>> audio_states;  // layer input, then after each layer
};

EmbedOptions options_for(const Model& m) {
  EmbedOptions eo;
  return eo;
}

EngineRun run_engine(const fs::path& model, kernels::Compute compute, const Case& c) {
  LoadOptions lo;
  lo.compute = compute;
  auto m = Model::load(model, lo);
  Embedder e(m, options_for(*m));
  std::vector<AudioClip> clips;
  uint32_t seed = 3;
  for (auto [s, n] : c.clips) clips.push_back(clip(s, n, seed++));
  EngineRun r;
  r.input = e.prepare(c.role, c.text, {}, clips);
  r.embedding = e.embed_prepared({r.input}, nullptr, {}, nullptr, nullptr, &r.audio_rows).front();
  // The tower alone, observed per layer.
  const auto& enc = m->audio_encoder();
  std::vector<AudioFeaturesView> views;
  for (const auto& f : r.input.audio_features) views.push_back({f.values.data(), f.n_frames, f.valid_frames});
  std::vector<float> rows(r.audio_rows.size());
  enc.encode(views, rows.data(), [&](int64_t, const float* x, int64_t n) {
    r.audio_states.emplace_back(x, x + n * enc.config().d_model);
  });
  EXPECT_EQ(rows, r.audio_rows) << "the tower alone gives the rows merged into the sequence";
  return r;
}

class AudioParity : public ::testing::TestWithParam<Case> {};

TEST_P(AudioParity, MatchesReferenceInFp32) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  EngineRun r = run_engine(model, kernels::Compute::F32, c);
  testing::TempDir tmp;
  const fs::path ref = run_reference(model, r.input, tmp.path(), "fp32");

  EXPECT_EQ(npy_ints(ref / "position_ids.npy"), r.input.position_ids);
  ASSERT_GE(r.audio_states.size(), 2u);
  EXPECT_LT(relative_max_error(r.audio_states.front(), npy_floats(ref / "audio_layer_input.npy")), 1e-5);
  const auto layers = npy_floats(ref / "audio_layer_outputs.npy");
  const size_t state = r.audio_states.front().size();
  ASSERT_EQ(layers.size(), state * (r.audio_states.size() - 1));
  for (size_t j = 1; j < r.audio_states.size(); ++j) {
    std::vector<float> want(layers.begin() + static_cast<std::ptrdiff_t>((j - 1) * state),
                            layers.begin() + static_cast<std::ptrdiff_t>(j * state));
    EXPECT_LT(relative_max_error(r.audio_states[j], want), 1e-5) << "after audio layer " << j - 1;
  }
  const auto rows = npy_floats(ref / "audio_embeds.npy");
  ASSERT_EQ(rows.size(), r.audio_rows.size());
  EXPECT_GE(testing::cosine(r.audio_rows, rows), 0.99999);
  EXPECT_LT(relative_max_error(r.audio_rows, rows), 1e-5);
  EXPECT_GE(testing::cosine(r.embedding.vector, npy_floats(ref / "embedding.npy")), 0.99999);
}

TEST_P(AudioParity, Bf16CloseToFp32AndReference) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  EngineRun f32 = run_engine(model, kernels::Compute::F32, c);
  EngineRun b16 = run_engine(model, kernels::Compute::BF16, c);
  EXPECT_GE(testing::cosine(b16.audio_rows, f32.audio_rows), 0.999);
  EXPECT_GE(testing::cosine(b16.embedding.vector, f32.embedding.vector), 0.999);
  testing::TempDir tmp;
  const fs::path ref = run_reference(model, b16.input, tmp.path(), "bf16");
  EXPECT_GE(testing::cosine(b16.audio_rows, npy_floats(ref / "audio_embeds.npy")), 0.999);
  EXPECT_GE(testing::cosine(b16.embedding.vector, npy_floats(ref / "embedding.npy")), 0.999);
}

INSTANTIATE_TEST_SUITE_P(
    Clips, AudioParity,
    ::testing::Values(
        // 1 s: 100 mel frames, one chunk, 50 encoder frames, 25 tokens.
        Case{"one_second_sine", text::Role::Document, "", {{Signal::Sine, 16000}}},
        // 201 frames: a last chunk of a single mel frame, 101 encoder frames (odd: the last is dropped by pooling).
        Case{"last_chunk_one_frame", text::Role::Document, "a tone", {{Signal::Chirp, 32100}}},
        // 205 frames: a last chunk of 5 frames, 103 encoder frames.
        Case{"odd_encoder_frames", text::Role::Query, "", {{Signal::Noise, 32700}}},
        // 0.3 s: a clip shorter than one chunk.
        Case{"short_clip", text::Role::Query, "what is this sound?", {{Signal::Sine, 4800}}},
        Case{"silence", text::Role::Document, "", {{Signal::Silence, 24000}}},
        // 35 s: 18 chunks; and two clips in one document.
        Case{"thirty_five_seconds", text::Role::Document, "lecture", {{Signal::Chirp, 560000}}},
        Case{"two_clips", text::Role::Document, "", {{Signal::Sine, 8000}, {Signal::Noise, 20000}}}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Text, the audio block, then the closing tokens; 321 samples is the shortest clip with a token, 320 is refused.
TEST(AudioEmbedder, PromptLayoutAndLimits) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  Embedder e(m, options_for(*m));
  const auto& t = m->config().tokens;
  auto p = e.prepare(text::Role::Document, "hi", {}, {clip(Signal::Sine, 16000)});
  auto text_only = e.prepare({text::Role::Document, "hi", {}, {}});
  const size_t head = text_only.input_ids.size() - 2;  // without "<|im_end|>\n"
  ASSERT_EQ(p.input_ids.size(), text_only.input_ids.size() + 27);
  EXPECT_TRUE(std::equal(text_only.input_ids.begin(), text_only.input_ids.begin() + head, p.input_ids.begin()));
  EXPECT_EQ(p.input_ids[head], t.audio_start);
  for (size_t i = 1; i <= 25; ++i) EXPECT_EQ(p.input_ids[head + i], t.audio);
  EXPECT_EQ(p.input_ids[head + 26], t.audio_end);
  EXPECT_EQ(p.position_ids, text_position_ids(p.n_tokens())) << "audio tokens take consecutive positions";
  ASSERT_EQ(p.audio_features.size(), 1u);
  EXPECT_EQ(p.audio_features[0].valid_frames, 100);
  EXPECT_EQ(p.audio_features[0].n_frames, 12800) << "the model card's clip length, 2,048,000 samples";

  try {
    e.prepare(text::Role::Query, "", {}, {clip(Signal::Sine, 320)});
    FAIL();
  } catch (const InvalidInput& err) {
    EXPECT_NE(std::string(err.what()).find("too short"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("clip-320"), std::string::npos) << err.what();
  }
  auto shortest = e.prepare(text::Role::Query, "", {}, {clip(Signal::Sine, 321)});
  EXPECT_EQ(std::count(shortest.input_ids.begin(), shortest.input_ids.end(), t.audio), 1);
  EXPECT_THROW(e.prepare(text::Role::Query, "", {}, {clip(Signal::Sine, 0)}), InvalidInput);

  // A clip longer than the clip length is cut to it and flagged.
  EmbedOptions shorter = options_for(*m);
  shorter.audio_max_seconds = 2.0;  // 32,000 samples
  Embedder es(m, shorter);
  auto cut = es.prepare(text::Role::Document, "", {}, {clip(Signal::Sine, 48000)});
  EXPECT_TRUE(cut.audio_truncated);
  EXPECT_EQ(cut.audio_features[0].valid_frames, 200);
  EXPECT_EQ(es.embed_prepared({cut}).front().truncated, true);
  EXPECT_THROW(e.prepare({text::Role::Document, "see <|AUDIO|> here", {}, {}}), InvalidInput);
}

// Audio items packed with text and image items in one pass equal each embedded alone, and the tower's rows of two
// clips encoded together equal each encoded alone (chunks never see each other).
TEST(AudioEmbedder, PackedBatchEqualsOneByOneAndClipsAreIndependent) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  Embedder e(m, options_for(*m));
  std::vector<PreparedInput> items = {e.prepare({text::Role::Query, "first query", {}, {}}),
                                      e.prepare(text::Role::Document, "speech", {}, {clip(Signal::Chirp, 40000)}),
                                      e.prepare(text::Role::Query, "", {}, {clip(Signal::Noise, 9000)})};
  auto batch = e.embed_prepared(items);
  for (size_t i = 0; i < items.size(); ++i)
    EXPECT_GE(testing::cosine(batch[i].vector, e.embed_prepared({items[i]}).front().vector), 0.9999999) << i;

  const auto& enc = m->audio_encoder();
  auto rows_of = [&](const std::vector<const media::LogMel*>& feats) {
    std::vector<AudioFeaturesView> v;
    int64_t n = 0;
    for (auto* f : feats) {
      v.push_back({f->values.data(), f->n_frames, f->valid_frames});
      n += media::audio_token_count(f->valid_frames);
    }
    std::vector<float> out(static_cast<size_t>(n * enc.config().out_d_model));
    enc.encode(v, out.data());
    return out;
  };
  const auto& fa = items[1].audio_features[0];
  const auto& fb = items[2].audio_features[0];
  auto ra = rows_of({&fa}), rb = rows_of({&fb}), rab = rows_of({&fa, &fb});
  ra.insert(ra.end(), rb.begin(), rb.end());
  EXPECT_LT(relative_max_error(rab, ra), 1e-6);
}

}  // namespace
}  // namespace oe::model
