// The AMX bf16 GEMM (amx_gemm.h). Blocking, per thread (each thread owns a contiguous range of 32-column panels):
//   for each block of NB panels          (their K_CHUNK slice of W, NB·16 KiB, stays in L2)
//     for each chunk of K_CHUNK steps    (the accumulators go to a tile-blocked scratch between chunks)
//       for each 32-row block of x       (its K_CHUNK slice, 16 KiB, stays in L1 across the NB panels)
//         for each panel: 2×2 tiles of C += A·B over the chunk (4 tdpbf16ps per 4 tile loads)
//   The last chunk stores whole tiles straight into y; the bias, and the tiles at a ragged edge of y (through the
//   scratch), follow when the block is done.
// A chunk of 8 steps keeps the A block and the panel's B slice (16 + 16 KiB) inside the 48 KiB L1, where 16 steps
// (64 KiB) did not; the last chunk's stores into y replace a copy of every block out of the scratch. Together they
// took the decoder's down projection from 1,557 to 1,698 GFLOP/s end to end (docs/benchmarks.md).
// Gated weights (linear_silu_mul) form SiLU(gate)·up from each panel's last accumulator tiles instead.
#include "kernels/amx_gemm.h"

#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/vec_math.h"

namespace oe::kernels::amx {
namespace {

constexpr int64_t PANEL = 32;    // output columns per packed panel (two 16-column tiles)
constexpr int64_t STEP = 32;     // input elements per tile step (16 VNNI pairs)
constexpr int64_t TILE = 512;    // bf16 elements in one 16 × 32 tile (1 KiB)
constexpr int64_t C_TILE = 256;  // fp32 elements in one 16 × 16 accumulator tile
constexpr int64_t K_CHUNK = 8;   // tile steps per chunk: 256 input elements
constexpr int64_t NB = 8;        // panels per block
constexpr int64_t MIN_PARALLEL_FLOP = 1 << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grows a per-thread 64-byte aligned buffer.
template <typename T>
T* thread_buffer(AlignedPtr<T>& buf, size_t& size, size_t n) {
  if (n > size) {
    buf = aligned_array<T>(n);
    size = n;
  }
  return buf.get();
}

// Converts rows [r0, r1) of x to bf16 tiles: row i, step s at a[(i/16 · steps + s) · TILE + (i%16) · 32]; rows at
// or beyond m and columns at or beyond k are zeros.
__attribute__((target("avx512f,avx512bw"))) void convert_rows(const float* x, int64_t m, int64_t k, int64_t ldx,
                                                              int64_t steps, int64_t r0, int64_t r1, uint16_t* a) {
  for (int64_t i = r0; i < r1; ++i) {
    uint16_t* row = a + (i / 16 * steps) * TILE + (i % 16) * STEP;
    if (i >= m) {
      for (int64_t s = 0; s < steps; ++s) std::memset(row + s * TILE, 0, STEP * 2);
      continue;
    }
    const float* xr = x + i * ldx;
    for (int64_t s = 0; s < steps; ++s)
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t k0 = s * STEP + h * 16;
        const int64_t left = std::clamp<int64_t>(k - k0, 0, 16);
        const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1u);
        const __m512 v = _mm512_maskz_loadu_ps(mask, xr + k0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + s * TILE + h * 16), detail::to_bf16_bits_avx512(v));
      }
  }
}

// C (ROWS row tiles × two column tiles) += A (row tiles a0 and, for ROWS = 2, a1) · B (panel b) over steps
// [s0, s1); c[r][h] is the accumulator tile of row tile r and column half h. zero: start from 0 instead of loading
// them. y: where the result goes instead when this is the last chunk and the tiles are whole (row stride ldy
// floats), else nullptr. ROWS = 1 serves the last row tile when their number is odd.
template <int ROWS>
__attribute__((target("amx-tile,amx-bf16"))) void block(const uint16_t* a0, const uint16_t* a1, const uint16_t* b,
                                                        int64_t s0, int64_t s1, bool zero, float* const (&c)[2][2],
                                                        float* y, int64_t ldy) {
  static_assert(ROWS == 1 || ROWS == 2);
  if (zero) {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (ROWS == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  } else {
    _tile_loadd(0, c[0][0], 64);
    _tile_loadd(1, c[0][1], 64);
    if constexpr (ROWS == 2) {
      _tile_loadd(2, c[1][0], 64);
      _tile_loadd(3, c[1][1], 64);
    }
  }
  for (int64_t s = s0; s < s1; ++s) {
    _tile_loadd(4, a0 + s * TILE, 64);
    _tile_loadd(6, b + s * 2 * TILE, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b + s * 2 * TILE + TILE, 64);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (ROWS == 2) {
      _tile_loadd(5, a1 + s * TILE, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  if (y) {
    const int64_t stride = ldy * static_cast<int64_t>(sizeof(float));
    _tile_stored(0, y, stride);
    _tile_stored(1, y + 16, stride);
    if constexpr (ROWS == 2) {
      _tile_stored(2, y + 16 * ldy, stride);
      _tile_stored(3, y + 16 * ldy + 16, stride);
    }
    return;
  }
  _tile_stored(0, c[0][0], 64);
  _tile_stored(1, c[0][1], 64);
  if constexpr (ROWS == 2) {
    _tile_stored(2, c[1][0], 64);
    _tile_stored(3, c[1][1], 64);
  }
}

// One thread's share: panels [p0, p1) of the output, all rows. act (gated weights): where SiLU(gate)·up goes
// instead of y.
void run_panels(const PackedWeight& w, const float* bias, const uint16_t* a, int64_t m, int64_t p0, int64_t p1,
                float* y, int64_t ldy, float* act, int64_t ld_act) {
  if (p0 >= p1) return;
  const int64_t steps = ceil_div(w.k(), STEP), row_tiles = ceil_div(m, 16), n = w.n();
  thread_local AlignedPtr<float> scratch_buf;
  thread_local size_t scratch_size = 0;
  // Accumulator tile (row tile t, panel pl of the block, half h) at ((t · NB + pl) · 2 + h) · C_TILE.
  float* acc = thread_buffer(scratch_buf, scratch_size, static_cast<size_t>(row_tiles * NB * 2 * C_TILE));
  // Whether the row tiles from t (even) on, with panel p, are whole in y, so that the last chunk stores them there.
  auto whole = [&](int64_t t, int64_t p) {
    const int64_t rows = t + 1 < row_tiles ? 32 : 16;
    return !act && t * 16 + rows <= m && (p + 1) * PANEL <= n;
  };
  // Gated: SiLU(gate)·up of the accumulator tiles c[r][0] (gate columns 16p…) and c[r][1] (the same columns of
  // up) the last chunk just stored, with the biases added first as forward() adds them (one fp32 addition).
  const int64_t d = n / 2;
  auto gate_times_up = [&](int64_t t, int64_t p, float* const (&c)[2][2], int row_tiles_here) {
    const int64_t cols = std::min<int64_t>(16, d - p * 16);
    alignas(64) float g[16], u[16];
    for (int r = 0; r < row_tiles_here; ++r) {
      const int64_t rows = std::min<int64_t>(16, m - (t + r) * 16);
      for (int64_t i = 0; i < rows; ++i) {
        const float* gi = c[r][0] + i * 16;
        const float* ui = c[r][1] + i * 16;
        if (bias) {
          for (int64_t j = 0; j < cols; ++j) {
            g[j] = gi[j] + bias[p * 16 + j];
            u[j] = ui[j] + bias[d + p * 16 + j];
          }
          gi = g, ui = u;
        }
        detail::silu_mul_bf16_row(gi, ui, act + ((t + r) * 16 + i) * ld_act + p * 16, cols);
      }
    }
  };
  configure_tiles();
  for (int64_t pb = p0; pb < p1; pb += NB) {
    const int64_t pe = std::min(p1, pb + NB);
    for (int64_t s0 = 0; s0 < steps; s0 += K_CHUNK) {
      const int64_t s1 = std::min(steps, s0 + K_CHUNK);
      for (int64_t t = 0; t < row_tiles; t += 2) {
        const uint16_t* a0 = a + t * steps * TILE;
        for (int64_t p = pb; p < pe; ++p) {
          const uint16_t* b = w.data() + p * steps * 2 * TILE;
          float* c0 = acc + ((t * NB + (p - pb)) * 2) * C_TILE;
          float* out = s1 == steps && whole(t, p) ? y + t * 16 * ldy + p * PANEL : nullptr;
          const bool to_act = act && s1 == steps;
          if (t + 1 < row_tiles) {
            float* c1 = c0 + NB * 2 * C_TILE;  // row tile t + 1
            float* const c[2][2] = {{c0, c0 + C_TILE}, {c1, c1 + C_TILE}};
            block<2>(a0, a0 + steps * TILE, b, s0, s1, s0 == 0, c, out, ldy);
            if (to_act) gate_times_up(t, p, c, 2);
          } else {
            float* const c[2][2] = {{c0, c0 + C_TILE}, {nullptr, nullptr}};
            block<1>(a0, nullptr, b, s0, s1, s0 == 0, c, out, ldy);
            if (to_act) gate_times_up(t, p, c, 1);
          }
        }
      }
    }
    // The bias on the tiles stored in y, and the ragged tiles out of the scratch with it.
    if (act) continue;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = pb; p < pe; ++p) {
        float* dst = y + i * ldy + p * PANEL;
        if (whole(i / 32 * 2, p)) {
          if (bias)
            for (int64_t c = 0; c < PANEL; ++c) dst[c] += bias[p * PANEL + c];
          continue;
        }
        for (int64_t h = 0; h < 2; ++h) {
          const int64_t j0 = p * PANEL + h * 16;
          const int64_t cnt = std::min<int64_t>(16, n - j0);
          if (cnt <= 0) continue;
          const float* src = acc + (((i / 16) * NB + (p - pb)) * 2 + h) * C_TILE + (i % 16) * 16;
          if (bias)
            for (int64_t c = 0; c < cnt; ++c) dst[h * 16 + c] = src[c] + bias[j0 + c];
          else
            std::copy_n(src, cnt, dst + h * 16);
        }
      }
  }
  release_tiles();
}

}  // namespace

// The tile configuration (palette 1) as ldtilecfg reads it: all eight tiles 16 rows × 64 bytes. Kept as constant
// data: GCC 12's _tile_loadconfig tells the compiler that it reads only the first 8 bytes of its argument, so the
// stores that fill a configuration on the stack can be removed as dead (seen here: a fault in ldtilecfg).
struct TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
alignas(64) constexpr TileConfig FULL_TILES = {
    1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

__attribute__((target("amx-tile"))) void configure_tiles() { _tile_loadconfig(&FULL_TILES); }

__attribute__((target("amx-tile"))) void release_tiles() { _tile_release(); }

bool available() {
  static const bool ok = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16") ||
        !__builtin_cpu_supports("avx512bw"))
      return false;
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return ok;
}

PackedWeight::PackedWeight(const uint16_t* w_bf16, int64_t n, int64_t k, bool gated) : n_(n), k_(k), gated_(gated) {
  OE_CHECK(w_bf16 != nullptr && n > 0 && k > 0, "AMX weight of shape [{}, {}]", n, k);
  OE_CHECK(!gated || n % 2 == 0, "gated AMX weight of {} rows: gate and up must have as many rows each", n);
  // The source row of packed column c: itself, or for gated weights gate row 16q + i at column 32q + i and up row
  // 16q + i at column 32q + 16 + i; -1 (zeros) past the last row of gate or of up, or of W.
  auto source_row = [&](int64_t c) -> int64_t {
    if (!gated) return c < n ? c : -1;
    const int64_t q = c / PANEL, i = c % PANEL, d = n / 2, j = q * 16 + i % 16;
    if (j >= d) return -1;
    return i < 16 ? j : d + j;
  };
  const int64_t panels = ceil_div(n, PANEL), steps = ceil_div(k, STEP);
  data_ = aligned_array<uint16_t>(bytes() / 2);
  uint16_t* out = data_.get();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    uint16_t* panel = out + p * steps * 2 * TILE;
    std::memset(panel, 0, static_cast<size_t>(steps * 2 * TILE) * 2);
    for (int64_t col = 0; col < PANEL; ++col) {
      const int64_t src = source_row(p * PANEL + col);
      if (src < 0) continue;
      const uint16_t* row = w_bf16 + src * k;
      // Column col of the panel: tile half col/16, lane col%16; input e goes to step e/32, tile row (e%32)/2, pair
      // slot e%2.
      uint16_t* dst = panel + (col / 16) * TILE + (col % 16) * 2;
      for (int64_t e = 0; e < k; ++e) dst[(e / STEP) * 2 * TILE + (e % STEP / 2) * 32 + (e % 2)] = row[e];
    }
  }
}

size_t PackedWeight::bytes() const {
  return static_cast<size_t>(ceil_div(n_, PANEL) * ceil_div(k_, STEP) * 2 * TILE) * 2;
}

namespace {

// x to bf16 tiles (per thread, reused), then each thread's panels.
void run(const PackedWeight& w, const float* bias, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
         float* act, int64_t ld_act) {
  if (m <= 0) return;
  const int64_t k = w.k(), n = w.n(), steps = ceil_div(k, STEP), row_tiles = ceil_div(m, 16);
  const int64_t panels = ceil_div(n, PANEL);
  thread_local AlignedPtr<uint16_t> a_buf;
  thread_local size_t a_size = 0;
  uint16_t* a = thread_buffer(a_buf, a_size, static_cast<size_t>(row_tiles * steps * TILE));
  const bool parallel =
      !omp_in_parallel() &&
      2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) >= MIN_PARALLEL_FLOP;
  const int nthr = parallel ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(nthr)
  {
    const int id = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t rows = row_tiles * 16;
    convert_rows(x, m, k, ldx, steps, rows * id / nt, rows * (id + 1) / nt, a);
#pragma omp barrier
    run_panels(w, bias, a, m, panels * id / nt, panels * (id + 1) / nt, y, ldy, act, ld_act);
  }
}

}  // namespace

void linear(const PackedWeight& w, const float* bias, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy) {
  OE_CHECK(!w.gated(), "linear() on a gated AMX weight (its columns are interleaved): use linear_silu_mul");
  run(w, bias, x, m, ldx, y, ldy, nullptr, 0);
}

void linear_silu_mul(const PackedWeight& w, const float* bias, const float* x, int64_t m, int64_t ldx, float* act,
                     int64_t ld_act) {
  OE_CHECK(w.gated(), "linear_silu_mul on a weight not packed as gated");
  run(w, bias, x, m, ldx, nullptr, 0, act, ld_act);
}

}  // namespace oe::kernels::amx
