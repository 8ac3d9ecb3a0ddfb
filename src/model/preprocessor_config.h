// The checkpoint's preprocessor_config.json: the image processor's settings and the Whisper feature extractor's, in
// one file (Qwen2.5-Omni's processor). Every key is optional and a missing file gives the reference's defaults
// (media/image.h VisionPreprocessConfig, media/audio.h AudioFeatureConfig).
#pragma once

#include <filesystem>

#include "media/audio.h"
#include "media/image.h"

namespace oe::model {

struct PreprocessorConfig {
  // patch_size, temporal_patch_size, merge_size, min_pixels / max_pixels (or newer transformers' size.shortest_edge
  // / size.longest_edge), image_mean, image_std
  media::VisionPreprocessConfig vision;
  // feature_size, sampling_rate, n_fft, hop_length, n_samples
  media::AudioFeatureConfig audio;

  // Reads `dir`/preprocessor_config.json. InvalidInput naming the file and the key for a value that is not valid.
  static PreprocessorConfig load(const std::filesystem::path& dir);
};

}  // namespace oe::model
