// Measures this machine's arithmetic peak with a register-only FMA loop (fp32 vfmadd / bf16 vdpbf16ps on zmm),
// so benchmarks can report percent of the *measured* peak. Runs on `threads` OpenMP threads for about `seconds`
// of each thread's CPU time, so that other processes on a shared machine lower the result little.
#pragma once

#include "kernels/compute.h"

namespace oe::kernels {

// GFLOP/s (one FMA = 2 FLOP; one vdpbf16ps lane = 2 multiply-adds = 4 FLOP). Returns 0 when the CPU lacks the ISA.
double measure_peak_gflops(Compute compute, int threads, double seconds = 0.5);

// The bf16 peak of the AMX tile unit (tdpbf16ps on 16×32 · 32×16 tiles, 16·16·32·2 FLOP each), which oneDNN's bf16
// matmuls use where present (Intel Sapphire Rapids and later): there the vdpbf16ps figure above is not the
// machine's bf16 peak. Returns 0 without AMX (or when the kernel refuses the tile state).
double measure_amx_peak_gflops(int threads, double seconds = 0.5);

// The rate of the same tile products when every step first loads its four operand tiles from L1 (a 2×2 block of
// accumulator tiles, the most reuse eight tiles allow: one 1 KiB tile load per tdpbf16ps). No GEMM on this tile
// unit can be faster, so it is the ceiling a GEMM's share of the peak is judged against. On the 2-vCPU Xeon the
// benchmarks ran on, it is about a third of measure_amx_peak_gflops: a tile load costs about three tile products
// there (docs/benchmarks.md, "Kernels"). Returns 0 without AMX.
double measure_amx_fed_gflops(int threads, double seconds = 0.5);

}  // namespace oe::kernels
