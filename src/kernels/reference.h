// Scalar reference kernels: straightforward loops with double accumulation, always built, the oracle for the
// fast kernels' tests. Same contracts as matmul.h / attention.h / ops.h (F32 semantics unless a Compute is taken).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "kernels/compute.h"

namespace oe::kernels::ref {

// y[m, n_out] = x[m, n_in] · w[n_out, n_in]ᵀ + b (b may be null). BF16: x and w are rounded to bf16 first.
void linear(const float* x, int64_t m, const float* w, int64_t n_out, int64_t n_in, const float* b, float* y,
            Compute compute);

void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, float* out,
               int64_t ldo, const AttentionParams& p, Compute compute);

void rms_norm(const float* x, int64_t n_rows, int64_t d, const float* w, float eps, float* y, Compute compute);

void layer_norm(const float* x, int64_t n_rows, int64_t d, const float* w, const float* b, float eps, float* y,
                Compute compute);

void mrope_tables(const int64_t* pos, int64_t n_tokens, int64_t d_head, float theta, const std::vector<int>& sections,
                  float* cos, float* sin, Compute compute);

void apply_rotary(float* x, int64_t ld, int64_t n_tokens, int64_t n_heads, int64_t d_head, const float* cos,
                  const float* sin, Compute compute);

void silu_mul(const float* g, int64_t ldg, const float* u, int64_t ldu, float* y, int64_t ldy, int64_t rows,
              int64_t cols, Compute compute);

void gelu_erf(float* x, int64_t n, Compute compute);

}  // namespace oe::kernels::ref
