// measure_peak_gflops / measure_amx_peak_gflops / measure_amx_fed_gflops: the measurement runs, counts, and reports 0 without the ISA.
// Its value is machine-, load- and build-dependent (an unoptimised sanitizer build runs the loop far slower), so
// only "measured something" is asserted: timings are the benchmarks' business, not the tests'.
#include "kernels/peak.h"

#include <gtest/gtest.h>

#include <cmath>

namespace oe::kernels {
namespace {

void expect_plausible(double gflops, bool supported, const char* what) {
  if (!supported) {
    EXPECT_EQ(gflops, 0.0) << what;
    return;
  }
  EXPECT_TRUE(std::isfinite(gflops)) << what;
  EXPECT_GT(gflops, 0.0) << what;
}

TEST(Peak, PositiveWhereTheIsaExistsElseZero) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  expect_plausible(measure_peak_gflops(Compute::F32, 1, 0.05), avx512, "fp32");
  expect_plausible(measure_peak_gflops(Compute::BF16, 1, 0.05), avx512 && __builtin_cpu_supports("avx512bf16"), "bf16");
  const double amx = measure_amx_peak_gflops(1, 0.05);
  const double fed = measure_amx_fed_gflops(1, 0.05);
  if (!__builtin_cpu_supports("amx-bf16")) {
    EXPECT_EQ(amx, 0.0);
    EXPECT_EQ(fed, 0.0);
  } else if (amx > 0.0) {  // 0 is allowed where the kernel refuses the tile state
    expect_plausible(amx, true, "amx");
    expect_plausible(fed, true, "amx fed from L1");
  }
}

}  // namespace
}  // namespace oe::kernels
