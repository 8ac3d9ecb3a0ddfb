#include <gtest/gtest.h>

#include "core/error.h"
#include "model/config.h"
#include "model/test_model.h"
#include "test_util.h"

namespace oe::model {
namespace {

TEST(Config, BothLayoutsParseToTheSameValues) {
  auto flat = ModelConfig::load(testing::test_model("tiny-f32"));
  auto nested = ModelConfig::load(testing::test_model("tiny-f32-qwen"));
  EXPECT_EQ(flat.layout, ConfigLayout::NvOmniEmbed);
  EXPECT_EQ(nested.layout, ConfigLayout::Qwen25Omni);
  EXPECT_EQ(flat.tensor_prefix, "");
  EXPECT_EQ(nested.tensor_prefix, "thinker.");
  EXPECT_EQ(flat.text.d_model, nested.text.d_model);
  EXPECT_EQ(flat.text.n_kv_heads, nested.text.n_kv_heads);
  EXPECT_EQ(flat.text.mrope_section, nested.text.mrope_section);
  EXPECT_EQ(flat.vision.fullatt_block_indexes, nested.vision.fullatt_block_indexes);
  EXPECT_EQ(flat.tokens.image, 151655);
  EXPECT_EQ(nested.tokens.audio, 151646);
}

TEST(Config, The3bPresetHasTheRealShapes) {
  TestModelOptions o;
  o.preset = TestPreset::Full3B;
  auto c = ModelConfig::from_json(test_model_config(o), "3b");
  EXPECT_EQ(c.text.d_model, 2048);
  EXPECT_EQ(c.text.n_layers, 36);
  EXPECT_EQ(c.text.n_heads, 16);
  EXPECT_EQ(c.text.n_kv_heads, 2);
  EXPECT_EQ(c.text.d_head, 128);
  EXPECT_EQ(c.text.d_ff, 11008);
  EXPECT_EQ(c.text.vocab_size, 151936);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int>{16, 24, 24}));
  EXPECT_EQ(c.vision.depth, 32);
  EXPECT_EQ(c.audio.n_layers, 32);
}

std::string error_of(const nlohmann::json& j) {
  try {
    ModelConfig::from_json(j, "config.json");
  } catch (const InvalidInput& e) {
    return e.what();
  } catch (const Unsupported& e) {
    return e.what();
  }
  return "";
}

TEST(Config, MissingOrInvalidKeysAreNamed) {
  TestModelOptions o;
  auto good = test_model_config(o);
  auto j = good;
  j["text_config"].erase("num_key_value_heads");
  EXPECT_NE(error_of(j).find("config.json.text_config: missing required key \"num_key_value_heads\""), std::string::npos)
      << error_of(j);
  j = good;
  j["text_config"]["hidden_size"] = "wide";
  EXPECT_NE(error_of(j).find("\"hidden_size\" must be an integer"), std::string::npos) << error_of(j);
  j = good;
  j["text_config"]["rope_scaling"]["mrope_section"] = {2, 3, 4};
  EXPECT_NE(error_of(j).find("mrope_section"), std::string::npos) << error_of(j);
  j = good;
  j["text_config"]["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("not a multiple"), std::string::npos) << error_of(j);
  j = good;
  j.erase("text_config");
  EXPECT_NE(error_of(j).find("text_config"), std::string::npos) << error_of(j);
  j = good;
  j.erase("audio_config");
  EXPECT_NE(error_of(j).find("missing required key \"audio_config\""), std::string::npos) << error_of(j);
  EXPECT_NE(error_of(nlohmann::json::array()).find("expected a JSON object"), std::string::npos);
  // Values of the wrong kind are named too (a number for a string escaped as nlohmann's type_error; found by
  // fuzz/config.cc), and a number past float's range is refused (casting it to float is undefined).
  j = good;
  j["model_type"] = 3136;
  EXPECT_NE(error_of(j).find("\"model_type\" must be a string, got 3136"), std::string::npos) << error_of(j);
  j = good;
  j["text_config"]["hidden_act"] = false;
  EXPECT_NE(error_of(j).find("\"hidden_act\" must be a string"), std::string::npos) << error_of(j);
  j = good;
  j["text_config"]["rms_norm_eps"] = 1e300;
  EXPECT_NE(error_of(j).find("\"rms_norm_eps\" must be a number within float's range"), std::string::npos)
      << error_of(j);
}

}  // namespace
}  // namespace oe::model

namespace oe::model {
namespace {

TEST(TestModel, The3bPresetHasThePublishedParameterAndTensorCounts) {
  // omni-embed-nemotron.md §1: 4,703,464,448 parameters; thinker spec §2: 435 text + 518 vision + 489 audio tensors.
  TestModelOptions o;
  o.preset = TestPreset::Full3B;
  int64_t params = 0, text = 0;
  auto specs = test_model_tensors(o);
  for (const auto& s : specs) {
    params += shape_numel(s.shape);
    text += s.name.rfind("model.", 0) == 0 || s.name == "lm_head.weight";
  }
  EXPECT_EQ(params, 4703464448);
  EXPECT_EQ(specs.size(), 435u + 518u + 489u);
  EXPECT_EQ(text, 435);
  o.layout = ConfigLayout::Qwen25Omni;
  for (const auto& s : test_model_tensors(o))
    EXPECT_TRUE(s.name.rfind("thinker.", 0) == 0 || s.name.rfind("talker.", 0) == 0 ||
                s.name.rfind("token2wav.", 0) == 0)
        << s.name;
}

}  // namespace
}  // namespace oe::model
