// Multi-head attention with grouped K/V heads over segments of a packed sequence.
// Tiled: for each (head, block of query rows) the scores against the keys of its segment are formed, softmaxed in
// fp32 and applied to V; no S×S score matrix is materialised for all heads at once.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/compute.h"

namespace oe::kernels {

struct AttentionParams {
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // query head h uses kv head h / (n_heads / n_kv_heads)
  int64_t d_head = 0;
  float scale = 1.0f;      // multiplies q·k
  bool causal = false;     // within a segment, token i sees keys j <= i
  // Segment offsets: tokens [cu_seqlens[s], cu_seqlens[s+1]) attend only to each other. Empty = one segment.
  std::vector<int64_t> cu_seqlens;
};

// q: [n_tokens, n_heads·d_head] with row stride ldq; k, v: [n_tokens, n_kv_heads·d_head] with strides ldk, ldv;
// out: [n_tokens, n_heads·d_head] with stride ldo. Softmax in fp32. BF16 mode: q, k, v must hold bf16 values;
// the probabilities are rounded to bf16 before P·V (the eager reference's cast); out is not rounded.
void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, float* out,
               int64_t ldo, const AttentionParams& p, Compute compute);

// The arithmetic of attention() without a causal mask: 4 · Σ over segments of len² · n_heads · d_head (q·kᵀ and
// p·v, two FLOP per multiply-add), for profiles and benchmarks.
double attention_flop(const AttentionParams& p);

}  // namespace oe::kernels
