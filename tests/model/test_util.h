// Shared helpers of the model tests.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

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

// Runs a shell command; returns its exit status and stores stdout+stderr.
inline int run_command(const std::string& cmd, std::string* output = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace oe::testing
