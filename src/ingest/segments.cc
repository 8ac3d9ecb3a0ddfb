#include "ingest/segments.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace oe::ingest {
namespace {

constexpr size_t PREVIEW_CHARS = 160;

bool is_utf8_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

int64_t char_offset(const std::string& text, size_t end) {
  int64_t n = 0;
  for (size_t i = 0; i < end; ++i) n += !is_utf8_continuation(static_cast<unsigned char>(text[i]));
  return n;
}

std::string preview_of(std::string_view text) {
  std::string out;
  size_t chars = 0;
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (!is_utf8_continuation(c)) {
      if (chars == PREVIEW_CHARS) break;
      if (space) {
        out += ' ';
        ++chars;
        space = false;
      }
      ++chars;
    }
    out += static_cast<char>(c);
  }
  return out;
}

std::vector<TextWindow> text_windows(const text::Tokenizer& tokenizer, const std::string& text, int64_t window,
                                     int64_t overlap) {
  if (window <= 0 || static_cast<int64_t>(tokenizer.encode(text).size()) <= window) return {{0, text.size()}};
  // Words: [whitespace][non-whitespace] runs, each with its token count.
  struct Word {
    size_t begin, end;
    int64_t tokens;
  };
  std::vector<Word> words;
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    while (j < text.size() && is_space(text[j])) ++j;
    while (j < text.size() && !is_space(text[j])) ++j;
    words.push_back({i, j, static_cast<int64_t>(tokenizer.encode(std::string_view(text).substr(i, j - i)).size())});
    i = j;
  }
  overlap = std::clamp<int64_t>(overlap, 0, window - 1);
  std::vector<TextWindow> out;
  for (size_t first = 0; first < words.size();) {
    size_t last = first;  // exclusive
    int64_t tokens = 0;
    while (last < words.size() && (last == first || tokens + words[last].tokens <= window))
      tokens += words[last++].tokens;
    out.push_back({words[first].begin, words[last - 1].end});
    if (last == words.size()) break;
    // The next window starts so that it repeats at most `overlap` tokens of this one, and always moves on.
    size_t next = last;
    int64_t shared = 0;
    while (next > first + 1 && shared + words[next - 1].tokens <= overlap) shared += words[--next].tokens;
    first = next;
  }
  return out;
}

AudioWindows::AudioWindows(const std::filesystem::path& path, double window_seconds, double overlap_seconds)
    : path_(path), stream_(path) {
  rate_ = static_cast<double>(stream_.target_rate());
  window_ = std::llround(window_seconds * rate_);
  step_ = window_ - std::llround(overlap_seconds * rate_);
  OE_CHECK(window_ > 0 && step_ > 0, "media window {} s, overlap {} s", window_seconds, overlap_seconds);
}

bool AudioWindows::next(Window& out) {
  if (done_) return false;
  if (!first_) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + step_);
    start_ += step_;
  }
  int64_t fresh = 0;
  while (static_cast<int64_t>(buffer_.size()) < window_) {
    const int64_t n = stream_.read(window_ - static_cast<int64_t>(buffer_.size()), buffer_);
    if (n == 0) break;
    fresh += n;
  }
  // The previous window ended with the stream; a tail too short for one audio token (under 21 ms) is dropped.
  if (!first_ && (fresh == 0 || static_cast<int64_t>(buffer_.size()) < MIN_AUDIO_SAMPLES)) {
    done_ = true;
    return false;
  }
  if (buffer_.empty()) throw InvalidInput(fmt::format("{}: the audio stream has no samples", path_.string()));
  first_ = false;
  done_ = static_cast<int64_t>(buffer_.size()) < window_;
  out.start = static_cast<double>(start_) / rate_;
  out.end = static_cast<double>(start_ + static_cast<int64_t>(buffer_.size())) / rate_;
  out.samples = buffer_;
  return true;
}

AudioCuts::AudioCuts(const std::filesystem::path& path) : stream_(path) {
  rate_ = static_cast<double>(stream_.target_rate());
}

std::vector<float> AudioCuts::take(double start_seconds, double end_seconds) {
  const int64_t begin = std::llround(start_seconds * rate_), end = std::llround(end_seconds * rate_);
  OE_CHECK(begin >= base_ && end >= begin, "audio cut {}..{} s after one from sample {}", start_seconds, end_seconds,
           base_);
  // What lies before `begin` is dropped: the samples held, then those never held (a gap between cuts) as they come.
  const int64_t held = std::min<int64_t>(begin - base_, std::ssize(buffer_));
  buffer_.erase(buffer_.begin(), buffer_.begin() + held);
  base_ += held;
  while (!ended_ && base_ < begin) {
    const int64_t n = stream_.read(begin - base_, buffer_);
    ended_ = n == 0;
    base_ += n;
    buffer_.clear();
  }
  if (base_ < begin) return {};  // the stream ended before the cut
  while (!ended_ && base_ + std::ssize(buffer_) < end)
    ended_ = stream_.read(end - base_ - std::ssize(buffer_), buffer_) == 0;
  const int64_t have = std::min<int64_t>(std::ssize(buffer_), end - base_);
  return {buffer_.begin(), buffer_.begin() + have};
}

}  // namespace oe::ingest
