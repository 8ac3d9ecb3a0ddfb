// Internal to src/kernels: the pieces of attention.cc — the row softmax and the direct path for small segments.
#pragma once

#include <cstddef>
#include <cstdint>

namespace oe::kernels::detail {

// Where softmax_row puts the probabilities.
enum class ProbOut {
  F32,         // back into s, fp32
  BF16_BITS,   // into p_bits as bf16 bit patterns (for bf16 GEMMs)
  BF16_FLOAT,  // back into s, rounded to bf16 values
};

// Softmax of one row of scores s[0, n): p_j = exp(x_j - max x) / Σ exp(x_j - max x) with x_j = s_j · scale over the
// first n_valid (>= 1) entries; entries n_valid..n are masked (p = 0). Softmax in fp32 (exp within a few ulp).
void softmax_row(float* s, int64_t n, int64_t n_valid, float scale, ProbOut mode, uint16_t* p_bits);

// The direct path: one (segment, head) done with register-blocked fp32 loops, without packing or oneDNN calls, for
// small segments (vision windows, audio chunks), where call overheads would dominate the GEMM path. Measured on an
// AVX-512 + AMX machine (2 threads, d_head 80): the direct path wins up to 256 tokens in F32; in BF16 it wins up to
// about 128 tokens, beyond which oneDNN's bf16 (AMX) GEMMs win.
constexpr int64_t SMALL_SEGMENT_MAX = 256;       // F32
constexpr int64_t SMALL_SEGMENT_MAX_BF16 = 128;  // BF16
// Whether the direct path takes a segment: len within the limit for the mode (lowered by tests) and d_head a
// multiple of 16, on AVX-512 builds.
bool small_segment_supported(int64_t len, int64_t d_head, bool bf16);
// Caps both limits (tests set 0 to send every segment through the GEMM path); not for use concurrent with
// attention().
void set_small_segment_limit(int64_t limit);
size_t small_segment_scratch_bytes(int64_t max_len, int64_t d_head);

struct SmallSegment {
  const float* q;  // the segment's first row, this head's columns; row stride ldq
  const float* k;  // likewise for its kv head
  const float* v;
  float* out;
  int64_t ldq, ldk, ldv, ldo, len, d_head;
  float scale;
  bool causal, bf16;  // bf16: q, k, v rounded to bf16 on entry, probabilities rounded to bf16 before P·V
};
void small_segment_head(const SmallSegment& a, void* scratch);

}  // namespace oe::kernels::detail
