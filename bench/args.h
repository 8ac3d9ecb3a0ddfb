// The flags of omni-embed-bench, shared by the parent that orchestrates the runs (bench_main.cc), the child that
// times rows (runner.cc) and the peers (peers.cc), and the two helpers every part needs to read the flags' comma
// lists and to pass values on to a command line.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "media/video.h"
#include "model/embed_options.h"

namespace oe::bench {

struct BenchArgs {
  std::string model;
  std::string tokens = "16,128,512,2048";
  std::string images = "448,1344";
  std::string audio = "10,30,128";  // seconds
  std::string video = "10,60";      // seconds of 640×360 video with sound
  std::string video_fusion = "separate,interleaved";
  bool video_sweep = false;         // the paper's sequence-length experiment on a 60 s clip
  // internal (sweep children): the video budget of this run (the model card's by default)
  int64_t video_max_pixels = media::VideoOptions{}.max_pixels;
  double fps = media::VideoOptions{}.fps;
  double audio_max_seconds = model::EmbedOptions{}.audio_max_seconds;
  std::string dtypes = "bf16,fp32";
  std::string bf16_gemm = "auto";   // comma-separated bf16 GEMM kernels (a child takes one)
  int threads = 0;
  int repeats = 3;
  std::string peers = "torch,llama.cpp";
  std::string report;
  bool profile = false;  // one more run per row with every operation timed (core/profile.h)
  bool child = false;  // internal: run one configuration and print JSON lines
};

// The non-empty parts of a comma-separated list.
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

// `s` as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace oe::bench
