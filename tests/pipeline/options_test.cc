// The one home of the embedding options: fusion names (late is a pipeline choice, not a model mode), validation,
// and the JSON an index records, which must read back to the same string (an index compares it as text).
#include "pipeline/options.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace oe::pipeline {
namespace {

std::shared_ptr<const model::Model> tiny() {
  static auto m = model::Model::load(testing::test_model("tiny-f32"), {kernels::Compute::F32});
  return m;
}

TEST(EmbedOptions, LateFusionIsAPipelineChoiceOverSeparate) {
  EmbedOptions o;
  EXPECT_EQ(o.fusion_name(), "separate");
  o.set_fusion("late");
  EXPECT_TRUE(o.late_fusion);
  EXPECT_EQ(o.model.fusion, model::Fusion::Separate);  // what queries and non-video items use
  EXPECT_EQ(o.fusion_name(), "late");
  EXPECT_FALSE(o.for_queries().late_fusion);
  o.set_fusion("interleaved");
  EXPECT_FALSE(o.late_fusion);
  EXPECT_EQ(o.model.fusion, model::Fusion::Interleaved);
  try {
    o.set_fusion("early");
    ADD_FAILURE() << "accepted early";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(FUSION_CHOICES), std::string::npos) << e.what();
  }
  EXPECT_THROW(model::parse_fusion("late"), InvalidInput);  // the model runs four modes
}

TEST(EmbedOptions, ValidateNamesTheOption) {
  EmbedOptions o;
  o.validate();
  o.model.video.min_pixels = 60'000;
  try {
    o.validate();
    ADD_FAILURE() << "accepted a video budget of 60000..50176";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("video min pixels 60000 is larger than max pixels 50176"), std::string::npos)
        << e.what();
  }
  o = EmbedOptions{};
  o.model.max_tokens = -1;
  EXPECT_THROW(o.validate(), InvalidInput);
  o = EmbedOptions{};
  o.model.video.fps = 0;
  EXPECT_THROW(o.validate(), InvalidInput);
}

// The recorded form of the defaults is the one indexes of the first format hold (no "video" key, the checkpoint's
// prompts, the clip length in samples).
TEST(EmbedOptions, RecordedJsonOfTheDefaults) {
  const std::string j = EmbedOptions{}.recorded_json(*tiny());
  EXPECT_EQ(j,
            R"({"system_prompt":"You are a helpful assistant.","query_prefix":"query: ","document_prefix":"passage: ",)"
            R"("attention":"bidirectional","max_tokens":0,"image_min_pixels":0,"image_max_pixels":0,)"
            R"("exif_orientation":false,"audio_max_samples":2048000})");
}

TEST(EmbedOptions, RecordedJsonReadsBackToTheSameOptions) {
  EmbedOptions o;
  o.model.query_prefix = "";
  o.model.system_prompt = "Be brief.";
  o.model.attention = model::AttentionMode::Causal;
  o.model.max_tokens = 300;
  o.model.image_min_pixels = 3136;
  o.model.image_max_pixels = 200'704;
  o.model.image_decode.apply_exif_orientation = true;
  o.model.audio_max_seconds = 12.345;
  o.model.video.fps = 1;
  o.model.video.pipeline = media::VideoPipeline::St;
  o.set_fusion("late");
  const std::string j = o.recorded_json(*tiny());
  const EmbedOptions back = EmbedOptions::from_recorded(j, *tiny());
  EXPECT_EQ(back.recorded_json(*tiny()), j);
  EXPECT_TRUE(back.late_fusion);
  EXPECT_EQ(back.model.query_prefix, "");
  EXPECT_EQ(back.model.document_prefix, "passage: ");  // the checkpoint's, recorded explicitly
  EXPECT_EQ(nlohmann::json::parse(j)["audio_max_samples"], 197'520);
  EXPECT_EQ(nlohmann::json::parse(j)["video"]["fusion"], "late");
  EXPECT_THROW(EmbedOptions::from_recorded(R"({"system_prompt": 1})", *tiny()), InvalidInput);
}

TEST(EmbedOptions, RecordedIntegersMustBeIntegers) {
  // Found by fuzz/settings.cc: nlohmann cast "max_tokens": 1e300 to int64, which is undefined (INT64_MIN in practice).
  const nlohmann::json good = {{"system_prompt", "s"},      {"query_prefix", "q: "},  {"document_prefix", "d: "},
                               {"attention", "causal"},     {"max_tokens", 300},      {"image_min_pixels", 0},
                               {"image_max_pixels", 0},     {"exif_orientation", false}, {"audio_max_samples", 16000}};
  const media::AudioFeatureConfig audio;  // 16 kHz
  EXPECT_EQ(EmbedOptions::from_recorded(good.dump(), audio).model.max_tokens, 300);
  EXPECT_DOUBLE_EQ(EmbedOptions::from_recorded(good.dump(), audio).model.audio_max_seconds, 1.0);
  for (const char* key : {"max_tokens", "image_max_pixels", "audio_max_samples"}) {
    for (const nlohmann::json& bad : {nlohmann::json(1e300), nlohmann::json(2.5), nlohmann::json(uint64_t{1} << 63)}) {
      nlohmann::json j = good;
      j[key] = bad;
      try {
        EmbedOptions::from_recorded(j.dump(), audio);
        ADD_FAILURE() << key << " = " << bad.dump() << " was accepted";
      } catch (const InvalidInput& e) {
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      }
    }
  }
  nlohmann::json video = good;
  video["video"] = {{"fusion", "late"}, {"pipeline", "st"}, {"fps", 2},
                    {"min_pixels", 3136}, {"max_pixels", 1e300}, {"max_frames", 64}};
  EXPECT_THROW(EmbedOptions::from_recorded(video.dump(), audio), InvalidInput);
}

}  // namespace
}  // namespace oe::pipeline
