// Shared helpers of the model tests.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "common/run_command.h"
#include "common/temp_dir.h"

namespace oe::testing {

inline std::filesystem::path test_model(const char* name) { return std::filesystem::path(OE_TEST_MODELS) / name; }

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}
inline double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() ? cosine(a.data(), b.data(), a.size()) : -2.0;
}

}  // namespace oe::testing
