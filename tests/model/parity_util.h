// Helpers of the parity tests against the independent numpy reference (tools/reference/text_embed.py): reading its
// .npy outputs, comparing arrays, and running it on what the engine prepared.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/npy.h"
#include "model/embedder.h"
#include "test_util.h"

namespace oe::testing {

inline std::vector<float> npy_floats(const std::filesystem::path& p) {
  Tensor t = io::read_npy(p);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.data(), t.dtype(), out.size(), out.data());
  return out;
}

inline std::vector<int64_t> npy_ints(const std::filesystem::path& p) {
  Tensor t = io::read_npy(p);
  EXPECT_EQ(t.dtype(), DType::I64) << p;
  return std::vector<int64_t>(t.ptr<int64_t>(), t.ptr<int64_t>() + t.numel());
}

// max |a − b| / max |b|; a huge value when the sizes differ.
inline double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 1e30;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

// Dumps `p` into `work` and runs the reference on it; returns the folder of its outputs.
inline std::filesystem::path run_reference(const std::filesystem::path& model, const model::PreparedInput& p,
                                           const std::filesystem::path& work, const char* precision) {
  model::write_prepared_input(work, p);
  std::filesystem::path out = work / fmt::format("ref-{}", precision);
  std::string cmd = fmt::format("{} {}/tools/reference/text_embed.py --model {} --inputs {} --out {} --precision {}",
                                OE_PYTHON, OE_SOURCE_DIR, model.string(), work.string(), out.string(), precision);
  std::string log;
  EXPECT_EQ(run_command(cmd, &log), 0) << cmd << "\n" << log;
  return out;
}

}  // namespace oe::testing
