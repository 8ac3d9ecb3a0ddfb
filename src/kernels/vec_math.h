// Internal to src/kernels: scalar helpers written so that the compiler vectorises the loops that call them
// (no branches, no library calls): bf16 rounding, exp and SiLU in fp32.
#pragma once

#include <bit>
#include <cstdint>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace oe::kernels::detail {

// Round to the nearest bf16 (ties to even), kept as a float; a NaN stays a quiet NaN. Same result as
// oe::round_bf16 (core/dtype.h), in a form that vectorises.
inline float round_bf16_fast(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  uint32_t nan = (u | 0x00400000u) & 0xffff0000u;
  return std::bit_cast<float>((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

// The bf16 bit pattern of round_bf16_fast(f).
inline uint16_t to_bf16_bits(float f) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(round_bf16_fast(f)) >> 16);
}

// exp(x) in fp32 with an error of about 1 ulp: x = n·ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial of
// degree 7 (truncation error < 1e-8 relative), then scaled by 2^n in two steps so that results in the subnormal
// range come out right. Returns +inf above 88.7228 and 0 below -104 (where the true value is below the smallest
// subnormal).
inline float exp_fast(float x) {
  constexpr float LOG2E = 1.44269504088896341f;
  constexpr float LN2_HI = 0.693145751953125f;  // ln 2 with 9 trailing zero bits: n·LN2_HI is exact
  constexpr float LN2_LO = 1.428606820309417e-06f;
  float xc = x < -104.0f ? -104.0f : (x > 88.7228f ? 88.7228f : x);
  float n = __builtin_nearbyintf(xc * LOG2E);
  float r = (xc - n * LN2_HI) - n * LN2_LO;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ni = static_cast<int32_t>(n);
  int32_t n1 = ni >> 1, n2 = ni - n1;  // each in [-75, 64]: 2^n1 and 2^n2 are normal floats
  float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x > 88.7228f ? __builtin_inff() : y;
  return x < -104.0f ? 0.0f : y;
}

// SiLU in fp32: x / (1 + e^-x), as PyTorch computes it.
inline float silu_fast(float x) { return x / (1.0f + exp_fast(-x)); }

// y[j] = SiLU(g[j]) · u[j] with the BF16 rounding points of ops.h's silu_mul (g and u rounded first, SiLU(g)
// rounded, then the product); the one loop that silu_mul and the AMX GEMM's gated epilogue both run.
inline void silu_mul_bf16_row(const float* g, const float* u, float* y, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j)
    y[j] = round_bf16_fast(round_bf16_fast(silu_fast(round_bf16_fast(g[j]))) * round_bf16_fast(u[j]));
}

#ifdef __AVX512F__
// GCC 12 reports the _mm512_undefined_* inside its own intrinsics as uninitialised when they are inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// exp(x) on 16 lanes for softmax arguments x - max (<= 0 up to rounding): x = n·ln2 + r, e^r = 1 + r + r²·P(r) with
// the degree-5 minimax polynomial of Cephes' expf (about 1 ulp), scaled by 2^n. Lanes with x < -87.33654 (where e^x
// is below the smallest normal float) give 0; NaN stays NaN. Valid up to x = 88 (n <= 127), not beyond.
inline __m512 exp_nonpositive_avx512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);  // x >= lo, or NaN
  x = _mm512_max_ps(lo, x);                                       // returns x when x is NaN
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417e-06f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
}

// round_bf16_fast on 16 lanes, returning the 16 bf16 bit patterns.
inline __m256i to_bf16_bits_avx512(__m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
  const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
#pragma GCC diagnostic pop
#endif

}  // namespace oe::kernels::detail
