// Helpers shared by the kernel tests: seeded random fills and bf16 rounding of whole arrays.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/compute.h"

namespace oe::kernels::testing {

// Uniform floats in [lo, hi).
inline std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Uniform integers in [lo, hi], as floats (exact in bf16 for |x| <= 256).
inline std::vector<float> random_ints(size_t n, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

// Rounds every element to bf16 in BF16 mode (inputs that "hold bf16 values").
inline std::vector<float> as_compute(std::vector<float> v, Compute c) {
  if (c == Compute::BF16)
    for (float& f : v) f = round_bf16(f);
  return v;
}

inline const Compute ALL_COMPUTE[] = {Compute::F32, Compute::BF16};

}  // namespace oe::kernels::testing
