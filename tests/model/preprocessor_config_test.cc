// preprocessor_config.json of a checkpoint: both parts read, defaults for what is missing, and every invalid value
// refused naming the file and the key.
#include "model/preprocessor_config.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "core/error.h"

namespace oe::model {
namespace {

using media::AudioFeatureConfig;
using media::VisionPreprocessConfig;
using oe::testing::TempDir;

void write_config(const TempDir& dir, const std::string& text) {
  std::ofstream(dir / "preprocessor_config.json") << text;
}

template <class E, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------------------------
// The image processor's part

TEST(VisionPreprocessConfig, MissingFileGivesDefaults) {
  TempDir dir;
  const VisionPreprocessConfig c = PreprocessorConfig::load(dir.path()).vision;
  EXPECT_EQ(c.patch_size, 14);
  EXPECT_EQ(c.temporal_patch_size, 2);
  EXPECT_EQ(c.merge_size, 2);
  EXPECT_EQ(c.min_pixels, 3136);
  EXPECT_EQ(c.max_pixels, 12845056);
  EXPECT_EQ(c.factor(), 28);
}

TEST(VisionPreprocessConfig, ReadsKeysAndToleratesMissingOnes) {
  TempDir dir;
  write_config(dir, R"({"processor_class": "Qwen2_5OmniProcessor", "min_pixels": 1000, "max_pixels": 50000.0,
                        "patch_size": 16, "image_mean": [0.5, 0.25, 0.125], "do_resize": true})");
  const VisionPreprocessConfig c = PreprocessorConfig::load(dir.path()).vision;
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.merge_size, 2);  // absent: default
  EXPECT_EQ(c.min_pixels, 1000);
  EXPECT_EQ(c.max_pixels, 50000);
  EXPECT_EQ(c.mean[1], 0.25f);
  EXPECT_EQ(c.std[0], 0.26862954f);  // absent: default
  EXPECT_EQ(c.factor(), 32);
}

TEST(VisionPreprocessConfig, ReadsSizeEdgesOfNewerTransformers) {
  TempDir dir;
  write_config(dir, R"({"size": {"shortest_edge": 3136, "longest_edge": 1003520}})");
  const VisionPreprocessConfig c = PreprocessorConfig::load(dir.path()).vision;
  EXPECT_EQ(c.min_pixels, 3136);
  EXPECT_EQ(c.max_pixels, 1003520);
}

TEST(VisionPreprocessConfig, RefusesInvalidValues) {
  for (const char* text : {R"({"patch_size": -14})", R"({"merge_size": 2.5})", R"({"image_std": [1, 0, 1]})",
                           R"({"image_mean": [0.5, 0.5]})", R"({"min_pixels": 100, "max_pixels": 10})", "[1, 2]",
                           R"({"patch_size": )", R"({"image_mean": [1e300, 0.5, 0.5]})"}) {
    TempDir dir;
    write_config(dir, text);
    const std::string m = error_message<InvalidInput>([&] { PreprocessorConfig::load(dir.path()).vision; });
    EXPECT_NE(m.find("preprocessor_config.json"), std::string::npos) << text << " -> " << m;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The feature extractor's part

TEST(AudioFeatureConfigLoad, MissingFileGivesTheDefaults) {
  TempDir dir;
  const AudioFeatureConfig c = PreprocessorConfig::load(dir.path()).audio;
  EXPECT_EQ(c.n_mel, 128);
  EXPECT_EQ(c.sampling_rate, 16000);
  EXPECT_EQ(c.n_fft, 400);
  EXPECT_EQ(c.hop_length, 160);
  EXPECT_EQ(c.max_samples, 4'800'000);
}

TEST(AudioFeatureConfigLoad, ReadsTheWhisperKeys) {
  TempDir dir;
  // The Omni file's audio part, among the image keys it also holds.
  write_config(dir, R"({"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80,
    "sampling_rate": 16000.0, "n_fft": 512, "hop_length": 128, "chunk_length": 30, "n_samples": 480000,
    "nb_max_frames": 3750, "padding_value": 0.0, "patch_size": 14})");
  const AudioFeatureConfig c = PreprocessorConfig::load(dir.path()).audio;
  EXPECT_EQ(c.n_mel, 80);
  EXPECT_EQ(c.sampling_rate, 16000);
  EXPECT_EQ(c.n_fft, 512);
  EXPECT_EQ(c.hop_length, 128);
  EXPECT_EQ(c.max_samples, 480'000);
  write_config(dir, R"({"patch_size": 14})");  // no audio key: the defaults
  EXPECT_EQ(PreprocessorConfig::load(dir.path()).audio.max_samples, 4'800'000);
}

TEST(AudioFeatureConfigLoad, RejectsNonsenseNamingTheFileAndKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"feature_size": 0})", "feature_size"},
      {R"({"sampling_rate": -16000})", "sampling_rate"},
      {R"({"n_fft": 401})", "n_fft"},
      {R"({"n_fft": "400"})", "n_fft"},
      {R"({"hop_length": 401})", "hop_length"},
      {R"({"hop_length": 1.5})", "hop_length"},
      {R"({"n_samples": 4800001})", "n_samples"},
      {R"({"n_samples": 320})", "n_samples"},  // shorter than n_fft
      {R"([1, 2])", "JSON object"},
  };
  for (const auto& [text, key] : cases) {
    TempDir dir;
    write_config(dir, text);
    try {
      PreprocessorConfig::load(dir.path()).audio;
      ADD_FAILURE() << "accepted " << text;
    } catch (const InvalidInput& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("preprocessor_config.json"), std::string::npos) << what;
      EXPECT_NE(what.find(key), std::string::npos) << what;
    }
  }
  TempDir dir;
  write_config(dir, "{\"n_fft\": ");
  EXPECT_THROW(PreprocessorConfig::load(dir.path()).audio, InvalidInput);
}

}  // namespace
}  // namespace oe::model
