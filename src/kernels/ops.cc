// Element-wise and row-wise operators (ops.h). OpenMP over rows; the inner loops are written for the compiler to
// vectorise. The bf16 rounding points follow spec qwen25-omni-thinker.md §3.1, §3.3 and §10.
#include "kernels/ops.h"

#include <bit>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/vec_math.h"

namespace oe::kernels {

using detail::round_bf16_fast;

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t PARALLEL_MIN_ELEMENTS = 1 << 15;

}  // namespace

void rms_norm(const float* x, int64_t n_rows, int64_t d, const float* w, float eps, float* y, Compute compute) {
  OE_CHECK(d > 0 && n_rows >= 0, "rms_norm rows={} d={}", n_rows, d);
  const bool bf16 = compute == Compute::BF16;
#pragma omp parallel for schedule(static) if (n_rows * d >= PARALLEL_MIN_ELEMENTS)
  for (int64_t i = 0; i < n_rows; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < d; ++j) ss += xr[j] * xr[j];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    if (bf16) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = round_bf16_fast(round_bf16_fast(xr[j] * r) * w[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = xr[j] * r * w[j];
    }
  }
}

void layer_norm(const float* x, int64_t n_rows, int64_t d, const float* w, const float* b, float eps, float* y,
                Compute compute) {
  OE_CHECK(d > 0 && n_rows >= 0, "layer_norm rows={} d={}", n_rows, d);
  const bool bf16 = compute == Compute::BF16;
#pragma omp parallel for schedule(static) if (n_rows * d >= PARALLEL_MIN_ELEMENTS)
  for (int64_t i = 0; i < n_rows; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    // Two passes (mean, then squared deviations): no cancellation for rows with a large mean.
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < d; ++j) sum += xr[j];
    const float mean = sum / static_cast<float>(d);
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < d; ++j) ss += (xr[j] - mean) * (xr[j] - mean);
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    if (bf16) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = round_bf16_fast((xr[j] - mean) * r * w[j] + b[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * r * w[j] + b[j];
    }
  }
}

void mrope_tables(const int64_t* pos, int64_t n_tokens, int64_t d_head, float theta, const std::vector<int>& sections,
                  float* cos, float* sin, Compute compute) {
  const int64_t half = d_head / 2;
  OE_CHECK(d_head > 0 && d_head % 2 == 0, "mrope_tables d_head={}", d_head);
  OE_CHECK(sections.size() == 3, "mrope_tables needs 3 sections (T, H, W), got {}", sections.size());
  std::vector<float> inv_freq(static_cast<size_t>(half));
  std::vector<int> section_of(static_cast<size_t>(half));
  int64_t f = 0;
  for (int s = 0; s < 3; ++s)
    for (int i = 0; i < sections[s] && f < half; ++i) section_of[f++] = s;
  OE_CHECK(f == half && sections[0] + sections[1] + sections[2] == half, "mrope sections must sum to d_head/2={}",
           half);
  for (int64_t i = 0; i < half; ++i)  // 1/theta^(2i/d) in double, rounded once to float (spec §10 item 3)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(theta), 2.0 * i / static_cast<double>(d_head)));
  const bool bf16 = compute == Compute::BF16;
#pragma omp parallel for schedule(static) if (n_tokens * d_head >= PARALLEL_MIN_ELEMENTS)
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* cr = cos + t * d_head;
    float* sr = sin + t * d_head;
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[section_of[i] * n_tokens + t]) * inv_freq[i];  // one fp32 multiply
      float c = static_cast<float>(std::cos(static_cast<double>(angle)));
      float s = static_cast<float>(std::sin(static_cast<double>(angle)));
      if (bf16) {
        c = round_bf16_fast(c);
        s = round_bf16_fast(s);
      }
      cr[i] = cr[i + half] = c;
      sr[i] = sr[i + half] = s;
    }
  }
}

void vision_rotary_tables(const int64_t* rows, const int64_t* cols, int64_t n_tokens, int64_t d_head, float theta,
                          float* cos, float* sin) {
  OE_CHECK(d_head > 0 && d_head % 4 == 0, "vision_rotary_tables d_head={} must be a multiple of 4", d_head);
  const int64_t half = d_head / 2, quarter = d_head / 4;
  // The reference's VisionRotaryEmbedding(dim = d_head/2): 1/theta^(arange(0, dim, 2)/dim); computed in double and
  // rounded once, as for the text tower.
  std::vector<float> inv_freq(static_cast<size_t>(quarter));
  for (int64_t j = 0; j < quarter; ++j)
    inv_freq[j] = static_cast<float>(1.0 / std::pow(static_cast<double>(theta), 2.0 * j / static_cast<double>(half)));
#pragma omp parallel for schedule(static) if (n_tokens * d_head >= PARALLEL_MIN_ELEMENTS)
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* cr = cos + t * d_head;
    float* sr = sin + t * d_head;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t p = i < quarter ? rows[t] : cols[t];
      const float angle = static_cast<float>(p) * inv_freq[i % quarter];  // one fp32 multiply
      cr[i] = cr[i + half] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sr[i] = sr[i + half] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void apply_rotary(float* x, int64_t ld, int64_t n_tokens, int64_t n_heads, int64_t d_head, const float* cos,
                  const float* sin, Compute compute) {
  const int64_t half = d_head / 2;
  OE_CHECK(d_head % 2 == 0 && ld >= n_heads * d_head, "apply_rotary d_head={} ld={} n_heads={}", d_head, ld, n_heads);
  const bool bf16 = compute == Compute::BF16;
#pragma omp parallel for schedule(static) if (n_tokens * n_heads * d_head >= PARALLEL_MIN_ELEMENTS)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = cos + t * d_head;
    const float* s = sin + t * d_head;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* lo = x + t * ld + h * d_head;
      float* hi = lo + half;
      if (bf16) {
#pragma omp simd
        for (int64_t f = 0; f < half; ++f) {
          const float a = lo[f], b = hi[f];
          lo[f] = round_bf16_fast(round_bf16_fast(a * c[f]) - round_bf16_fast(b * s[f]));
          hi[f] = round_bf16_fast(round_bf16_fast(b * c[f + half]) + round_bf16_fast(a * s[f + half]));
        }
      } else {
#pragma omp simd
        for (int64_t f = 0; f < half; ++f) {
          const float a = lo[f], b = hi[f];
          lo[f] = a * c[f] - b * s[f];
          hi[f] = b * c[f + half] + a * s[f + half];
        }
      }
    }
  }
}

void silu_mul(const float* g, int64_t ldg, const float* u, int64_t ldu, float* y, int64_t ldy, int64_t rows,
              int64_t cols, Compute compute) {
  const bool bf16 = compute == Compute::BF16;
#pragma omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN_ELEMENTS)
  for (int64_t i = 0; i < rows; ++i) {
    const float* gr = g + i * ldg;
    const float* ur = u + i * ldu;
    float* yr = y + i * ldy;
    if (bf16) {
      detail::silu_mul_bf16_row(gr, ur, yr, cols);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = detail::silu_fast(gr[j]) * ur[j];
    }
  }
}

namespace {

// GELU of one value, exactly as the BF16 and F32 paths define it (libm's erf: within 1 ulp).
float gelu_value(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); }

// In BF16 mode the input is rounded to bf16 first, so there are only 65,536 inputs: the rounded GELU of each, made
// once (256 KiB) with the same expression, turns the op into a lookup with bit-identical results. (libm's erff,
// one element at a time, was a fifth of an audio item's time.)
const float* bf16_gelu_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t b = 0; b < 65536; ++b) t[b] = round_bf16_fast(gelu_value(std::bit_cast<float>(b << 16)));
    return t;
  }();
  return table.data();
}

}  // namespace

void gelu_erf(float* x, int64_t n, Compute compute) {
  if (compute == Compute::BF16) {
    const float* table = bf16_gelu_table();
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; ++i) x[i] = table[detail::to_bf16_bits(x[i])];
    return;
  }
  // erff is exact to within 1 ulp; the fp32 path is the reference's, so libm it is.
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_ELEMENTS)
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_value(x[i]);
}

void add_inplace(float* x, const float* y, int64_t n, Compute compute) {
  if (compute == Compute::BF16) {
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; ++i) x[i] = round_bf16_fast(x[i] + round_bf16_fast(y[i]));
  } else {
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }
}

void round_activations(float* x, int64_t n, Compute compute) {
  if (compute != Compute::BF16) return;
#pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_ELEMENTS)
  for (int64_t i = 0; i < n; ++i) x[i] = round_bf16_fast(x[i]);
}

}  // namespace oe::kernels
