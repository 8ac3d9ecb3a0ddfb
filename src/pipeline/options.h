// Everything a user chooses about how items become vectors, in one place for every front end: the model's options
// (model/embed_options.h: prompts, attention, limits, media budgets, one of its four fusion modes, with the model
// card's defaults) and the one choice above the model, late fusion. The CLI binds its flags to these fields; an
// index records them (recorded_json) and its searches read them back (from_recorded).
#pragma once

#include <string>

#include "model/embed_options.h"
#include "model/model.h"

namespace oe::pipeline {

struct EmbedOptions {
  model::EmbedOptions model;
  // --fusion late: a video is embedded twice, its frames alone and its sound alone (two vectors, views.h), and
  // search ranks it by W · frames score + (1 − W) · sound score (search/late_fusion.h). Everything else, and every
  // query, is embedded with model.fusion (separate).
  bool late_fusion = false;

  // "separate", "interleaved", "video", "audio" or "late".
  std::string fusion_name() const;
  // Sets late_fusion and model.fusion from such a name; InvalidInput listing the choices.
  void set_fusion(const std::string& name);
  // The options of the queries of an index made with these: one vector each (no late fusion).
  EmbedOptions for_queries() const;
  // model.validate().
  void validate() const;

  // The canonical JSON of the settings that change vectors, as an index records them, resolved on `model` (its
  // prompts, the clip length in samples); two runs with equal strings make comparable vectors. Video settings are
  // written only when they differ from the defaults, so indexes made before videos keep matching.
  std::string recorded_json(const model::Model& model) const;
  // The options an index recorded (InvalidInput naming what cannot be read); every recorded value is set explicitly.
  static EmbedOptions from_recorded(const std::string& json, const model::Model& model);
  // The same with the checkpoint's audio feature settings, all that is read of the model (the audio clip is recorded
  // in samples at its sampling rate).
  static EmbedOptions from_recorded(const std::string& json, const media::AudioFeatureConfig& audio);
};

inline constexpr const char* FUSION_CHOICES = "separate, interleaved, video, audio or late";

}  // namespace oe::pipeline
