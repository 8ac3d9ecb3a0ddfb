#include "model/embed_options.h"

#include <cmath>

#include "core/error.h"

namespace oe::model {

const char* fusion_name(Fusion f) {
  switch (f) {
    case Fusion::Separate: return "separate";
    case Fusion::Interleaved: return "interleaved";
    case Fusion::Video: return "video";
    case Fusion::Audio: return "audio";
  }
  return "?";
}

Fusion parse_fusion(const std::string& name) {
  for (Fusion f : {Fusion::Separate, Fusion::Interleaved, Fusion::Video, Fusion::Audio})
    if (name == fusion_name(f)) return f;
  throw InvalidInput(fmt::format("unknown fusion mode \"{}\": choose separate, interleaved, video or audio", name));
}

const char* attention_name(AttentionMode m) { return m == AttentionMode::Causal ? "causal" : "bidirectional"; }

AttentionMode parse_attention(const std::string& name) {
  if (name == "bidirectional") return AttentionMode::Bidirectional;
  if (name == "causal") return AttentionMode::Causal;
  throw InvalidInput(fmt::format("unknown attention \"{}\": choose bidirectional or causal", name));
}

void check_pixel_budget(const std::string& what, int64_t min_pixels, int64_t max_pixels) {
  if (min_pixels > max_pixels)
    throw InvalidInput(fmt::format("{} min pixels {} is larger than max pixels {}", what, min_pixels, max_pixels));
}

void EmbedOptions::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw InvalidInput(what);
  };
  require(max_tokens >= 0, fmt::format("max tokens {} is negative", max_tokens));
  require(image_min_pixels >= 0 && image_max_pixels >= 0,
          fmt::format("the image budget {}..{} pixels is negative", image_min_pixels, image_max_pixels));
  if (image_min_pixels > 0 && image_max_pixels > 0) check_pixel_budget("image", image_min_pixels, image_max_pixels);
  require(image_decode.max_decoded_pixels > 0,
          fmt::format("max image pixels {} is not positive", image_decode.max_decoded_pixels));
  require(image_decode.max_decode_bytes > 0,
          fmt::format("max image decode bytes {} is not positive", image_decode.max_decode_bytes));
  require(std::isfinite(audio_max_seconds) && audio_max_seconds >= 0,
          fmt::format("the audio clip length {} s is not a length", audio_max_seconds));
  require(video.min_pixels > 0 && video.max_pixels > 0,
          fmt::format("the video budget {}..{} pixels is not positive", video.min_pixels, video.max_pixels));
  check_pixel_budget("video", video.min_pixels, video.max_pixels);
  require(video.max_frame_pixels > 0, fmt::format("max video frame pixels {} is not positive", video.max_frame_pixels));
  require(video.max_decode_bytes > 0, fmt::format("max video decode bytes {} is not positive", video.max_decode_bytes));
  require(std::isfinite(video.fps) && video.fps > 0, fmt::format("video fps {} is not positive", video.fps));
  require(video.max_frames >= 2, fmt::format("max frames {} is below 2 (two frames make one temporal patch)",
                                             video.max_frames));
}

text::PromptOptions resolve_prompts(const EmbedOptions& options, const Model& model) {
  text::PromptOptions p = model.prompt_defaults();
  if (options.system_prompt) p.system_prompt = *options.system_prompt;
  if (options.query_prefix) p.query_prefix = *options.query_prefix;
  if (options.document_prefix) p.document_prefix = *options.document_prefix;
  return p;
}

int64_t resolved_audio_max_samples(const EmbedOptions& options, const Model& model) {
  return std::llround(options.audio_max_seconds * static_cast<double>(model.audio_preprocess().sampling_rate));
}

}  // namespace oe::model
