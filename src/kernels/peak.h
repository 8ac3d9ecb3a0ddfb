// Measures this machine's arithmetic peak with a register-only FMA loop (fp32 vfmadd / bf16 vdpbf16ps on zmm),
// so benchmarks can report percent of the *measured* peak. Runs on `threads` OpenMP threads for about `seconds`.
#pragma once

#include "kernels/compute.h"

namespace oe::kernels {

// GFLOP/s (one FMA = 2 FLOP; one vdpbf16ps lane = 2 multiply-adds = 4 FLOP). Returns 0 when the CPU lacks the ISA.
double measure_peak_gflops(Compute compute, int threads, double seconds = 0.5);

}  // namespace oe::kernels
