// attention (tiled, oneDNN local GEMMs) against ref::attention (scalar, double).
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/dtype.h"
#include "kernels/attention_internal.h"
#include "kernels/reference.h"
#include "test_util.h"

namespace oe::kernels {
namespace {

using testing::ALL_COMPUTE;
using testing::as_compute;
using testing::random_floats;
using testing::random_ints;

// Strided q/k/v/out buffers for one problem; pad adds unused columns to every row.
struct Problem {
  AttentionParams p;
  int64_t ldq, ldk, ldv, ldo;
  std::vector<float> q, k, v;

  Problem(AttentionParams params, int64_t pad) : p(std::move(params)) {
    ldq = p.n_heads * p.d_head + pad;
    ldo = p.n_heads * p.d_head + 2 * pad;
    ldk = p.n_kv_heads * p.d_head + 3 * pad;
    ldv = p.n_kv_heads * p.d_head + pad;
    q.assign(p.n_tokens * ldq, 0.0f);
    k.assign(p.n_tokens * ldk, 0.0f);
    v.assign(p.n_tokens * ldv, 0.0f);
  }
  float& qv(int64_t t, int64_t h, int64_t e) { return q[t * ldq + h * p.d_head + e]; }
  float& kv(int64_t t, int64_t g, int64_t e) { return k[t * ldk + g * p.d_head + e]; }
  float& vv(int64_t t, int64_t g, int64_t e) { return v[t * ldv + g * p.d_head + e]; }

  void fill_random(uint32_t seed, Compute c) {
    for (int64_t t = 0; t < p.n_tokens; ++t) {
      auto r = random_floats(3 * p.n_heads * p.d_head, -1.0f, 1.0f, seed + static_cast<uint32_t>(t));
      size_t i = 0;
      for (int64_t h = 0; h < p.n_heads; ++h)
        for (int64_t e = 0; e < p.d_head; ++e) qv(t, h, e) = r[i++];
      for (int64_t g = 0; g < p.n_kv_heads; ++g)
        for (int64_t e = 0; e < p.d_head; ++e) kv(t, g, e) = r[i++], vv(t, g, e) = r[i++];
    }
    q = as_compute(q, c), k = as_compute(k, c), v = as_compute(v, c);
  }

  // Runs the fast kernel; padding columns of out must stay untouched.
  std::vector<float> run(Compute c) {
    std::vector<float> out(p.n_tokens * ldo, -5.0f);
    attention(q.data(), ldq, k.data(), ldk, v.data(), ldv, out.data(), ldo, p, c);
    for (int64_t t = 0; t < p.n_tokens; ++t)
      for (int64_t j = p.n_heads * p.d_head; j < ldo; ++j) EXPECT_EQ(out[t * ldo + j], -5.0f) << "padding written";
    return out;
  }
  std::vector<float> reference(Compute c) {
    std::vector<float> out(p.n_tokens * ldo, -5.0f);
    ref::attention(q.data(), ldq, k.data(), ldk, v.data(), ldv, out.data(), ldo, p, c);
    return out;
  }
};

// Runs body once with the default routing (small segments through the direct path) and once with every segment
// through the GEMM path.
template <typename F>
void for_each_path(F&& body) {
  for (int64_t limit : {detail::SMALL_SEGMENT_MAX, int64_t{0}}) {
    SCOPED_TRACE(limit == 0 ? "GEMM path only" : "direct path for small segments");
    detail::set_small_segment_limit(limit);
    body();
  }
  detail::set_small_segment_limit(detail::SMALL_SEGMENT_MAX);
}

AttentionParams params(int64_t n_tokens, int64_t n_heads, int64_t n_kv_heads, int64_t d_head, bool causal,
                       std::vector<int64_t> cu = {}) {
  AttentionParams p;
  p.n_tokens = n_tokens;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv_heads;
  p.d_head = d_head;
  p.scale = 1.0f / std::sqrt(static_cast<float>(d_head));
  p.causal = causal;
  p.cu_seqlens = std::move(cu);
  return p;
}

// One-hot scores: for query (t, h) of segment [b, e) the key at position target(t, h) scores 300 and every other
// key 0, so exp(-300) underflows to exactly 0 in fp32 and the probabilities are exactly one-hot in any precision.
// The output row must then be exactly v of the target key in the query head's kv group: this checks the segment
// boundaries, the causal mask, the GQA head mapping and the strides exactly.
TEST(Attention, ExactOneHotSegmentsGqaCausalAndBidirectional) {
  const int64_t d = 32;  // targets are encoded as one-hot q/k directions, so segments hold at most d tokens
  for_each_path([&] {
    for (Compute c : ALL_COMPUTE)
      for (bool causal : {false, true}) {
        SCOPED_TRACE(::testing::Message() << compute_name(c) << (causal ? " causal" : " bidirectional"));
        Problem pr(params(70, 6, 2, d, causal, {0, 7, 7, 39, 40, 70}), /*pad=*/3);
        pr.p.scale = 1.0f;
        const auto vals = random_ints(pr.v.size(), -50, 50, 7);
        std::copy(vals.begin(), vals.end(), pr.v.begin());
        const auto& cu = pr.p.cu_seqlens;
        std::vector<int64_t> want_key(70 * 6);
        for (size_t s = 0; s + 1 < cu.size(); ++s)
          for (int64_t t = cu[s]; t < cu[s + 1]; ++t) {
            for (int64_t g = 0; g < 2; ++g) pr.kv(t, g, (t - cu[s] + 5 * g) % d) = 1.0f;
            for (int64_t h = 0; h < 6; ++h) {
              const int64_t last = causal ? t : cu[s + 1] - 1;  // the target is any visible key
              const int64_t target = cu[s] + (t * 7 + h * 3) % (last - cu[s] + 1);
              pr.qv(t, h, (target - cu[s] + 5 * (h / 3)) % d) = 300.0f;
              want_key[t * 6 + h] = target;
            }
          }
        auto out = pr.run(c);
        for (int64_t t = 0; t < 70; ++t)
          for (int64_t h = 0; h < 6; ++h)
            for (int64_t e = 0; e < d; ++e)
              ASSERT_EQ(out[t * pr.ldo + h * d + e], pr.vv(want_key[t * 6 + h], h / 3, e)) << t << "," << h << "," << e;
      }
  });
}

// q = 0: every score is 0 and the probabilities are exactly 1/L; with L a power of two and integer v, the output
// is the exact mean of the segment's v rows (also in BF16: 1/L is a bf16 value).
TEST(Attention, ExactUniformWhenQueriesAreZero) {
  for_each_path([&] {
    for (Compute c : ALL_COMPUTE) {
      Problem pr(params(212, 4, 1, 80, false, {0, 4, 20, 84, 212}), 0);
      const auto vals = random_ints(pr.v.size(), -64, 64, 9);
      std::copy(vals.begin(), vals.end(), pr.v.begin());
      pr.k = as_compute(random_floats(pr.k.size(), -1.0f, 1.0f, 10), c);
      auto out = pr.run(c);
      const auto& cu = pr.p.cu_seqlens;
      for (size_t s = 0; s + 1 < cu.size(); ++s)
        for (int64_t e = 0; e < 80; ++e) {
          double sum = 0.0;
          for (int64_t t = cu[s]; t < cu[s + 1]; ++t) sum += pr.vv(t, 0, e);
          const float mean = static_cast<float>(sum / static_cast<double>(cu[s + 1] - cu[s]));
          for (int64_t t = cu[s]; t < cu[s + 1]; ++t)
            for (int64_t h = 0; h < 4; ++h) ASSERT_EQ(out[t * pr.ldo + h * 80 + e], mean) << compute_name(c);
        }
    }
  });
}

// Random inputs in [-1, 1) against the double reference.
// F32: scores carry an fp32 accumulation error below d·2^-24·Σ|q·k| (< 1e-5 here), exp and the normalisation a few
//      ulp, and the output is a convex combination of |v| <= 1: 2e-5 absolute is a safe bound.
// BF16: both sides round the same probabilities to bf16, but a probability that lies within the fp32 error of a
//      bf16 rounding boundary can round the other way (one bf16 ulp, 2^-8 relative). Such flips are rare (the fp32
//      error is ~1e-6 relative, a bf16 ulp 4e-3) and each moves an output by at most 2^-8·p·|v|: checked with a
//      max-error bound of 2^-8 (p <= 1) and a mean-error bound that only a few flips can meet.
void expect_matches_reference(Problem& pr, Compute c) {
  auto out = pr.run(c);
  auto want = pr.reference(c);
  double max_err = 0.0, sum_err = 0.0;
  int64_t n = 0;
  for (int64_t t = 0; t < pr.p.n_tokens; ++t)
    for (int64_t j = 0; j < pr.p.n_heads * pr.p.d_head; ++j) {
      const double err = std::fabs(out[t * pr.ldo + j] - want[t * pr.ldo + j]);
      max_err = std::max(max_err, err);
      sum_err += err;
      ++n;
    }
  if (c == Compute::F32) {
    EXPECT_LT(max_err, 2e-5);
  } else {
    EXPECT_LT(max_err, std::ldexp(1.0, -8));
    EXPECT_LT(sum_err / n, 2e-5);
  }
}

TEST(Attention, RandomSegmentsGqaStridesAgainstReference) {
  struct Case {
    int64_t n_tokens, n_heads, n_kv, d;
    std::vector<int64_t> cu;
  };
  const Case cases[] = {
      {1, 2, 1, 16, {}},                          // a single token
      {150, 4, 2, 64, {}},                        // one segment: a full block of 64 rows, and a tail
      {200, 6, 3, 80, {0, 1, 65, 65, 129, 200}},  // vision-like head size, an empty and a 1-token segment
      {97, 16, 2, 128, {0, 33, 97}},              // the decoder's heads
      {600, 4, 1, 48, {0, 300, 317, 573, 600}},   // blocks of 64 and tails; small and large segments mixed
      {40, 3, 1, 24, {0, 13, 40}},                // d_head not a multiple of 16: always the GEMM path
  };
  for_each_path([&] {
    for (Compute c : ALL_COMPUTE)
      for (bool causal : {false, true})
        for (const Case& cs : cases) {
          SCOPED_TRACE(::testing::Message() << compute_name(c) << (causal ? " causal" : " bidirectional")
                                            << " n_tokens=" << cs.n_tokens << " d=" << cs.d);
          Problem pr(params(cs.n_tokens, cs.n_heads, cs.n_kv, cs.d, causal, cs.cu), /*pad=*/2);
          pr.fill_random(40, c);
          expect_matches_reference(pr, c);
        }
  });
}

// Many tiny segments of varied lengths (like audio chunks and vision windows, only smaller).
TEST(Attention, ManyTinySegments) {
  std::vector<int64_t> cu{0};
  auto lens = random_ints(60, 1, 20, 3);
  for (float l : lens) cu.push_back(cu.back() + static_cast<int64_t>(l));
  for_each_path([&] {
    for (Compute c : ALL_COMPUTE) {
      Problem pr(params(cu.back(), 4, 2, 32, false, cu), 0);
      pr.fill_random(50, c);
      expect_matches_reference(pr, c);
    }
  });
}

// A long sequence: many query blocks per head against 1024 keys.
TEST(Attention, LongSequence1024) {
  for (Compute c : ALL_COMPUTE)
    for (bool causal : {false, true}) {
      SCOPED_TRACE(::testing::Message() << compute_name(c) << (causal ? " causal" : " bidirectional"));
      Problem pr(params(1024, 2, 1, 64, causal), 0);
      pr.fill_random(60, c);
      expect_matches_reference(pr, c);
    }
}

}  // namespace
}  // namespace oe::kernels
