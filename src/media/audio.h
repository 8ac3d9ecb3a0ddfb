// Audio: decoding any audio file (or the audio track of a video) into 16 kHz mono float32 samples the way the
// reference loader does (librosa.load(path, sr=16000): the channel mean, then libsoxr's "HQ" resampler), and the
// Whisper log-mel features of spec qwen25-omni-thinker.md §6.3.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace oe::media {

// ---------------------------------------------------------------------------------------------------------------
// Decoding and resampling (audio_decode.cc)

// What a stream holds, from its container and codec.
struct AudioStreamInfo {
  std::string codec;          // FFmpeg's codec name ("pcm_s16le", "mp3", ...)
  int64_t source_rate = 0;    // the stream's own sample rate
  int64_t source_channels = 0;
  double duration_seconds = 0;  // the container's estimate; 0 when it does not say
};

// Reads an audio stream incrementally: decodes, down-mixes to mono (mean of the channels in float32, channel by
// channel, as numpy's mean over the channel axis) and resamples to `target_rate` with libsoxr (quality HQ, as
// python-soxr's default used by librosa). A stream already at the target rate is passed through without resampling,
// so a 16 kHz mono file gives its samples bit for bit. Memory stays bounded by what is asked for, whatever the
// file's length.
class AudioStream {
 public:
  // Opens the best audio stream of `path` (any container FFmpeg reads, videos included). Throws InvalidInput naming
  // the file when it cannot be parsed or has no audio stream, IoError when it cannot be opened.
  explicit AudioStream(const std::filesystem::path& path, int64_t target_rate = 16000);
  ~AudioStream();
  AudioStream(const AudioStream&) = delete;
  AudioStream& operator=(const AudioStream&) = delete;

  // Appends up to `n` further samples (mono, target rate) to `out`; returns how many, 0 once the stream is done.
  // At the end of the stream the total length is made exactly ceil(L · target / source) for L source samples, as
  // librosa does after resampling. Throws InvalidInput naming the file for corrupt data (a truncated file ends
  // early without an error when FFmpeg can decode up to the cut, as the reference loader would).
  int64_t read(int64_t n, std::vector<float>& out);

  const AudioStreamInfo& info() const { return info_; }
  int64_t target_rate() const { return target_rate_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AudioStreamInfo info_;
  int64_t target_rate_ = 16000;
};

struct Audio {
  std::vector<float> samples;  // mono, float32, at sample_rate
  int64_t sample_rate = 16000;
  AudioStreamInfo info;
  bool truncated = false;      // more audio followed `max_samples`; it was not decoded
};

// Decodes the whole file, or its first `max_samples` samples at the target rate when max_samples > 0 (the rest is
// not decoded; memory does not grow with the file). A stream with no samples gives an empty Audio (callers that
// need audio refuse it with a message naming the file).
Audio decode_audio(const std::filesystem::path& path, int64_t max_samples = 0, int64_t target_rate = 16000);

// The resampling step alone, on a whole mono signal (one-shot, with librosa's final length fix
// ceil(n · out_rate / in_rate)). The identity when the rates are equal.
std::vector<float> resample(std::span<const float> mono, int64_t in_rate, int64_t out_rate);

// ---------------------------------------------------------------------------------------------------------------
// Log-mel features (audio_features.cc)

// WhisperFeatureExtractor's settings (the checkpoint's preprocessor_config.json; the defaults are the Omni ones).
struct AudioFeatureConfig {
  int64_t n_mel = 128;          // feature_size
  int64_t sampling_rate = 16000;
  int64_t n_fft = 400;
  int64_t hop_length = 160;
  // The clip length features are computed on (padding="max_length"): longer audio is truncated, shorter audio is
  // zero-padded to it. preprocessor_config's n_samples is 4,800,000 (300 s); the embedding model's card passes
  // max_length 2,048,000 (128 s), which the embedder uses by default.
  int64_t max_samples = 4'800'000;
};
// InvalidInput ("audio feature settings: ...") naming the key that no front end could run with.
void validate(const AudioFeatureConfig& config);

struct LogMel {
  int64_t n_mel = 0;
  int64_t n_frames = 0;      // max_samples / hop_length: the padded clip's frames (the last STFT frame dropped)
  int64_t valid_frames = 0;  // T = ceil(min(L, max_samples) / hop_length): the frames the model reads
  std::vector<float> values;  // [n_mel, n_frames], row-major
};

// The features of spec §6.3 for one clip of `samples` (mono, at config.sampling_rate): truncate or zero-pad to
// max_samples, periodic Hann STFT with reflect padding, power, Slaney mel filter bank, log10 with a 1e-10 floor,
// per-clip floor at max − 8, (x + 4) / 4. Computed in double precision (the reference's numpy path is float64).
LogMel log_mel(std::span<const float> samples, const AudioFeatureConfig& config);

// The Slaney-normalised mel filter bank [n_fft/2 + 1, n_mel] (float64 as the reference builds it).
std::vector<double> mel_filter_bank(const AudioFeatureConfig& config);

// Valid frames for L samples, and the number of <|AUDIO|> tokens the model makes of T frames:
// ((T − 1)//2 + 1 − 2)//2 + 1, 0 when T < 3 (such audio gives no token and is refused by the embedder).
int64_t audio_valid_frames(int64_t n_samples, const AudioFeatureConfig& config);
int64_t audio_token_count(int64_t valid_frames);

}  // namespace oe::media
