#include "pipeline/options.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json.h"

namespace oe::pipeline {
namespace {

using nlohmann::json;

const char* video_pipeline_name(media::VideoPipeline p) { return p == media::VideoPipeline::St ? "st" : "card"; }

// Every field of model::EmbedOptions (and of the video options in it) is recorded below or deliberately left out
// (image_decode's pixel, file-size and decoding-memory guards, and video's frame-size and decoding-memory guards,
// refuse files, they never change a vector; min_frames and total_pixels are the reference's constants). The sizes
// make a field added without a look here fail to compile (x86-64 Linux layout).
static_assert(sizeof(model::EmbedOptions) == 272 && sizeof(media::VideoOptions) == 72,
              "a field was added to model::EmbedOptions or media::VideoOptions: record it in recorded_json and read "
              "it in from_recorded (or say here why it changes no vector), then update these sizes");

}  // namespace

std::string EmbedOptions::fusion_name() const { return late_fusion ? "late" : model::fusion_name(model.fusion); }

void EmbedOptions::set_fusion(const std::string& name) {
  if (name == "late") {
    late_fusion = true;
    model.fusion = model::Fusion::Separate;
    return;
  }
  try {
    model.fusion = model::parse_fusion(name);
  } catch (const InvalidInput&) {
    throw InvalidInput(fmt::format("unknown fusion mode \"{}\": choose {}", name, FUSION_CHOICES));
  }
  late_fusion = false;
}

EmbedOptions EmbedOptions::for_queries() const {
  EmbedOptions q = *this;
  q.late_fusion = false;
  return q;
}

void EmbedOptions::validate() const { model.validate(); }

std::string EmbedOptions::recorded_json(const model::Model& m) const {
  const text::PromptOptions prompts = model::resolve_prompts(model, m);
  nlohmann::ordered_json j;
  j["system_prompt"] = prompts.system_prompt;
  j["query_prefix"] = prompts.query_prefix;
  j["document_prefix"] = prompts.document_prefix;
  j["attention"] = model::attention_name(model.attention);
  j["max_tokens"] = model.max_tokens;
  j["image_min_pixels"] = model.image_min_pixels;
  j["image_max_pixels"] = model.image_max_pixels;
  j["exif_orientation"] = model.image_decode.apply_exif_orientation;
  j["audio_max_samples"] = model::resolved_audio_max_samples(model, m);
  const EmbedOptions defaults;
  const media::VideoOptions& v = model.video;
  const media::VideoOptions& d = defaults.model.video;
  if (fusion_name() != defaults.fusion_name() || v.pipeline != d.pipeline || v.fps != d.fps ||
      v.min_pixels != d.min_pixels || v.max_pixels != d.max_pixels || v.max_frames != d.max_frames) {
    j["video"] = {{"fusion", fusion_name()},
                  {"pipeline", video_pipeline_name(v.pipeline)},
                  {"fps", v.fps},
                  {"min_pixels", v.min_pixels},
                  {"max_pixels", v.max_pixels},
                  {"max_frames", v.max_frames}};
  }
  return j.dump();
}

EmbedOptions EmbedOptions::from_recorded(const std::string& text, const model::Model& m) {
  return from_recorded(text, m.audio_preprocess());
}

EmbedOptions EmbedOptions::from_recorded(const std::string& text, const media::AudioFeatureConfig& audio) {
  EmbedOptions o;
  try {
    const json j = json::parse(text);
    o.model.system_prompt = j.at("system_prompt").get<std::string>();
    o.model.query_prefix = j.at("query_prefix").get<std::string>();
    o.model.document_prefix = j.at("document_prefix").get<std::string>();
    o.model.attention = model::parse_attention(j.at("attention").get<std::string>());
    o.model.max_tokens = io::json_integer(j, "max_tokens");
    o.model.image_min_pixels = io::json_integer(j, "image_min_pixels");
    o.model.image_max_pixels = io::json_integer(j, "image_max_pixels");
    o.model.image_decode.apply_exif_orientation = j.at("exif_orientation").get<bool>();
    // Seconds that give back the recorded samples exactly at this checkpoint's rate.
    o.model.audio_max_seconds = static_cast<double>(io::json_integer(j, "audio_max_samples")) /
                                static_cast<double>(audio.sampling_rate);
    if (j.contains("video")) {
      const json& v = j["video"];
      o.set_fusion(v.at("fusion").get<std::string>());
      o.model.video.pipeline =
          v.at("pipeline").get<std::string>() == "st" ? media::VideoPipeline::St : media::VideoPipeline::Card;
      o.model.video.fps = v.at("fps").get<double>();
      o.model.video.min_pixels = io::json_integer(v, "min_pixels");
      o.model.video.max_pixels = io::json_integer(v, "max_pixels");
      o.model.video.max_frames = io::json_integer(v, "max_frames");
    }
  } catch (const json::exception& e) {
    throw InvalidInput(fmt::format("unreadable embedding settings in the index ({})", e.what()));
  } catch (const InvalidInput& e) {  // a value of the wrong kind (io::json_integer)
    e.rethrow_with_context("unreadable embedding settings in the index");
  }
  return o;
}

}  // namespace oe::pipeline
