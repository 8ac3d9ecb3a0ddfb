// The omni-embed binary end to end: JSON lines, JSONL input with bad lines, npy output, dumped inputs that the
// independent reference accepts, and clear errors.
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "common/ffmpeg.h"
#include "common/json_lines.h"
#include "test_util.h"

namespace oe {
namespace {

namespace fs = std::filesystem;

std::string cli() { return OE_CLI; }
std::string model(const char* name = "tiny-f32") { return testing::test_model(name).string(); }

using testing::json_lines;

TEST(Cli, EmbedPrintsOneJsonLinePerItem) {
  std::string out;
  int rc = testing::run_command(fmt::format("{} embed --model {} --dtype fp32 --query 'a cat' --query 'a dog' "
                                            "--document --text 'cats and dogs' 2>/dev/null",
                                            cli(), model()),
                                &out);
  ASSERT_EQ(rc, 0) << out;
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["role"], "query");
  EXPECT_EQ(lines[2]["role"], "document");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(lines[i]["index"], i);
    EXPECT_EQ(lines[i]["embedding"].size(), 64u);
    EXPECT_GT(lines[i]["n_tokens"].get<int>(), 15);
  }
}

TEST(Cli, JsonlInputReportsBadLinesAndGoesOn) {
  testing::TempDir tmp;
  const fs::path items = tmp.path() / "items.jsonl";
  {
    std::ofstream f(items);
    f << R"({"id": "q1", "role": "query", "text": "first"})" << "\n";
    f << "this is not json\n";
    f << "{\"id\": \"bad\", \"role\": \"query\", \"text\": \"bad \xff utf8\"}\n";
    f << R"({"id": "empty", "role": "query", "text": ""})" << "\n";
    f << R"({"id": "img", "role": "document", "image": "x.png"})" << "\n";
    f << R"({"id": "aud", "role": "document", "audio": "x.wav"})" << "\n";
    f << R"({"id": "vid", "role": "document", "video": "x.mp4"})" << "\n";
    f << R"({"id": "d1", "role": "document", "text": "last"})" << "\n";
  }
  std::string out;
  int rc = testing::run_command(
      fmt::format("{} embed --model {} --input {} 2>/dev/null", cli(), model(), items.string()), &out);
  EXPECT_EQ(rc, 1) << out;  // some items failed
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 8u) << out;
  EXPECT_EQ(lines[0]["id"], "q1");
  EXPECT_TRUE(lines[0].contains("embedding"));
  EXPECT_NE(lines[1]["error"].get<std::string>().find("line 2: not valid JSON"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2]["error"].get<std::string>().find("UTF-8"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3]["error"].get<std::string>().find("empty"), std::string::npos) << lines[3];
  // A missing image is named, relative to the JSONL file's folder.
  EXPECT_NE(lines[4]["error"].get<std::string>().find((tmp.path() / "x.png").string()), std::string::npos) << lines[4];
  EXPECT_NE(lines[5]["error"].get<std::string>().find((tmp.path() / "x.wav").string()), std::string::npos) << lines[5];
  EXPECT_NE(lines[6]["error"].get<std::string>().find((tmp.path() / "x.mp4").string()), std::string::npos) << lines[6];
  EXPECT_EQ(lines[7]["id"], "d1");
  EXPECT_TRUE(lines[7].contains("embedding"));
}

// Videos through the CLI: a good clip in each fusion mode, and bad files (truncated, not a video, no video stream,
// one frame, no sound for --fusion audio) as error lines naming the file while the run goes on.
TEST(CliVideo, GoodAndBadVideosInOneRun) {
  testing::TempDir tmp;
  const fs::path dir = tmp.path();
  using testing::ffmpeg;
  ffmpeg(fmt::format("-f lavfi -i testsrc2=size=160x96:rate=10 -f lavfi -i sine=frequency=500 -t 3 -c:v libx264 "
                     "-pix_fmt yuv420p -c:a aac '{}'",
                     (dir / "good.mp4").string()));
  ffmpeg(fmt::format("-f lavfi -i testsrc2=size=160x96:rate=10 -t 2 -c:v libx264 -pix_fmt yuv420p '{}'",
                     (dir / "silent.mp4").string()));
  ffmpeg(fmt::format("-f lavfi -i testsrc2=size=160x96:rate=10 -frames:v 1 -c:v libx264 -pix_fmt yuv420p '{}'",
                     (dir / "one.mp4").string()));
  ffmpeg(fmt::format("-f lavfi -i sine=frequency=500 -t 1 '{}'", (dir / "tone.wav").string()));
  {
    // The first kilobyte of the good file, and a text file named .mp4.
    std::ifstream in(dir / "good.mp4", std::ios::binary);
    std::string head(1024, '\0');
    in.read(head.data(), 1024);
    std::ofstream(dir / "cut.mp4", std::ios::binary) << head;
    std::ofstream(dir / "notes.mp4") << "not a video at all\n";
  }
  const fs::path items = dir / "items.jsonl";
  {
    std::ofstream f(items);
    for (const char* name : {"good.mp4", "cut.mp4", "notes.mp4", "tone.wav", "one.mp4", "silent.mp4"})
      f << fmt::format(R"({{"id": "{}", "video": "{}"}})", name, name) << "\n";
  }
  const std::string settings = "--video-min-pixels 3136 --video-max-pixels 6272";
  for (const char* fusion : {"separate", "interleaved", "video", "audio", "late"}) {
    std::string out;
    const int rc = testing::run_command(fmt::format("{} embed --model {} --input {} --fusion {} {} 2>/dev/null", cli(),
                                                    model(), items.string(), fusion, settings),
                                        &out);
    EXPECT_EQ(rc, 1) << fusion << "\n" << out;
    auto lines = json_lines(out);
    ASSERT_EQ(lines.size(), 6u) << fusion << "\n" << out;
    EXPECT_TRUE(lines[0].contains("embedding")) << fusion << " " << lines[0].dump().substr(0, 300);
    EXPECT_EQ(lines[0].contains("audio_embedding"), std::string(fusion) == "late") << fusion;
    // A WAV given as a video has no frames; in audio mode only its sound is read, so it embeds.
    EXPECT_EQ(lines[3].contains("error"), std::string(fusion) != "audio") << fusion << " " << lines[3];
    for (size_t i = 1; i <= 3; ++i) {
      if (!lines[i].contains("error")) continue;
      EXPECT_NE(lines[i]["error"].get<std::string>().find(lines[i]["id"].get<std::string>()), std::string::npos)
          << fusion << " " << lines[i];
    }
    // One frame: the model card's frame rule needs two (the reference fails too); audio mode only reads the sound,
    // which this clip does not have either.
    EXPECT_TRUE(lines[4].contains("error")) << fusion << " " << lines[4];
    // No sound: the frames alone, except in audio mode.
    EXPECT_EQ(lines[5].contains("error"), std::string(fusion) == "audio") << fusion << " " << lines[5];
  }
}

// Audio files through the whole engine: decode, channel mean, libsoxr, log-mel, audio tower, decoder. The dumped
// input_features.npy equals the reference front end (tests/media/soxr_oracle.py, then
// tools/reference/audio_features.py), and the vector equals the numpy reference model's on that dump (fp32).
struct AudioFile {
  const char* name;
  const char* make;  // shell command writing the WAV to {}
  int64_t valid_frames;
};

void PrintTo(const AudioFile& f, std::ostream* os) { *os << f.name; }

class CliAudio : public ::testing::TestWithParam<AudioFile> {};

TEST_P(CliAudio, EmbedMatchesTheReferenceFrontEndAndModel) {
  const AudioFile& f = GetParam();
  testing::TempDir tmp;
  const fs::path wav = tmp.path() / "in.wav", dump = tmp.path() / "dump";
  std::string log;
  ASSERT_EQ(testing::run_command(fmt::format(fmt::runtime(f.make), wav.string()), &log), 0) << log;
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("{} embed --model {} --dtype fp32 --audio '{}' --dump-inputs '{}' 2>&1",
                                             cli(), model(), wav.string(), dump.string()),
                                 &out),
            0)
      << out;
  const auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_EQ(lines[0]["role"], "document");
  const fs::path samples = tmp.path() / "samples.npy", feats = tmp.path() / "feats.npy", ref = tmp.path() / "ref";
  ASSERT_EQ(testing::run_command(
                fmt::format("{0} {1}/tests/media/soxr_oracle.py '{2}' '{3}' && {0} {1}/tools/reference/audio_features.py "
                            "'{3}' '{4}' --max-samples 2048000 && {0} {1}/tools/reference/text_embed.py --model {5} "
                            "--inputs '{6}' --out '{7}' --precision fp32",
                            OE_PYTHON, OE_SOURCE_DIR, wav.string(), samples.string(), feats.string(), model(),
                            (dump / "0").string(), ref.string()),
                &log),
            0)
      << log;
  const Tensor got = io::read_npy(dump / "0" / "input_features.npy");
  const Tensor want = io::read_npy(feats);
  ASSERT_EQ(got.shape(), (Shape{1, 128, 12800}));
  ASSERT_EQ(want.shape(), (Shape{128, 12800}));
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(got.ptr<float>()[i] - want.ptr<float>()[i])));
  EXPECT_LT(worst, 1e-4);
  const Tensor mask = io::read_npy(dump / "0" / "feature_attention_mask.npy");
  int64_t valid = 0;
  for (int64_t i = 0; i < mask.numel(); ++i) valid += mask.ptr<int64_t>()[i];
  EXPECT_EQ(valid, f.valid_frames);
  const Tensor ref_vec = io::read_npy(ref / "embedding.npy");
  const auto vec = lines[0]["embedding"].get<std::vector<float>>();
  ASSERT_EQ(static_cast<int64_t>(vec.size()), ref_vec.numel());
  EXPECT_GE(testing::cosine(vec.data(), ref_vec.ptr<float>(), vec.size()), 0.99999);
}

INSTANTIATE_TEST_SUITE_P(
    Files, CliAudio,
    ::testing::Values(
        // 2.5 s of stereo at 44.1 kHz: 40,000 samples at 16 kHz, 250 frames.
        AudioFile{"stereo_44k", "ffmpeg -v error -y -f lavfi -i "
                                "'aevalsrc=0.4*sin(2*PI*440*t)|0.3*sin(2*PI*660*t)*t:s=44100:d=2.5' -c:a pcm_s16le '{}'",
                  250},
        // Speech at espeak-ng's 22,050 Hz: 7 s of it, trimmed to a known length (154,350 samples = 112,000 at 16 kHz).
        AudioFile{"espeak_speech",
                  "espeak-ng -w '{0}.full.wav' 'The lecture on thermodynamics begins with entropy, the measure of "
                  "disorder, and goes on to the second law, which says that it never decreases in a closed system.' "
                  "&& ffmpeg -v error -y -i '{0}.full.wav' -af apad -t 7 -c:a pcm_s16le '{0}'",
                  700}),
    [](const ::testing::TestParamInfo<AudioFile>& i) { return std::string(i.param.name); });

// Writes a random RGB PNG of width × height with Pillow (the test-time oracle's interpreter).
void write_png(const fs::path& path, int width, int height) {
  std::string log;
  ASSERT_EQ(testing::run_command(fmt::format("{} -c \"import numpy as np; from PIL import Image; "
                                             "Image.fromarray(np.random.default_rng(1).integers(0, 256, ({}, {}, 3), "
                                             "dtype=np.uint8)).save('{}')\"",
                                             OE_PYTHON, height, width, path.string()),
                                 &log),
            0)
      << log;
}

TEST(Cli, ImageDocumentsAndQueries) {
  testing::TempDir tmp;
  const fs::path png = tmp.path() / "photo.png";
  write_png(png, 200, 150);  // smart_resize -> 196 × 140: a 10 × 14 patch grid, 35 image tokens
  const fs::path dump = tmp.path() / "dump";
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("{} embed --model {} --document --text 'a photo' --image {} "
                                             "--dump-inputs {} 2>/dev/null",
                                             cli(), model(), png.string(), dump.string()),
                                 &out),
            0)
      << out;
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_EQ(lines[0]["role"], "document");
  EXPECT_EQ(lines[0]["embedding"].size(), 64u);
  Tensor grid = io::read_npy(dump / "0" / "image_grid_thw.npy");
  ASSERT_EQ(grid.numel(), 3);
  EXPECT_EQ(grid.ptr<int64_t>()[1], 10);
  EXPECT_EQ(grid.ptr<int64_t>()[2], 14);
  Tensor pixels = io::read_npy(dump / "0" / "pixel_values.npy");
  EXPECT_EQ(pixels.shape(), (Shape{140, 1176}));

  // An image alone is a document; with one --query it is an image query; a smaller budget gives fewer tokens.
  ASSERT_EQ(testing::run_command(fmt::format("{} embed --model {} --image {} --query 'what is it' "
                                             "--image-max-pixels 3136 2>/dev/null",
                                             cli(), model(), png.string()),
                                 &out),
            0)
      << out;
  lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_EQ(lines[0]["role"], "query");
  const int small_tokens = lines[0]["n_tokens"].get<int>();
  ASSERT_EQ(testing::run_command(fmt::format("{} embed --model {} --image {} --query 'what is it' 2>/dev/null", cli(),
                                             model(), png.string()),
                                 &out),
            0);
  EXPECT_GT(json_lines(out)[0]["n_tokens"].get<int>(), small_tokens);

  // Images with several items on the command line are ambiguous; a text file named .jpg is a clear item error.
  EXPECT_NE(testing::run_command(fmt::format("{} embed --model {} --image {} --query a --query b", cli(), model(),
                                             png.string()),
                                 &out),
            0);
  EXPECT_NE(out.find("single item"), std::string::npos) << out;
  const fs::path fake = tmp.path() / "notes.jpg";
  std::ofstream(fake) << "just some text\n";
  EXPECT_EQ(testing::run_command(fmt::format("{} embed --model {} --image {} 2>/dev/null", cli(), model(),
                                             fake.string()),
                                 &out),
            1);
  lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_NE(lines[0]["error"].get<std::string>().find("notes.jpg"), std::string::npos) << lines[0];
}

TEST(Cli, NpyOutputMatchesJsonVectors) {
  testing::TempDir tmp;
  std::string json_out, npy_log;
  const std::string args = fmt::format("--model {} --dtype fp32 --query one --query two", model());
  ASSERT_EQ(testing::run_command(fmt::format("{} embed {} 2>/dev/null", cli(), args), &json_out), 0);
  const fs::path npy = tmp.path() / "v.npy";
  ASSERT_EQ(testing::run_command(fmt::format("{} embed {} --format npy --output {}", cli(), args, npy.string()),
                                 &npy_log),
            0)
      << npy_log;
  Tensor m = io::read_npy(npy);
  ASSERT_EQ(m.shape(), (Shape{2, 64}));
  auto lines = json_lines(json_out);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 64; ++j) EXPECT_EQ(m.ptr<float>()[i * 64 + j], lines[i]["embedding"][j].get<float>());
}

TEST(Cli, DumpedInputsReproduceTheVectorInTheReference) {
  testing::TempDir tmp;
  std::string out, log;
  ASSERT_EQ(testing::run_command(fmt::format("{} embed --model {} --dtype fp32 --document --text 'dumped item' "
                                             "--dump-inputs {} 2>/dev/null",
                                             cli(), model(), (tmp.path() / "dump").string()),
                                 &out),
            0);
  const fs::path item = tmp.path() / "dump" / "0";
  ASSERT_TRUE(fs::exists(item / "input_ids.npy"));
  Tensor pos = io::read_npy(item / "position_ids.npy");
  EXPECT_EQ(pos.dim(0), 3);
  std::string cmd = fmt::format("{} {}/tools/reference/text_embed.py --model {} --inputs {} --out {}", OE_PYTHON,
                                OE_SOURCE_DIR, model(), item.string(), (tmp.path() / "ref").string());
  ASSERT_EQ(testing::run_command(cmd, &log), 0) << log;
  Tensor ref = io::read_npy(tmp.path() / "ref" / "embedding.npy");
  auto v = json_lines(out)[0]["embedding"].get<std::vector<float>>();
  EXPECT_GE(testing::cosine(v.data(), ref.ptr<float>(), v.size()), 0.99999);
}

TEST(Cli, UsageErrorsAreClear) {
  std::string out;
  EXPECT_NE(testing::run_command(fmt::format("{} embed --model {}", cli(), model()), &out), 0);
  EXPECT_NE(out.find("nothing to embed"), std::string::npos) << out;
  EXPECT_NE(testing::run_command(fmt::format("{} embed --model {} --text orphan", cli(), model()), &out), 0);
  EXPECT_NE(out.find("--text needs --document"), std::string::npos) << out;
  EXPECT_NE(testing::run_command(fmt::format("{} embed --model /nonexistent/folder --query x", cli()), &out), 0);
  EXPECT_NE(out.find("/nonexistent/folder"), std::string::npos) << out;
  // An unknown bf16 GEMM kernel is refused before any benchmark run starts.
  EXPECT_NE(testing::run_command(fmt::format("{} --model {} --tokens 16 --images none --audio none --video none "
                                             "--peers none --bf16-gemm auto,mkl",
                                             OE_BENCH, model()),
                                 &out),
            0);
  EXPECT_NE(out.find("unknown bf16 GEMM \"mkl\""), std::string::npos) << out;
  EXPECT_EQ(out.find("bench: omni-embed"), std::string::npos) << out;
}

// A benchmark child applies its clip length to the audio rows: a 2 s clip cut at 1 s gives a 1 s clip's tokens
// (the child once built its embedder before setting the clip length, and timed the whole 2 s).
TEST(Cli, BenchChildCutsAudioAtItsClipLength) {
  auto audio_tokens = [](const char* audio) {
    std::string out;
    EXPECT_EQ(testing::run_command(fmt::format("{} --child --model {} --tokens none --images none --video none "
                                               "--dtype fp32 --repeats 1 {} 2>/dev/null",
                                               OE_BENCH, model(), audio),
                                   &out),
              0)
        << out;
    auto rows = json_lines(out);
    EXPECT_EQ(rows.size(), 1u) << out;
    return rows.empty() ? int64_t{-1} : rows[0].value("audio_tokens", int64_t{-1});
  };
  const int64_t one_second = audio_tokens("--audio 1");
  EXPECT_GT(one_second, 0);
  EXPECT_EQ(audio_tokens("--audio 2 --audio-max-seconds 1"), one_second);
}

TEST(Cli, InspectDescribesTheCheckpointWithoutLoadingIt) {
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("{} inspect --model {}", cli(), model("tiny-f32-qwen")), &out), 0) << out;
  EXPECT_NE(out.find("qwen2_5_omni"), std::string::npos) << out;
  EXPECT_NE(out.find("thinker."), std::string::npos) << out;
  EXPECT_NE(out.find("vision encoder"), std::string::npos) << out;
}

// The README's main command ends in `omni-embed demo`: without the real model it must say so and still show the
// whole matrix, image documents included.
TEST(Cli, DemoFallsBackToATestModelAndSaysSo) {
  testing::TempDir tmp;
  std::string out;
  ASSERT_EQ(testing::run_command(fmt::format("OMNI_EMBED_CACHE={} HF_HUB_CACHE={} {} demo --no-download",
                                             tmp.path().string(), (tmp.path() / "hub").string(), cli()),
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("RANDOM-WEIGHT"), std::string::npos) << out;
  EXPECT_NE(out.find("A red circle"), std::string::npos) << out;
  EXPECT_NE(out.find("doc 5: [image]"), std::string::npos) << out;
  EXPECT_NE(out.find("9 items"), std::string::npos) << out;
}

}  // namespace
}  // namespace oe
