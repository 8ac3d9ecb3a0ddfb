// The machine's arithmetic peak (peak.h): each OpenMP thread runs a register-only loop of 16 independent zmm
// accumulators (enough to cover the FMA latency of two pipes), so the loop is bound by FMA throughput only; the
// AMX variant keeps four independent accumulator tiles busy; the "fed" AMX variant also loads its operands.
#include "kernels/peak.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <ctime>
#include <vector>

#include "core/timer.h"
#include "kernels/amx_gemm.h"

namespace oe::kernels {
namespace {

constexpr int ACC = 16;             // independent accumulators
constexpr int64_t INNER = 1 << 14;  // iterations between clock reads

__attribute__((target("avx512f"))) float horizontal_sum(const __m512* acc) {
  __m512 s = acc[0];
  for (int i = 1; i < ACC; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0.0f;
  for (float f : lanes) total += f;
  return total;
}

// Runs `iters` iterations of ACC fp32 FMAs; returns a value that depends on every accumulator.
__attribute__((target("avx512f"))) float fma_loop(int64_t iters) {
  __m512 acc[ACC];
  for (int i = 0; i < ACC; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-3f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < ACC; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  return horizontal_sum(acc);
}

// Runs `iters` iterations of ACC bf16 dot-product-accumulates (vdpbf16ps).
__attribute__((target("avx512f,avx512bf16"))) float dpbf16_loop(int64_t iters) {
  __m512 acc[ACC];
  for (int i = 0; i < ACC; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < ACC; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  return horizontal_sum(acc);
}

// Runs `iters` iterations of 4 tdpbf16ps on tiles of 16 rows × 64 bytes: C0..C3 += A0|A1 · B0|B1.
__attribute__((target("amx-tile,amx-bf16"))) float amx_loop(int64_t iters) {
  amx::configure_tiles();
  alignas(64) uint16_t src[16 * 32];
  std::fill_n(src, 16 * 32, uint16_t{0x3a83});  // ≈ 1e-3 in bf16
  alignas(64) float dst[16 * 16];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, src, 64);
  _tile_loadd(5, src, 64);
  _tile_loadd(6, src, 64);
  _tile_loadd(7, src, 64);
  for (int64_t it = 0; it < iters; ++it) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, dst, 64);
  amx::release_tiles();
  return dst[0];
}

// The same four products, but with all four operand tiles loaded from L1 before each step, as any GEMM with eight
// tiles must (2×2 accumulators leave four tiles for operands: one tile load per tdpbf16ps). The operands cycle
// through FED_STEPS steps of 4 KiB (32 KiB, resident in L1). This is the ceiling of a GEMM fed from L1.
constexpr int64_t FED_STEPS = 8;
__attribute__((target("amx-tile,amx-bf16"))) float amx_fed_loop(int64_t iters) {
  amx::configure_tiles();
  thread_local AlignedPtr<uint16_t> operands;
  if (!operands) {
    operands = aligned_array<uint16_t>(static_cast<size_t>(FED_STEPS * 4 * 512));
    std::fill_n(operands.get(), FED_STEPS * 4 * 512, uint16_t{0x3a83});
  }
  const uint16_t* src = operands.get();
  alignas(64) float dst[16 * 16];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t it = 0; it < iters; it += FED_STEPS)
    for (int64_t s = 0; s < FED_STEPS; ++s) {
      const uint16_t* step = src + s * 4 * 512;
      _tile_loadd(4, step, 64);
      _tile_loadd(6, step + 1024, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(7, step + 1536, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, step + 512, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  _tile_stored(0, dst, 64);
  amx::release_tiles();
  return dst[0];
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Runs loop(inner) repeatedly on `threads` threads for about `seconds` of each thread's CPU time (at most 4× that
// in wall time) and returns the summed rate in GFLOP/s.
double rate_on_threads(float (*loop)(int64_t), double flop_per_iter, int64_t inner, int threads, double seconds) {
  std::vector<double> rate(static_cast<size_t>(threads), 0.0);
  float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    const double cpu0 = thread_cpu_seconds();
    Timer wall;
    int64_t iters = 0;
    double cpu = 0.0;
    do {
      sink += loop(inner);
      iters += inner;
      cpu = thread_cpu_seconds() - cpu0;
    } while (cpu < seconds && wall.seconds() < 4 * seconds);
    rate[static_cast<size_t>(omp_get_thread_num())] = static_cast<double>(iters) * flop_per_iter / cpu;
  }
  volatile float keep_alive = sink;  // the loops' results are used
  (void)keep_alive;
  double total = 0.0;
  for (double r : rate) total += r;
  return total * 1e-9;
}

// The best of TRIALS runs of rate_on_threads splitting `seconds` (as notes/cpu-gemm.md measured: best of 5), so
// that a moment of interference on a shared machine does not lower the peak.
double run_on_threads(float (*loop)(int64_t), double flop_per_iter, int64_t inner, int threads, double seconds) {
  constexpr int TRIALS = 5;
  threads = std::max(1, threads);
  loop(inner);  // warm up: wakes the wide units at their full clock
  double best = 0.0;
  for (int t = 0; t < TRIALS; ++t)
    best = std::max(best, rate_on_threads(loop, flop_per_iter, inner, threads, seconds / TRIALS));
  return best;
}

}  // namespace

double measure_peak_gflops(Compute compute, int threads, double seconds) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return 0.0;
  if (compute == Compute::F32) return run_on_threads(fma_loop, ACC * 16.0 * 2.0, INNER, threads, seconds);
  if (!__builtin_cpu_supports("avx512bf16")) return 0.0;
  return run_on_threads(dpbf16_loop, ACC * 16.0 * 4.0, INNER, threads, seconds);
}

double measure_amx_peak_gflops(int threads, double seconds) {
  if (!amx::available()) return 0.0;
  // Per iteration: 4 tile products of [16 × 32] · [32 × 16], 16·16·32 multiply-adds each.
  return run_on_threads(amx_loop, 4 * 16.0 * 16.0 * 32.0 * 2.0, INNER / 16, threads, seconds);
}

double measure_amx_fed_gflops(int threads, double seconds) {
  if (!amx::available()) return 0.0;
  return run_on_threads(amx_fed_loop, 4 * 16.0 * 16.0 * 32.0 * 2.0, INNER / 16, threads, seconds);
}

}  // namespace oe::kernels
