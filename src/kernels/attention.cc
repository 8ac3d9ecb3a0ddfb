// Multi-head attention over segments (attention.h). Work is split into items run in parallel on the OpenMP pool:
//  - segments longer than SMALL_SEGMENT_MAX: (segment, query head, block of up to BLOCK_Q query rows). The scores
//    against all keys of the segment, S [rows, L] fp32, come from a local GEMM (local_gemm.h), are softmaxed row by
//    row in fp32 and applied to V by a second local GEMM; only one such block per thread exists at a time. K and V
//    are converted and packed once per (segment, kv head) before the items run.
//  - small segments: (segment, query head) through the direct fp32 micro-kernels of attention_small.cc.
#include "kernels/attention.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/attention_internal.h"
#include "kernels/local_gemm.h"
#include "kernels/vec_math.h"

namespace oe::kernels {
namespace {

constexpr int64_t BLOCK_Q = 64;  // query rows per item: S stays within L2 for L up to a few thousand

struct Segment {
  int64_t begin = 0, len = 0;
  bool small = false;           // handled by the direct path (no packed K and V)
  size_t k_off = 0, v_off = 0;  // byte offsets of the packed K and V of kv head 0; kv head g adds g · k/v_bytes
  size_t k_bytes = 0, v_bytes = 0;
};

struct Item {
  int64_t seg, head, row0, rows;  // rows = 0: the whole segment through the direct path
};

// One call's arguments and its plan: the non-empty segments, the packed K and V buffer, the work items.
struct Call {
  const float *q, *k, *v;
  float* out;
  int64_t ldq, ldk, ldv, ldo;
  const AttentionParams& p;
  Compute compute;
  bool bf16;
  int64_t d, group;
  std::vector<Segment> segs{};
  size_t packed_bytes = 0;
  int64_t max_len = 0, max_small = 0;  // longest segment of the GEMM path, of the direct path
  AlignedPtr<uint8_t> packed{};
  std::vector<Item> items{};
};

// Per-thread scratch of the GEMM path: S [BLOCK_Q, max_len] f32; for BF16 also P [BLOCK_Q, max_len] bf16; the Q
// block as a dense [BLOCK_Q, d] copy (bf16 or f32) and the O block [BLOCK_Q, d] f32 (the local GEMMs take dense
// operands only). The direct path uses the same memory its own way.
struct Scratch {
  size_t s_bytes, p_bytes, q_bytes, o_bytes, per_thread;
};

size_t round_up64(size_t n) { return (n + 63) / 64 * 64; }

void check_params(const AttentionParams& p, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo) {
  OE_CHECK(p.n_tokens >= 0 && p.n_heads > 0 && p.n_kv_heads > 0 && p.d_head > 0 && p.n_heads % p.n_kv_heads == 0,
           "attention n_tokens={} n_heads={} n_kv_heads={} d_head={}", p.n_tokens, p.n_heads, p.n_kv_heads, p.d_head);
  OE_CHECK(ldq >= p.n_heads * p.d_head && ldo >= p.n_heads * p.d_head && ldk >= p.n_kv_heads * p.d_head &&
               ldv >= p.n_kv_heads * p.d_head,
           "attention strides ldq={} ldk={} ldv={} ldo={}", ldq, ldk, ldv, ldo);
  if (p.cu_seqlens.empty()) return;
  OE_CHECK(p.cu_seqlens.size() >= 2 && p.cu_seqlens.front() == 0 && p.cu_seqlens.back() == p.n_tokens,
           "cu_seqlens must run from 0 to n_tokens={}", p.n_tokens);
  for (size_t i = 1; i < p.cu_seqlens.size(); ++i)
    OE_CHECK(p.cu_seqlens[i] >= p.cu_seqlens[i - 1], "cu_seqlens decreases at {}", i);
}

// Segments, which path each takes, and the layout of the packed K and V buffer.
void plan_segments(Call& c) {
  const std::vector<int64_t> cu = c.p.cu_seqlens.empty() ? std::vector<int64_t>{0, c.p.n_tokens} : c.p.cu_seqlens;
  const int64_t n_kv = c.p.n_kv_heads;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    Segment sg;
    sg.begin = cu[s];
    sg.len = cu[s + 1] - cu[s];
    if (sg.len == 0) continue;
    sg.small = detail::small_segment_supported(sg.len, c.d, c.bf16);
    if (sg.small) {
      c.max_small = std::max(c.max_small, sg.len);
    } else {
      sg.k_bytes = round_up64(detail::local_gemm_packed_b_bytes(c.compute, c.d, sg.len));  // B = Kᵀ [d, L]
      sg.v_bytes = round_up64(detail::local_gemm_packed_b_bytes(c.compute, sg.len, c.d));  // B = V [L, d]
      sg.k_off = c.packed_bytes;
      sg.v_off = c.packed_bytes + n_kv * sg.k_bytes;
      c.packed_bytes += n_kv * (sg.k_bytes + sg.v_bytes);
      c.max_len = std::max(c.max_len, sg.len);
    }
    c.segs.push_back(sg);
  }
}

// Packs Kᵀ and V of every (GEMM-path segment, kv head), in parallel.
void pack_kv(Call& c) {
  c.packed = aligned_array<uint8_t>(c.packed_bytes);
  std::vector<const Segment*> large;
  for (const Segment& sg : c.segs)
    if (!sg.small) large.push_back(&sg);
  const int64_t n_kv = c.p.n_kv_heads, d = c.d, n_pack = static_cast<int64_t>(large.size()) * n_kv * 2;
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < n_pack; ++t) {
    const Segment& sg = *large[static_cast<size_t>(t / (2 * n_kv))];
    const int64_t g = (t / 2) % n_kv;
    if (t % 2 == 0)
      detail::local_gemm_pack_b(c.compute, d, sg.len, c.k + sg.begin * c.ldk + g * d, c.ldk, /*b_is_nk=*/true,
                                c.packed.get() + sg.k_off + g * sg.k_bytes);
    else
      detail::local_gemm_pack_b(c.compute, sg.len, d, c.v + sg.begin * c.ldv + g * d, c.ldv, /*b_is_nk=*/false,
                                c.packed.get() + sg.v_off + g * sg.v_bytes);
  }
}

// Items in (segment, kv head, query head, block) order, so that consecutive items share the packed K and V.
void make_items(Call& c) {
  for (size_t s = 0; s < c.segs.size(); ++s)
    for (int64_t h = 0; h < c.p.n_heads; ++h) {
      if (c.segs[s].small) {
        c.items.push_back({static_cast<int64_t>(s), h, 0, 0});
        continue;
      }
      for (int64_t r = 0; r < c.segs[s].len; r += BLOCK_Q)
        c.items.push_back({static_cast<int64_t>(s), h, r, std::min(BLOCK_Q, c.segs[s].len - r)});
    }
}

Scratch scratch_layout(const Call& c) {
  Scratch sc;
  sc.s_bytes = round_up64(static_cast<size_t>(BLOCK_Q * c.max_len) * 4);
  sc.p_bytes = c.bf16 ? round_up64(static_cast<size_t>(BLOCK_Q * c.max_len) * 2) : 0;
  sc.q_bytes = round_up64(static_cast<size_t>(BLOCK_Q * c.d) * detail::local_gemm_elem_bytes(c.compute));
  sc.o_bytes = round_up64(static_cast<size_t>(BLOCK_Q * c.d) * 4);
  const size_t small = c.max_small > 0 ? round_up64(detail::small_segment_scratch_bytes(c.max_small, c.d)) : 0;
  sc.per_thread = std::max(sc.s_bytes + sc.p_bytes + sc.q_bytes + sc.o_bytes, small);
  return sc;
}

// One item of the GEMM path: S = Q_blk·Kᵀ, row softmax, O_blk = P·V into out.
void run_block(const Call& c, const Item& item, const Scratch& sc, uint8_t* mine) {
  const Segment& sg = c.segs[static_cast<size_t>(item.seg)];
  const int64_t d = c.d, g = item.head / c.group, L = sg.len, row0 = sg.begin + item.row0;
  float* s_buf = reinterpret_cast<float*>(mine);
  uint16_t* p_buf = c.bf16 ? reinterpret_cast<uint16_t*>(mine + sc.s_bytes) : nullptr;
  void* q_buf = mine + sc.s_bytes + sc.p_bytes;
  float* o_buf = reinterpret_cast<float*>(mine + sc.s_bytes + sc.p_bytes + sc.q_bytes);
  // The Q block, dense (bf16 in BF16 mode)   [rows, d]
  const float* q_blk = c.q + row0 * c.ldq + item.head * d;
  for (int64_t r = 0; r < item.rows; ++r) {
    if (c.bf16) {
      uint16_t* qb = static_cast<uint16_t*>(q_buf) + r * d;
#pragma omp simd
      for (int64_t e = 0; e < d; ++e) qb[e] = detail::to_bf16_bits(q_blk[r * c.ldq + e]);
    } else {
      std::copy_n(q_blk + r * c.ldq, d, static_cast<float*>(q_buf) + r * d);
    }
  }
  // S = Q_blk · Kᵀ   [rows, L]
  detail::local_gemm(c.compute, item.rows, d, L, q_buf, c.packed.get() + sg.k_off + g * sg.k_bytes, s_buf);
  for (int64_t r = 0; r < item.rows; ++r) {
    const int64_t n_valid = c.p.causal ? item.row0 + r + 1 : L;
    detail::softmax_row(s_buf + r * L, L, n_valid, c.p.scale,
                        c.bf16 ? detail::ProbOut::BF16_BITS : detail::ProbOut::F32, c.bf16 ? p_buf + r * L : nullptr);
  }
  // O_blk = P · V   [rows, d], then into the strided rows of out
  detail::local_gemm(c.compute, item.rows, L, d, c.bf16 ? static_cast<const void*>(p_buf) : s_buf,
                     c.packed.get() + sg.v_off + g * sg.v_bytes, o_buf);
  for (int64_t r = 0; r < item.rows; ++r) std::copy_n(o_buf + r * d, d, c.out + (row0 + r) * c.ldo + item.head * d);
}

// One item of the direct path: a whole small segment for one head.
void run_small(const Call& c, const Item& item, uint8_t* mine) {
  const Segment& sg = c.segs[static_cast<size_t>(item.seg)];
  const int64_t d = c.d, g = item.head / c.group;
  detail::small_segment_head(
      {c.q + sg.begin * c.ldq + item.head * d, c.k + sg.begin * c.ldk + g * d, c.v + sg.begin * c.ldv + g * d,
       c.out + sg.begin * c.ldo + item.head * d, c.ldq, c.ldk, c.ldv, c.ldo, sg.len, d, c.p.scale, c.p.causal, c.bf16},
      mine);
}

}  // namespace

void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, float* out,
               int64_t ldo, const AttentionParams& p, Compute compute) {
  check_params(p, ldq, ldk, ldv, ldo);
  Call c{q, k, v, out, ldq, ldk, ldv, ldo, p, compute, compute == Compute::BF16, p.d_head, p.n_heads / p.n_kv_heads};
  plan_segments(c);
  if (c.segs.empty()) return;
  pack_kv(c);
  make_items(c);
  const Scratch sc = scratch_layout(c);
  const int n_threads = omp_get_max_threads();
  AlignedPtr<uint8_t> scratch = aligned_array<uint8_t>(sc.per_thread * n_threads);
  const int64_t n_items = static_cast<int64_t>(c.items.size());
#pragma omp parallel num_threads(n_threads)
  {
    uint8_t* mine = scratch.get() + sc.per_thread * omp_get_thread_num();
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < n_items; ++it) {
      const Item& item = c.items[static_cast<size_t>(it)];
      if (c.segs[static_cast<size_t>(item.seg)].small)
        run_small(c, item, mine);
      else
        run_block(c, item, sc, mine);
    }
  }
}

double attention_flop(const AttentionParams& p) {
  double pairs = 0;
  if (p.cu_seqlens.empty()) {
    pairs = static_cast<double>(p.n_tokens) * static_cast<double>(p.n_tokens);
  } else {
    for (size_t s = 0; s + 1 < p.cu_seqlens.size(); ++s) {
      const double len = static_cast<double>(p.cu_seqlens[s + 1] - p.cu_seqlens[s]);
      pairs += len * len;
    }
  }
  return 4.0 * pairs * static_cast<double>(p.n_heads * p.d_head);
}

}  // namespace oe::kernels
