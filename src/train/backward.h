// Forward/backward pairs of everything between the LoRA parameters and the contrastive loss, each pair next to the
// other (spec omni-embed-nemotron.md §5): linear layers with LoRA, RMSNorm, rotary embeddings (M-RoPE tables),
// bidirectional attention over packed segments with GQA, SiLU·up, masked mean, L2 normalisation and InfoNCE.
// All fp32, row-major. Every backward ACCUMULATES into its gradient outputs (+=), so branches that share an input
// (q, k and v of one normed row; the residual stream) add up without copies; callers zero them first.
// Each function is checked against central finite differences in tests/train/backward_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/matmul.h"
#include "model/lora.h"

namespace oe::train {

// A frozen weight W [n_out, n_in]: fp32 values for oneDNN's sgemm, or, for bf16 training, W and Wᵀ packed for the
// bf16 GEMMs of kernels/matmul.h (the project's AMX kernel where the CPU has it), which round their input to bf16 and
// accumulate in fp32.
struct FrozenWeight {
  const float* f32 = nullptr;
  const kernels::PackedLinear* packed = nullptr;    // W: y = x·Wᵀ
  const kernels::PackedLinear* packed_t = nullptr;  // Wᵀ: dx = dy·W
  FrozenWeight(const float* w) : f32(w) {}  // NOLINT: a plain fp32 weight converts
  FrozenWeight(const kernels::PackedLinear* w, const kernels::PackedLinear* wt) : packed(w), packed_t(wt) {}
};

// ---- Linear with LoRA (PEFT's LoraLayer): y = x·Wᵀ + b + scale · (drop(x)·Aᵀ)·Bᵀ.
// w [n_out, n_in]; bias [n_out] or null; lora null (or empty) for a plain linear; x_lora: the dropped-out x the
// LoRA branch reads (x itself without dropout); t [m, r]: receives x_lora·Aᵀ, kept for the backward.
void linear_forward(const float* x, int64_t m, int64_t ldx, const FrozenWeight& w, const float* bias, int64_t n_out,
                    int64_t n_in, const model::LoraWeights* lora, double scale, const float* x_lora, float* t,
                    float* y, int64_t ldy);
// dx [m, n_in] += dy·W + (dt·A through the dropout: the caller applies the mask to dx_lora); grad->a += dtᵀ·x_lora,
// grad->b += scale·dyᵀ·t, where dt = scale·dy·B. dx_lora [m, n_in] receives dt·A (overwritten) when lora is set;
// with dx_lora == dx (no dropout) it is added to dx directly.
void linear_backward(const float* dy, int64_t m, int64_t ldy, const FrozenWeight& w, int64_t n_out, int64_t n_in,
                     const model::LoraWeights* lora, double scale, const float* x_lora, const float* t, float* dx,
                     float* dx_lora, model::LoraWeights* grad);

// ---- RMSNorm: y = x / sqrt(mean(x²) + eps) ⊙ w (fp32, the reference kernel's order). inv [rows] receives 1/rms.
void rms_norm_forward(const float* x, int64_t rows, int64_t d, const float* w, float eps, float* y, float* inv);
// dx += (w⊙dy)·inv − x·inv³/d · Σ (w⊙dy⊙x), row by row.
void rms_norm_backward(const float* x, const float* dy, int64_t rows, int64_t d, const float* w, const float* inv,
                       float* dx);

// ---- Rotary embedding of n_heads heads in rows of stride ld (cos/sin [rows, d_head] from kernels::mrope_tables):
// x'[f] = x[f]·cos[f] − x[f+h]·sin[f], x'[f+h] = x[f+h]·cos[f+h] + x[f]·sin[f+h], h = d_head/2. In place; the
// inference kernel (kernels::apply_rotary in fp32), so training rotates exactly as embedding does.
void rotary_forward(float* x, int64_t ld, int64_t rows, int64_t n_heads, int64_t d_head, const float* cos,
                    const float* sin);
// The transpose of that rotation applied to dx in place (dx holds dL/dx' on entry, dL/dx on exit).
void rotary_backward(float* dx, int64_t ld, int64_t rows, int64_t n_heads, int64_t d_head, const float* cos,
                     const float* sin);

// ---- Bidirectional attention over packed segments (tokens of segment s: [cu[s], cu[s+1])), GQA: head h reads
// kv head h / (n_heads / n_kv_heads). q [S, n_heads·dh] stride ldq, k and v [S, n_kv·dh] strides ldk/ldv, out
// [S, n_heads·dh] stride ldo. One [len, len] score matrix of one head at a time.
struct AttentionShape {
  int64_t n_heads = 0, n_kv_heads = 0, d_head = 0;
  float scale = 0;
  std::vector<int64_t> cu_seqlens;  // {0, ..., S}
};
void attention_forward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                       float* out, int64_t ldo, const AttentionShape& a);
// From the inputs and the forward's output (the probabilities are recomputed): dq, dk, dv += (strides as inputs).
void attention_backward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                        const float* out, int64_t ldo, const float* dout, int64_t lddo, float* dq, float* dk, float* dv,
                        const AttentionShape& a);

// ---- SiLU·up: act = SiLU(g) ⊙ u, g and u [rows, cols] with strides ldg/ldu (gate | up rows of one GEMM).
void silu_mul_forward(const float* g, const float* u, int64_t ld, int64_t rows, int64_t cols, float* act);
void silu_mul_backward(const float* g, const float* u, int64_t ld, int64_t rows, int64_t cols, const float* dact,
                       float* dg, float* du);

// ---- Masked mean over each segment's rows, then L2: e_s = mean(h rows of s), v_s = e_s / ‖e_s‖.
// v [n_segments, d]; norms [n_segments] receives ‖e_s‖.
void mean_l2_forward(const float* h, int64_t d, const std::vector<int64_t>& cu_seqlens, float* v, float* norms);
// dh (rows of each segment) += (dv − v·(v·dv)) / ‖e‖ / len.
void mean_l2_backward(const float* v, const float* norms, const float* dv, int64_t d,
                      const std::vector<int64_t>& cu_seqlens, float* dh);

// ---- InfoNCE with in-batch negatives: queries q [B, d] and documents p [N, d] (unit vectors), positive[b] the
// index of query b's positive among the N; every other document (its hard negatives and the other queries'
// documents) is a negative. L = mean_b −log softmax_n(q_b·p_n / τ)[positive[b]].
struct InfoNce {
  double loss = 0;
  std::vector<float> dq, dp;  // dL/dq [B, d], dL/dp [N, d]
  int64_t correct = 0;         // queries whose positive scored highest (training accuracy)
};
InfoNce info_nce(const float* q, int64_t B, const float* p, int64_t N, int64_t d, const std::vector<int64_t>& positive,
                 double temperature);

}  // namespace oe::train
