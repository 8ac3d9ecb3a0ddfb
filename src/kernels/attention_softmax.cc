// The row softmax of attention (attention_internal.h): three passes over a row that sits in L1 (max; exp and sum;
// normalise). AVX-512 intrinsics where the compiler targets it, else loops the compiler vectorises.
#include <algorithm>
#include <limits>

#include "kernels/attention_internal.h"
#include "kernels/vec_math.h"

// GCC 12 reports its own AVX-512 intrinsics (the _mm512_undefined_ps inside _mm512_max_ps) as maybe uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace oe::kernels::detail {

#ifdef __AVX512F__
namespace {

// Horizontal max and sum of 16 lanes (GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized).
float lanes_max(__m512 v) {
  alignas(64) float a[16];
  _mm512_store_ps(a, v);
  float m = a[0];
  for (int i = 1; i < 16; ++i) m = a[i] > m ? a[i] : m;
  return m;
}

float lanes_sum(__m512 v) {
  alignas(64) float a[16];
  _mm512_store_ps(a, v);
  float t = 0.0f;
  for (float f : a) t += f;
  return t;
}

__mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1); }

// Max of s[j]·scale over j < n, four independent accumulators.
float scaled_max(const float* s, int64_t n, __m512 vscale) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  int64_t j = 0;
  for (; j + 64 <= n; j += 64) {
    m0 = _mm512_max_ps(m0, _mm512_mul_ps(_mm512_loadu_ps(s + j), vscale));
    m1 = _mm512_max_ps(m1, _mm512_mul_ps(_mm512_loadu_ps(s + j + 16), vscale));
    m2 = _mm512_max_ps(m2, _mm512_mul_ps(_mm512_loadu_ps(s + j + 32), vscale));
    m3 = _mm512_max_ps(m3, _mm512_mul_ps(_mm512_loadu_ps(s + j + 48), vscale));
  }
  for (; j < n; j += 16) {
    const __mmask16 k = first_lanes(n - j);
    m0 = _mm512_mask_max_ps(m0, k, m0, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + j), vscale));
  }
  return lanes_max(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

// s[j] = exp(s[j]·scale - max) for j < n; returns their sum.
float exp_in_place(float* s, int64_t n, __m512 vscale, __m512 vmax) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 e0 = exp_nonpositive_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vmax));
    const __m512 e1 = exp_nonpositive_avx512(_mm512_fmsub_ps(_mm512_loadu_ps(s + j + 16), vscale, vmax));
    _mm512_storeu_ps(s + j, e0);
    _mm512_storeu_ps(s + j + 16, e1);
    sum0 = _mm512_add_ps(sum0, e0);
    sum1 = _mm512_add_ps(sum1, e1);
  }
  for (; j < n; j += 16) {
    const __mmask16 k = first_lanes(n - j);
    const __m512 e =
        _mm512_maskz_mov_ps(k, exp_nonpositive_avx512(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, s + j), vscale, vmax)));
    _mm512_mask_storeu_ps(s + j, k, e);
    sum0 = _mm512_add_ps(sum0, e);
  }
  return lanes_sum(_mm512_add_ps(sum0, sum1));
}

// p_bits[j] = bf16(s[j]·inv) for j < n.
void normalise_to_bf16_bits(const float* s, int64_t n, float inv_s, uint16_t* p_bits) {
  const __m512 inv = _mm512_set1_ps(inv_s);
  int64_t j = 0;
#ifdef __AVX512BF16__
  // vcvtne2ps2bf16 rounds to nearest even like round_bf16, but treats inputs below 2^-126 as 0: only
  // probabilities under 1.2e-38 differ (exp_nonpositive_avx512 already gives 0 below that, times 1/sum <= 1).
  for (; j + 32 <= n; j += 32) {
    const __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(s + j + 16), inv),
                                              _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
    _mm512_storeu_si512(p_bits + j, reinterpret_cast<const __m512i&>(pair));
  }
#endif
  for (; j + 16 <= n; j += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p_bits + j),
                        to_bf16_bits_avx512(_mm512_mul_ps(_mm512_loadu_ps(s + j), inv)));
  for (; j < n; ++j) p_bits[j] = to_bf16_bits(s[j] * inv_s);
}

}  // namespace

void softmax_row(float* s, int64_t n, int64_t n_valid, float scale, ProbOut mode, uint16_t* p_bits) {
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512 vmax = _mm512_set1_ps(scaled_max(s, n_valid, vscale));
  const float inv_s = 1.0f / exp_in_place(s, n_valid, vscale, vmax);
  if (mode == ProbOut::BF16_BITS) {
    normalise_to_bf16_bits(s, n_valid, inv_s, p_bits);
    std::fill(p_bits + n_valid, p_bits + n, uint16_t{0});
    return;
  }
  const __m512 inv = _mm512_set1_ps(inv_s);
  int64_t j = 0;
  if (mode == ProbOut::F32) {
    for (; j + 16 <= n_valid; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
    for (; j < n_valid; ++j) s[j] *= inv_s;
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n_valid; ++i) s[i] = round_bf16_fast(s[i] * inv_s);
  }
  std::fill(s + n_valid, s + n, 0.0f);
}

#else  // no AVX-512: loops the compiler vectorises

void softmax_row(float* s, int64_t n, int64_t n_valid, float scale, ProbOut mode, uint16_t* p_bits) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n_valid; ++j) {
    const float x = s[j] * scale;
    mx = x > mx ? x : mx;  // a ternary, not std::max, so that the reduction vectorises
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n_valid; ++j) {
    s[j] = exp_fast(s[j] * scale - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  if (mode == ProbOut::BF16_BITS) {
#pragma omp simd
    for (int64_t j = 0; j < n_valid; ++j) p_bits[j] = to_bf16_bits(s[j] * inv);
    std::fill(p_bits + n_valid, p_bits + n, uint16_t{0});
    return;
  }
  if (mode == ProbOut::F32) {
#pragma omp simd
    for (int64_t j = 0; j < n_valid; ++j) s[j] *= inv;
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n_valid; ++j) s[j] = round_bf16_fast(s[j] * inv);
  }
  std::fill(s + n_valid, s + n, 0.0f);
}

#endif

}  // namespace oe::kernels::detail
