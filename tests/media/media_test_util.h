// Helpers shared by the tests of src/media: a temporary folder, file writing, running the Pillow oracle
// (tests/media/pil_oracle.py) and reading its .npy outputs.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/npy.h"
#include "common/temp_dir.h"
#include "media/image.h"

namespace oe::media::testing {

using ::oe::testing::TempDir;

inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << p;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Runs `pil_oracle.py <args>` with the numpy/Pillow Python (OE_PYTHON); the output goes to `log`. Returns true on
// success, else records a failure with the command and the log.
inline bool run_oracle(const std::string& args, const std::filesystem::path& log) {
  const std::string cmd = fmt::format("\"{}\" \"{}/tests/media/pil_oracle.py\" {} > \"{}\" 2>&1", OE_PYTHON,
                                      OE_SOURCE_DIR, args, log.string());
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ADD_FAILURE() << "the Pillow oracle failed (exit " << rc << "): " << cmd << "\n" << text.substr(0, 4000)
                  << "\n(it needs Python 3 with numpy and Pillow 9.4, Debian packages python3-numpy python3-pil)";
    return false;
  }
  return true;
}

// An [H, W, 3] uint8 .npy as an RgbImage.
inline RgbImage read_rgb_npy(const std::filesystem::path& p) {
  const Tensor t = io::read_npy(p);
  if (t.dtype() != DType::U8 || t.rank() != 3 || t.dim(2) != 3) {
    throw std::runtime_error(p.string() + ": expected a uint8 [H, W, 3] array, got " + shape_str(t.shape()));
  }
  RgbImage img;
  img.height = t.dim(0);
  img.width = t.dim(1);
  img.pixels.assign(t.ptr<uint8_t>(), t.ptr<uint8_t>() + t.numel());
  return img;
}

// Where two images differ first, and how many bytes differ ("" when identical).
inline std::string image_difference(const RgbImage& got, const RgbImage& want) {
  if (got.width != want.width || got.height != want.height) {
    return fmt::format("size {}x{}, expected {}x{}", got.width, got.height, want.width, want.height);
  }
  int64_t n_diff = 0, first = -1, max_abs = 0;
  for (size_t i = 0; i < want.pixels.size(); ++i) {
    const int d = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
    if (d == 0) continue;
    if (first < 0) first = static_cast<int64_t>(i);
    ++n_diff;
    max_abs = std::max<int64_t>(max_abs, d);
  }
  if (n_diff == 0) return "";
  const int64_t px = first / 3;
  return fmt::format("{} of {} bytes differ (max |diff| {}); first at x={} y={} channel {}: got {}, expected {}",
                     n_diff, want.pixels.size(), max_abs, px % want.width, px / want.width, first % 3,
                     got.pixels[first], want.pixels[first]);
}

// The largest absolute difference between two images of one size, or -1 when the sizes differ.
inline int max_abs_difference(const RgbImage& a, const RgbImage& b) {
  if (a.width != b.width || a.height != b.height || a.pixels.size() != b.pixels.size()) return -1;
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return m;
}

// A deterministic noise image.
inline RgbImage noise_image(int64_t width, int64_t height, uint32_t seed) {
  RgbImage img;
  img.width = width;
  img.height = height;
  img.pixels.resize(static_cast<size_t>(width * height * 3));
  uint32_t s = seed * 2654435761u + 1;
  for (uint8_t& v : img.pixels) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return img;
}

}  // namespace oe::media::testing
