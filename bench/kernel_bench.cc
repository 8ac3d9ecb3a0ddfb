// Kernel benchmark: GFLOP/s and percent of the measured peak for the decoder's and the vision tower's GEMM shapes
// (PackedLinear) and for bidirectional attention, in bf16 and fp32. On a CPU with AMX every bf16 GEMM runs twice,
// back to back: on oneDNN and on the project's AMX kernel (kernels/amx_gemm.h), so the two compare in one run.
//
//   kernel_bench [--threads N] [--reps R] [--gemm-only | --attention-only] [--dtype bf16|f32]
//                [--bf16-gemm onednn|amx|onednn,amx]
//
// Every case is first checked against a double-precision computation of sampled outputs, then warmed up, then timed
// R times; the median and the min–max spread of the wall time are printed. Percent of peak uses the peaks measured
// by kernels/peak.h on the same threads: fp32 against the vfmadd peak, bf16 against the vdpbf16ps peak and, on CPUs
// with AMX (where oneDNN's bf16 kernels run on the tile unit), also against the AMX peak.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"

#ifndef OE_GIT_COMMIT
#define OE_GIT_COMMIT "unknown"
#endif

namespace {

using oe::kernels::Compute;

struct Peaks {
  double fp32 = 0, bf16 = 0, amx = 0, amx_fed = 0;
};

// On a CPU with AMX, the tile peak and the fed-tile ceiling measured right before and right after each timed bf16
// row (their means), so that the VM's drift over the run cancels out of the row's percentages.
Peaks around(const Peaks& base, int threads, const std::function<void()>& timed) {
  if (base.amx <= 0) {
    timed();
    return base;
  }
  Peaks p = base;
  const double peak0 = oe::kernels::measure_amx_peak_gflops(threads, 0.1);
  const double fed0 = oe::kernels::measure_amx_fed_gflops(threads, 0.1);
  timed();
  p.amx = 0.5 * (peak0 + oe::kernels::measure_amx_peak_gflops(threads, 0.1));
  p.amx_fed = 0.5 * (fed0 + oe::kernels::measure_amx_fed_gflops(threads, 0.1));
  return p;
}

struct Timing {
  double median = 0, min = 0, max = 0;
};

Timing time_runs(const std::function<void()>& run, int reps) {
  run();  // warm-up (primitive creation, first touch)
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    oe::Timer timer;
    run();
    t.push_back(timer.seconds());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), t.back()};
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

std::vector<float> random_bf16_values(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = oe::round_bf16(dist(rng));
  return v;
}

void print_row(const std::string& op, Compute c, const std::string& shape, double flop, const Timing& t,
               const Peaks& pk) {
  const double gflops = flop / t.median * 1e-9;
  const double peak = c == Compute::F32 ? pk.fp32 : pk.bf16;
  std::printf("%-13s %-5s %-26s %9.2f %9.2f..%-9.2f %8.1f %7.1f%%", op.c_str(), oe::kernels::compute_name(c),
              shape.c_str(), t.median * 1e3, t.min * 1e3, t.max * 1e3, gflops, peak > 0 ? 100.0 * gflops / peak : 0.0);
  if (c == Compute::BF16 && pk.amx > 0)
    std::printf(" %7.1f%% %7.1f%%", 100.0 * gflops / pk.amx, 100.0 * gflops / pk.amx_fed);
  std::printf("\n");
}

// Times the runs interleaved, rep by rep (each warmed up first), so that a slow phase of a shared machine falls on
// all of them alike.
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& runs, int reps) {
  std::vector<std::vector<double>> t(runs.size());
  for (const auto& run : runs) run();
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < runs.size(); ++i) {
      oe::Timer timer;
      runs[i]();
      t[i].push_back(timer.seconds());
    }
  std::vector<Timing> out;
  for (auto& v : t) {
    std::sort(v.begin(), v.end());
    out.push_back({v[v.size() / 2], v.front(), v.back()});
  }
  return out;
}

// y = x·Wᵀ for W [n, k] given as bf16 (as in the checkpoint), M rows, on each of the given bf16 kernels (timed
// interleaved); returns false when a sampled output is off.
bool bench_linear(int64_t m, int64_t n, int64_t k, Compute c, const std::vector<oe::kernels::Bf16Gemm>& kernels,
                  int reps, const Peaks& base, int threads) {
  std::vector<float> w = random_bf16_values(static_cast<size_t>(n * k), -0.05f, 0.05f, 1);
  std::vector<uint16_t> w_bf16(w.size());
  oe::f32_to_bf16_array(w.data(), w.size(), w_bf16.data());
  std::vector<float> x = random_bf16_values(static_cast<size_t>(m * k), -1.0f, 1.0f, 2);
  std::vector<float> y(static_cast<size_t>(m * n));
  std::vector<oe::kernels::PackedLinear> layers;
  for (auto g : kernels) layers.emplace_back(w_bf16.data(), oe::DType::BF16, n, k, nullptr, oe::DType::F32, c, g);
  std::vector<std::function<void()>> runs;
  for (const auto& lin : layers) {
    lin.forward(x.data(), m, y.data());
    std::mt19937 rng(3);
    for (int s = 0; s < 32; ++s) {  // fp32 accumulation bound: k · 2^-24 · Σ|x·w|
      const int64_t i = rng() % m, o = rng() % n;
      double acc = 0, mag = 0;
      for (int64_t j = 0; j < k; ++j)
        acc += static_cast<double>(x[i * k + j]) * w[o * k + j], mag += std::fabs(x[i * k + j] * w[o * k + j]);
      if (std::fabs(y[i * n + o] - acc) > 1.1 * k * std::ldexp(1.0, -24) * mag + 1e-30) {
        std::printf("linear/%s %ldx%ldx%ld %s: output [%ld, %ld] is %g, expected %g\n", lin.kernel_name(),
                    static_cast<long>(m), static_cast<long>(n), static_cast<long>(k), oe::kernels::compute_name(c),
                    static_cast<long>(i), static_cast<long>(o), y[i * n + o], acc);
        return false;
      }
    }
    runs.push_back([&lin, &x, &y, m] { lin.forward(x.data(), m, y.data()); });
  }
  std::vector<Timing> t;
  const Peaks pk = c == Compute::BF16 ? around(base, threads, [&] { t = time_interleaved(runs, reps); }) : base;
  if (c != Compute::BF16) t = time_interleaved(runs, reps);
  for (size_t i = 0; i < layers.size(); ++i)
    print_row(std::string("linear/") + layers[i].kernel_name(), c,
              "M=" + std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k), 2.0 * m * n * k, t[i],
              pk);
  return true;
}

// One bidirectional segment of S tokens, 16 query heads, 2 kv heads, d_head 128 (the decoder's attention).
bool bench_attention(int64_t s, Compute c, int reps, const Peaks& pk) {
  const int64_t h = 16, kv = 2, d = 128;
  oe::kernels::AttentionParams p;
  p.n_tokens = s;
  p.n_heads = h;
  p.n_kv_heads = kv;
  p.d_head = d;
  p.scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> q = random_bf16_values(static_cast<size_t>(s * h * d), -2.0f, 2.0f, 4);
  std::vector<float> k = random_bf16_values(static_cast<size_t>(s * kv * d), -2.0f, 2.0f, 5);
  std::vector<float> v = random_bf16_values(static_cast<size_t>(s * kv * d), -1.0f, 1.0f, 6);
  std::vector<float> out(static_cast<size_t>(s * h * d));
  auto run = [&] {
    oe::kernels::attention(q.data(), h * d, k.data(), kv * d, v.data(), kv * d, out.data(), h * d, p, c);
  };
  run();
  std::mt19937 rng(7);
  std::vector<double> sc(static_cast<size_t>(s));
  for (int sample = 0; sample < 8; ++sample) {  // a query row in double; bf16 rounding flips allow ~1e-3
    const int64_t i = rng() % s, hh = rng() % h, g = hh / (h / kv);
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < s; ++j) {
      double dot = 0;
      for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(q[(i * h + hh) * d + e]) * k[(j * kv + g) * d + e];
      sc[j] = dot * p.scale;
      mx = std::max(mx, sc[j]);
    }
    for (double& x : sc) sum += (x = std::exp(x - mx));
    for (int64_t e = 0; e < d; ++e) {
      double acc = 0;
      for (int64_t j = 0; j < s; ++j) {
        const double pj = c == Compute::BF16 ? oe::round_bf16(static_cast<float>(sc[j] / sum)) : sc[j] / sum;
        acc += pj * v[(j * kv + g) * d + e];
      }
      if (std::fabs(out[(i * h + hh) * d + e] - acc) > 2e-3) {
        std::printf("attention S=%ld %s: output [%ld, head %ld, %ld] is %g, expected %g\n", static_cast<long>(s),
                    oe::kernels::compute_name(c), static_cast<long>(i), static_cast<long>(hh), static_cast<long>(e),
                    out[(i * h + hh) * d + e], acc);
        return false;
      }
    }
  }
  Timing t = time_runs(run, reps);
  print_row("attention", c, "S=" + std::to_string(s) + " H=16/2 d=128 bidir", 4.0 * s * s * d * h, t, pk);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 5;
  bool gemm = true, attn = true;
  std::vector<Compute> dtypes{Compute::BF16, Compute::F32};
  std::string bf16_gemm_arg;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--gemm-only"))
      attn = false;
    else if (!std::strcmp(argv[i], "--attention-only"))
      gemm = false;
    else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc && !std::strcmp(argv[i + 1], "bf16"))
      dtypes = {Compute::BF16}, ++i;
    else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc && !std::strcmp(argv[i + 1], "f32"))
      dtypes = {Compute::F32}, ++i;
    else if (!std::strcmp(argv[i], "--bf16-gemm") && i + 1 < argc)
      bf16_gemm_arg = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--reps R] [--gemm-only | --attention-only] [--dtype bf16|f32] "
                   "[--bf16-gemm onednn|amx|onednn,amx]\n",
                   argv[0]);
      return 2;
    }
  }
  oe::set_num_threads(threads);
  Peaks pk;
  pk.fp32 = oe::kernels::measure_peak_gflops(Compute::F32, threads);
  pk.bf16 = oe::kernels::measure_peak_gflops(Compute::BF16, threads);
  pk.amx = oe::kernels::measure_amx_peak_gflops(threads);
  pk.amx_fed = oe::kernels::measure_amx_fed_gflops(threads);
  std::printf("machine: %s, %d threads (of %d); commit %s\n", cpu_model().c_str(), threads, oe::hardware_threads(),
              OE_GIT_COMMIT);
  std::printf("measured peak: fp32 %.0f GFLOP/s, bf16 (vdpbf16ps) %.0f GFLOP/s", pk.fp32, pk.bf16);
  if (pk.amx > 0)
    std::printf(", bf16 AMX %.0f GFLOP/s, AMX fed from L1 (the ceiling of a GEMM) %.0f GFLOP/s (%.0f%% of AMX)",
                pk.amx, pk.amx_fed, 100.0 * pk.amx_fed / pk.amx);
  std::printf("\n%-13s %-5s %-26s %9s %20s %8s %8s%s\n", "op", "dtype", "shape", "median ms", "min..max ms", "GFLOP/s",
              "%peak", pk.amx > 0 ? " %AMXpeak  %AMXfed" : "");
  if (pk.amx > 0)
    std::printf("(bf16 rows: AMX peak and fed ceiling measured again right before and after each row)\n");
  bool ok = true;
  // {N, K}: the decoder's output projection, stacked q·k·v (2048 + 2·256), stacked gate·up (2·11008) and down
  // projection; then the vision tower's stacked q·k·v (3·1280), MLP up and MLP down.
  const int64_t shapes[][2] = {{2048, 2048}, {2560, 2048}, {22016, 2048}, {2048, 11008},
                               {3840, 1280}, {3420, 1280}, {1280, 3420}};
  using oe::kernels::Bf16Gemm;
  std::vector<Bf16Gemm> bf16_kernels{Bf16Gemm::OneDnn};
  if (pk.amx > 0) bf16_kernels.push_back(Bf16Gemm::Amx);
  if (!bf16_gemm_arg.empty()) {
    bf16_kernels.clear();
    try {
      for (size_t b = 0; b <= bf16_gemm_arg.size();) {
        const size_t e = std::min(bf16_gemm_arg.find(',', b), bf16_gemm_arg.size());
        bf16_kernels.push_back(
            oe::kernels::resolve_bf16_gemm(oe::kernels::parse_bf16_gemm(bf16_gemm_arg.substr(b, e - b))));
        b = e + 1;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kernel_bench: --bf16-gemm %s: %s\n", bf16_gemm_arg.c_str(), e.what());
      return 2;
    }
  }
  for (Compute c : dtypes) {
    if (gemm)
      for (int64_t m : {512, 2048})
        for (const auto& nk : shapes)
          ok = bench_linear(m, nk[0], nk[1], c, c == Compute::BF16 ? bf16_kernels : std::vector{Bf16Gemm::Auto}, reps,
                            pk, threads) &&
               ok;
    if (attn)
      for (int64_t s : {512, 2048}) ok = bench_attention(s, c, reps, pk) && ok;
  }
  return ok ? 0 : 1;
}
