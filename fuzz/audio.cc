// Fuzz target: an audio file (the seeds are WAV; FFmpeg probes the container, so other formats are reached too)
// through media::decode_audio, capped at one second at 16 kHz so that every input decodes fast, then the Whisper
// log-mel front end (media::log_mel) on the decoded samples with a one-second clip.
#include <cmath>
#include <cstdint>

#include "fuzz_util.h"
#include "media/audio.h"

namespace {

constexpr int64_t RATE = 16000;
constexpr int64_t MAX_SAMPLES = RATE;

void decode_and_featurize(const std::filesystem::path& path) {
  const oe::media::Audio audio = oe::media::decode_audio(path, MAX_SAMPLES, RATE);
  if (static_cast<int64_t>(audio.samples.size()) > MAX_SAMPLES) oe::fuzz::finding("decode_audio", "past the cap");
  oe::media::AudioFeatureConfig config;
  config.max_samples = MAX_SAMPLES;
  const oe::media::LogMel mel = oe::media::log_mel(audio.samples, config);
  if (mel.n_mel != config.n_mel || mel.n_frames != MAX_SAMPLES / config.hop_length ||
      mel.values.size() != static_cast<size_t>(mel.n_mel * mel.n_frames) || mel.valid_frames > mel.n_frames) {
    oe::fuzz::finding("log_mel", "the features' shape is wrong");
  }
  (void)oe::media::audio_token_count(mel.valid_frames);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = oe::fuzz::write_input("input.wav", data, size);
  oe::fuzz::expect_clean([&] { decode_and_featurize(path); }, path.string());
  return 0;
}
