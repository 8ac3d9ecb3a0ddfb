// Wall-clock timing helpers.
#pragma once

#include <chrono>

namespace oe {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Peak resident set size of this process in bytes (VmHWM), or 0 when unknown.
long long peak_rss_bytes();
// Current resident set size in bytes (VmRSS), or 0 when unknown.
long long current_rss_bytes();

}  // namespace oe
