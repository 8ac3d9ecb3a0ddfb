// Video documents against the independent numpy reference (tools/reference/text_embed.py, which runs its own vision
// tower on the video grids, its own audio tower and get_rope_index with use_audio_in_video) on the tiny checkpoint,
// in every single-vector fusion mode: separate (video block then audio block), interleaved (2-second chunks),
// video (frames only) and audio (sound only). The clips are generated with the ffmpeg CLI: sound as long as the
// frames, sound longer than the frames and frames longer than the sound.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/ffmpeg.h"
#include "common/temp_dir.h"
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

// A testsrc2 clip of `video_s` seconds at 25 fps (320×180) with `audio_s` seconds of a 440 Hz tone (0: no audio
// stream), written once per test binary run into a shared folder.
fs::path make_clip(double video_s, double audio_s) {
  static testing::TempDir dir;
  const fs::path out = dir.path() / fmt::format("clip-{}-{}.mkv", video_s, audio_s);
  if (fs::exists(out)) return out;
  std::string args = fmt::format("-f lavfi -i testsrc2=size=320x180:rate=25:duration={} ", video_s);
  if (audio_s > 0)
    args += fmt::format("-f lavfi -i sine=frequency=440:sample_rate=16000:duration={} -c:a pcm_s16le ", audio_s);
  testing::ffmpeg(args + "-c:v ffv1 " + testing::q(out));
  return out;
}

EmbedOptions options_for(const Model& m, Fusion fusion) {
  EmbedOptions eo;
  eo.fusion = fusion;
  // Small frames keep the test fast: 320×180 becomes 448×252 (qwen-omni-utils' minimum), then 140×84, 3×5 merged
  // tokens per temporal patch.
  eo.video.min_pixels = 3136;
  eo.video.max_pixels = 12544;
  return eo;
}

struct Case {
  const char* name;
  Fusion fusion;
  double video_s, audio_s;
  text::Role role;
  std::string text;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class VideoParity : public ::testing::TestWithParam<Case> {};

TEST_P(VideoParity, MatchesReferenceInFp32) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  auto m = Model::load(model, {kernels::Compute::F32, {}, false});
  Embedder e(m, options_for(*m, c.fusion));
  EmbedRequest req{c.role, c.text, {}, {}, {make_clip(c.video_s, c.audio_s)}};
  const PreparedInput p = e.prepare(req);
  std::vector<float> vision_rows, audio_rows;
  const Embedding emb = e.embed_prepared({p}, nullptr, {}, nullptr, &vision_rows, &audio_rows).front();

  const auto& t = m->config().tokens;
  const bool frames = c.fusion != Fusion::Audio, sound = c.fusion != Fusion::Video;
  EXPECT_EQ(!p.video_grids.empty(), frames);
  EXPECT_EQ(!p.audio_features.empty(), sound);
  EXPECT_EQ(p.use_audio_in_video, c.fusion == Fusion::Interleaved);
  const int64_t vid = std::count(p.input_ids.begin(), p.input_ids.end(), t.video);
  if (frames) {
    // fps 2: two frames per second, one temporal patch per second.
    EXPECT_EQ(p.video_grids[0].t, static_cast<int64_t>(c.video_s));
    EXPECT_EQ(vid, p.video_grids[0].patches() / 4);
    EXPECT_EQ(p.video_second_per_grid, std::vector<float>{1.0f});
  }
  if (sound) {
    EXPECT_EQ(p.audio_features[0].valid_frames, static_cast<int64_t>(c.audio_s * 100));
  }

  testing::TempDir tmp;
  const fs::path ref = run_reference(model, p, tmp.path(), "fp32");
  EXPECT_EQ(npy_ints(ref / "position_ids.npy"), p.position_ids);
  if (frames) {
    const auto want = npy_floats(ref / "video_embeds.npy");
    EXPECT_LT(relative_max_error(vision_rows, want), 1e-5);
  }
  if (sound) {
    EXPECT_LT(relative_max_error(audio_rows, npy_floats(ref / "audio_embeds.npy")), 1e-5);
  }
  EXPECT_GE(testing::cosine(emb.vector, npy_floats(ref / "embedding.npy")), 0.99999);
}

TEST_P(VideoParity, Bf16CloseToReference) {
  const Case& c = GetParam();
  const fs::path model = testing::test_model("tiny-f32");
  auto m = Model::load(model, {kernels::Compute::BF16, {}, false});
  Embedder e(m, options_for(*m, c.fusion));
  const PreparedInput p = e.prepare(EmbedRequest{c.role, c.text, {}, {}, {make_clip(c.video_s, c.audio_s)}});
  const Embedding emb = e.embed_prepared({p}).front();
  testing::TempDir tmp;
  const fs::path ref = run_reference(model, p, tmp.path(), "bf16");
  EXPECT_GE(testing::cosine(emb.vector, npy_floats(ref / "embedding.npy")), 0.999);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, VideoParity,
    ::testing::Values(Case{"separate", Fusion::Separate, 4, 4, text::Role::Document, "a clip"},
                      Case{"interleaved", Fusion::Interleaved, 4, 4, text::Role::Document, "a clip"},
                      Case{"video_only", Fusion::Video, 4, 4, text::Role::Query, ""},
                      Case{"audio_only", Fusion::Audio, 4, 4, text::Role::Document, ""},
                      // Sound longer than the frames: the audio's later chunks follow alone.
                      Case{"interleaved_audio_longer", Fusion::Interleaved, 2, 6, text::Role::Document, ""},
                      Case{"separate_audio_longer", Fusion::Separate, 2, 6, text::Role::Document, ""},
                      // Frames longer than the sound: the video's later chunks follow alone.
                      Case{"interleaved_video_longer", Fusion::Interleaved, 6, 1, text::Role::Document, "x"},
                      Case{"separate_video_longer", Fusion::Separate, 6, 1, text::Role::Query, ""}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// The token layout of each mode: text, then <|vision_bos|> video <|vision_eos|> <|audio_bos|> audio <|audio_eos|>
// (separate), or <|vision_bos|><|audio_bos|> chunks <|audio_eos|><|vision_eos|> (interleaved).
TEST(VideoEmbedder, TokenLayoutOfEachMode) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  const auto& t = m->config().tokens;
  const fs::path clip = make_clip(4, 4);
  auto layout = [&](Fusion f) {
    Embedder e(m, options_for(*m, f));
    PreparedInput p = e.prepare(EmbedRequest{text::Role::Document, "", {}, {}, {clip}});
    std::vector<int64_t> runs;  // run-length of the media ids: id, count, id, count ...
    for (int64_t id : p.input_ids) {
      if (id != t.video && id != t.audio && id != t.vision_start && id != t.vision_end && id != t.audio_start &&
          id != t.audio_end)
        continue;
      if (!runs.empty() && runs[runs.size() - 2] == id) {
        ++runs.back();
      } else {
        runs.push_back(id);
        runs.push_back(1);
      }
    }
    return runs;
  };
  // 4 s: 8 frames → grid t = 4, 3×5 merged tokens per temporal patch (60 video tokens); 100 audio tokens.
  const int64_t v = t.video, a = t.audio;
  EXPECT_EQ(layout(Fusion::Separate), (std::vector<int64_t>{t.vision_start, 1, v, 60, t.vision_end, 1, t.audio_start,
                                                            1, a, 100, t.audio_end, 1}));
  EXPECT_EQ(layout(Fusion::Interleaved),
            (std::vector<int64_t>{t.vision_start, 1, t.audio_start, 1, v, 30, a, 50, v, 30, a, 50, t.audio_end, 1,
                                  t.vision_end, 1}));
  EXPECT_EQ(layout(Fusion::Video), (std::vector<int64_t>{t.vision_start, 1, v, 60, t.vision_end, 1}));
  EXPECT_EQ(layout(Fusion::Audio), (std::vector<int64_t>{t.audio_start, 1, a, 100, t.audio_end, 1}));
}

// A video without sound: frames alone in separate and interleaved (with a warning), a clear error in audio mode.
TEST(VideoEmbedder, SilentVideo) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  const fs::path clip = make_clip(2, 0);
  for (Fusion f : {Fusion::Separate, Fusion::Interleaved, Fusion::Video}) {
    Embedder e(m, options_for(*m, f));
    PreparedInput p = e.prepare(EmbedRequest{text::Role::Document, "", {}, {}, {clip}});
    EXPECT_TRUE(p.audio_features.empty()) << fusion_name(f);
    EXPECT_EQ(p.silent_videos, 1) << fusion_name(f);
    EXPECT_FALSE(p.use_audio_in_video);
    EXPECT_EQ(e.embed_prepared({p}).front().vector.size(), static_cast<size_t>(m->config().text.d_model));
  }
  Embedder e(m, options_for(*m, Fusion::Audio));
  try {
    e.prepare(EmbedRequest{text::Role::Document, "", {}, {}, {clip}});
    FAIL() << "audio mode needs sound";
  } catch (const InvalidInput& err) {
    EXPECT_NE(std::string(err.what()).find("no audio stream"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find(clip.filename().string()), std::string::npos) << err.what();
  }
}

// A video item packed with text and audio items in one decoder pass equals the item alone.
TEST(VideoEmbedder, PackedBatchEqualsOneByOne) {
  auto m = Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32, {}, false});
  Embedder e(m, options_for(*m, Fusion::Interleaved));
  std::vector<PreparedInput> items = {e.prepare({text::Role::Query, "first query", {}, {}}),
                                      e.prepare(EmbedRequest{text::Role::Document, "", {}, {}, {make_clip(4, 4)}}),
                                      e.prepare(EmbedRequest{text::Role::Document, "", {}, {}, {make_clip(2, 6)}})};
  auto batch = e.embed_prepared(items);
  for (size_t i = 0; i < items.size(); ++i)
    EXPECT_GE(testing::cosine(batch[i].vector, e.embed_prepared({items[i]}).front().vector), 0.9999999) << i;
  EXPECT_THROW(parse_fusion("early"), InvalidInput);
  // "late" is two inputs (Video, Audio), not a mode of the model: tests/pipeline/options_test.cc takes it.
}

}  // namespace
}  // namespace oe::model
