// How a long source is cut into the segments an index stores, each embedded alone so a hit points into its source:
// a text into windows of tokens with some overlap, an audio file into windows of seconds. Each segment keeps where it
// lies in its source (character offsets, or seconds) and, for text, a short preview.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "media/audio.h"
#include "text/tokenizer.h"

namespace oe::ingest {

// Cuts `text` into windows of at most `window` tokens (0: one window), consecutive windows sharing about `overlap`
// tokens, at word boundaries (a word is a whitespace run and the non-space run after it, as the pre-tokenizer
// splits). Offsets are byte offsets into `text`.
struct TextWindow {
  size_t begin = 0, end = 0;
};
std::vector<TextWindow> text_windows(const text::Tokenizer& tokenizer, const std::string& text, int64_t window,
                                     int64_t overlap);

// Code points in text[0, end).
int64_t char_offset(const std::string& text, size_t end);
// The first 160 code points of a text, whitespace runs collapsed to one space: what a hit shows of its segment.
std::string preview_of(std::string_view text);

// The fewest samples (at 16 kHz) that make one audio token: 3 mel frames of hop 160.
constexpr int64_t MIN_AUDIO_SAMPLES = 2 * 160 + 1;

// The sound of a file (an audio file or a video's track) cut at given times: take(start, end) gives the samples
// [round(start · rate), round(end · rate)) of the stream at the feature extractor's rate, fewer where the stream
// ends first. Cuts come in order (start and end non-decreasing; they may overlap), the stream is read once, and only
// the samples from the current cut's start on are held. (librosa.load(offset, duration), which the reference uses for
// a video's time range, resamples the native-rate slice alone: its samples differ near the cut edges, within the
// resampler's filter length.)
class AudioCuts {
 public:
  explicit AudioCuts(const std::filesystem::path& path);
  std::vector<float> take(double start_seconds, double end_seconds);

 private:
  media::AudioStream stream_;
  double rate_ = 0;
  std::vector<float> buffer_;  // samples from base_ on
  int64_t base_ = 0;
  bool ended_ = false;
};

// An audio file read once, window by window: `window_seconds` long, consecutive windows sharing `overlap_seconds`.
// Only one window's samples are held, whatever the file's length. Errors (of decoding) name the file.
class AudioWindows {
 public:
  AudioWindows(const std::filesystem::path& path, double window_seconds, double overlap_seconds);
  struct Window {
    double start = 0, end = 0;   // seconds into the file
    std::vector<float> samples;  // mono, at the feature extractor's rate
  };
  // The next window; false after the last one. The tail after a window that ended with the stream is dropped when it
  // is too short for one audio token (under 21 ms); a file without samples is InvalidInput.
  bool next(Window& out);

 private:
  std::filesystem::path path_;
  media::AudioStream stream_;
  double rate_ = 0;
  int64_t window_ = 0, step_ = 0;
  std::vector<float> buffer_;
  int64_t start_ = 0;
  bool first_ = true, done_ = false;
};

}  // namespace oe::ingest
