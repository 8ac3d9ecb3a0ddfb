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
