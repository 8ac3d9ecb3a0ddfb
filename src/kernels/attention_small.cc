// The direct attention path for small segments (attention_internal.h): one (segment, head) at a time with
// register-blocked AVX-512 fp32 micro-kernels — 4 query rows × up to 64 columns of accumulators — on copies of
// Q, Kᵀ and V in per-thread scratch. In BF16 mode the copies are rounded to bf16, so every product is exact in fp32
// and accumulates in fp32 as in the bf16 GEMM path. Without AVX-512 the GEMM path handles every segment.
#include <algorithm>
#include <atomic>

#include "kernels/attention_internal.h"
#include "kernels/vec_math.h"

namespace oe::kernels::detail {

namespace {
std::atomic<int64_t> small_limit{SMALL_SEGMENT_MAX};
}  // namespace

void set_small_segment_limit(int64_t limit) { small_limit.store(std::min(limit, SMALL_SEGMENT_MAX)); }

#ifdef __AVX512F__
namespace {

constexpr int64_t ROWS = 4;  // query rows per micro-tile

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// s[r, 0..16·NC) = Σ_e q[r, e]·kt[e, 0..16·NC) for the 4 rows r of q (row stride d); kt row stride lp.
template <int NC>
void score_tile(const float* q, int64_t d, const float* kt, int64_t lp, float* s) {
  __m512 acc[ROWS][NC];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int64_t e = 0; e < d; ++e) {
    __m512 kv[NC];
    for (int c = 0; c < NC; ++c) kv[c] = _mm512_loadu_ps(kt + e * lp + 16 * c);
    for (int r = 0; r < ROWS; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * d + e]);
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_fmadd_ps(qb, kv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(s + r * lp + 16 * c, acc[r][c]);
}

// o[r, 0..16·NC) = Σ_{j < n_keys} p[r, j]·v[j, 0..16·NC) for the first `rows` of 4 rows of p (row stride lp);
// v row stride d; o row stride ldo.
template <int NC>
void pv_tile(const float* p, int64_t lp, int64_t n_keys, const float* v, int64_t d, float* o, int64_t ldo,
             int64_t rows) {
  __m512 acc[ROWS][NC];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    __m512 vv[NC];
    for (int c = 0; c < NC; ++c) vv[c] = _mm512_loadu_ps(v + j * d + 16 * c);
    for (int r = 0; r < ROWS; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * lp + j]);
      for (int c = 0; c < NC; ++c) acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]);
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < NC; ++c) _mm512_storeu_ps(o + r * ldo + 16 * c, acc[r][c]);
}

// dst[0, n) = src[0, n), rounded to bf16 when bf16.
void copy_row(const float* src, int64_t n, bool bf16, float* dst) {
  if (bf16) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = round_bf16_fast(src[i]);
  } else {
    std::copy_n(src, n, dst);
  }
}

void score_tiles(const float* q, int64_t d, const float* kt, int64_t lp, float* s) {
  for (int64_t j0 = 0; j0 < lp; j0 += 64) {
    switch (std::min<int64_t>(4, (lp - j0) / 16)) {
      case 4: score_tile<4>(q, d, kt + j0, lp, s + j0); break;
      case 3: score_tile<3>(q, d, kt + j0, lp, s + j0); break;
      case 2: score_tile<2>(q, d, kt + j0, lp, s + j0); break;
      default: score_tile<1>(q, d, kt + j0, lp, s + j0); break;
    }
  }
}

void pv_tiles(const float* p, int64_t lp, int64_t n_keys, const float* v, int64_t d, float* o, int64_t ldo,
              int64_t rows) {
  for (int64_t c0 = 0; c0 < d; c0 += 64) {
    switch (std::min<int64_t>(4, (d - c0) / 16)) {
      case 4: pv_tile<4>(p, lp, n_keys, v + c0, d, o + c0, ldo, rows); break;
      case 3: pv_tile<3>(p, lp, n_keys, v + c0, d, o + c0, ldo, rows); break;
      case 2: pv_tile<2>(p, lp, n_keys, v + c0, d, o + c0, ldo, rows); break;
      default: pv_tile<1>(p, lp, n_keys, v + c0, d, o + c0, ldo, rows); break;
    }
  }
}

}  // namespace

bool small_segment_supported(int64_t len, int64_t d_head, bool bf16) {
  return len <= std::min(small_limit.load(), bf16 ? SMALL_SEGMENT_MAX_BF16 : SMALL_SEGMENT_MAX) && d_head % 16 == 0;
}

size_t small_segment_scratch_bytes(int64_t max_len, int64_t d_head) {
  const int64_t l4 = round_up(max_len, ROWS), lp = round_up(max_len, 16);
  return static_cast<size_t>(l4 * d_head + d_head * lp + 2 * max_len * d_head + l4 * lp) * sizeof(float);
}

void small_segment_head(const SmallSegment& a, void* scratch) {
  const int64_t len = a.len, d = a.d_head, l4 = round_up(len, ROWS), lp = round_up(len, 16);
  float* qs = static_cast<float*>(scratch);  // [l4, d], rows from len on zero
  float* kt = qs + l4 * d;                   // [d, lp], Kᵀ, columns from len on zero
  float* vs = kt + d * lp;                   // [len, d]
  float* ks = vs + len * d;                  // [len, d], K rows before the transposition
  float* s = ks + len * d;                   // [l4, lp] scores, then probabilities
  // Copies (rounded to bf16 in BF16 mode); K through a row-major staging copy, then transposed.
  for (int64_t i = 0; i < len; ++i) {
    copy_row(a.q + i * a.ldq, d, a.bf16, qs + i * d);
    copy_row(a.k + i * a.ldk, d, a.bf16, ks + i * d);
    copy_row(a.v + i * a.ldv, d, a.bf16, vs + i * d);
  }
  std::fill(qs + len * d, qs + l4 * d, 0.0f);
  for (int64_t e = 0; e < d; ++e) {
    float* kt_row = kt + e * lp;
    for (int64_t i = 0; i < len; ++i) kt_row[i] = ks[i * d + e];
    std::fill(kt_row + len, kt_row + lp, 0.0f);
  }

  for (int64_t r0 = 0; r0 < l4; r0 += ROWS) score_tiles(qs + r0 * d, d, kt, lp, s + r0 * lp);
  const ProbOut mode = a.bf16 ? ProbOut::BF16_FLOAT : ProbOut::F32;
  for (int64_t i = 0; i < len; ++i) softmax_row(s + i * lp, len, a.causal ? i + 1 : len, a.scale, mode, nullptr);
  for (int64_t r0 = 0; r0 < len; r0 += ROWS) {
    const int64_t rows = std::min(ROWS, len - r0);
    const int64_t n_keys = a.causal ? r0 + rows : len;  // later keys have p = 0 in every row of the tile
    pv_tiles(s + r0 * lp, lp, n_keys, vs, d, a.out + r0 * a.ldo, a.ldo, rows);
  }
}

#else  // no AVX-512: never chosen

bool small_segment_supported(int64_t, int64_t, bool) { return false; }
size_t small_segment_scratch_bytes(int64_t, int64_t) { return 0; }
void small_segment_head(const SmallSegment&, void*) {}

#endif

}  // namespace oe::kernels::detail
