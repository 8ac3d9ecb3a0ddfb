// Element-wise and row-wise operators of the towers. Inputs and outputs are float arrays; in BF16 mode each
// operator rounds to bf16 where the Hugging Face reference computes in bf16 (spec qwen25-omni-thinker.md §10).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/compute.h"

namespace oe::kernels {

// Qwen2RMSNorm over rows of length d: r = 1/sqrt(mean(x²) + eps) in fp32, x̂ = x·r, y = x̂·w.
// BF16: x̂ is rounded to bf16 before the weight multiply and the product rounded again. y may alias x.
void rms_norm(const float* x, int64_t n_rows, int64_t d, const float* w, float eps, float* y, Compute compute);

// torch.nn.LayerNorm over rows of length d (the audio tower's norms): mean and biased variance in fp32,
// y = (x − mean)·rstd·w + b with rstd = 1/sqrt(var + eps). BF16: one rounding of y (PyTorch normalises a bf16 input
// in fp32 and casts the result once). y may alias x.
void layer_norm(const float* x, int64_t n_rows, int64_t d, const float* w, const float* b, float eps, float* y,
                Compute compute);

// M-RoPE cos/sin tables, [n_tokens, d_head] each (cat(angle, angle) layout).
// pos: [3, n_tokens] (rows T, H, W); frequency f in [0, d_head/2) takes its position from the section it falls in
// (sections = mrope_section, summing to d_head/2); inv_freq[f] = 1/theta^(2f/d_head) in fp32; angle = a single
// fp32 multiply. BF16: cos and sin are rounded to bf16.
void mrope_tables(const int64_t* pos, int64_t n_tokens, int64_t d_head, float theta, const std::vector<int>& sections,
                  float* cos, float* sin, Compute compute);

// 2-D rotary tables of the vision tower (spec qwen25-omni-thinker.md §4.3), [n_tokens, d_head] each. Token t sits at
// patch row rows[t], column cols[t]. With q = d_head/4 frequencies inv_freq[j] = 1/theta^(4j/d_head) (fp32), the
// angles are φ[j] = row·inv_freq[j] and φ[q + j] = col·inv_freq[j] (one fp32 multiply each), laid out cat(φ, φ).
// cos and sin stay fp32 (the vision tower rotates in fp32); d_head must be a multiple of 4.
void vision_rotary_tables(const int64_t* rows, const int64_t* cols, int64_t n_tokens, int64_t d_head, float theta,
                          float* cos, float* sin);

// rotate_half rotary in place on x [n_tokens, n_heads·d_head] (row stride ld) with per-token tables cos/sin
// [n_tokens, d_head]: out[f] = x[f]·c − x[f+h]·s, out[f+h] = x[f+h]·c + x[f]·s, h = d_head/2.
// BF16: each product and the sum are rounded to bf16.
void apply_rotary(float* x, int64_t ld, int64_t n_tokens, int64_t n_heads, int64_t d_head, const float* cos,
                  const float* sin, Compute compute);

// y = silu(g) ⊙ u on [rows, cols] blocks with row strides; BF16: g and u rounded first (so a matmul's raw output
// can be passed in), silu(g) rounded, then the product rounded.
void silu_mul(const float* g, int64_t ldg, const float* u, int64_t ldu, float* y, int64_t ldy, int64_t rows,
              int64_t cols, Compute compute);

// In place exact GELU, x = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (the vision merger's and the audio tower's activation;
// no tanh approximation). BF16: x is rounded first and the result rounded.
void gelu_erf(float* x, int64_t n, Compute compute);

// x += y (n elements); BF16: y is rounded first (so a matmul's raw output can be passed in), and the sum is rounded
// to bf16 (the bf16 residual stream).
void add_inplace(float* x, const float* y, int64_t n, Compute compute);

// Rounds to bf16 in BF16 mode, no-op in F32 mode.
void round_activations(float* x, int64_t n, Compute compute);

}  // namespace oe::kernels
