// ops.h against the scalar references (reference.h) and against core/dtype.h's bf16 rounding.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "kernels/reference.h"
#include "kernels/vec_math.h"
#include "test_util.h"

namespace oe::kernels {
namespace {

using testing::ALL_COMPUTE;
using testing::as_compute;
using testing::random_floats;
using testing::random_ints;

// Distance in units of the bf16 ulp of `want` (for comparing bf16-rounded outputs).
double bf16_ulps(float got, float want) {
  if (got == want) return 0.0;
  int e;
  std::frexp(want == 0.0f ? got : want, &e);
  return std::fabs(static_cast<double>(got) - want) / std::ldexp(1.0, e - 8);
}

// Rows of ±2^k (k per row): mean(x²) = 4^k, so with eps = 0 the factor r = 2^-k, x̂ = ±1 and y = ±w are exact.
TEST(RmsNorm, ExactOnPowerOfTwoRows) {
  const int64_t rows = 9, d = 136;
  auto w = random_ints(d, -8, 8, 1);
  auto signs = random_ints(rows * d, 0, 1, 2);
  std::vector<float> x(rows * d), want(rows * d);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const float s = signs[i * d + j] > 0 ? 1.0f : -1.0f;
      x[i * d + j] = s * std::ldexp(1.0f, static_cast<int>(i) - 4);
      want[i * d + j] = s * w[j];
    }
  for (Compute c : ALL_COMPUTE) {
    std::vector<float> y(rows * d);
    rms_norm(x.data(), rows, d, w.data(), 0.0f, y.data(), c);
    EXPECT_EQ(y, want) << compute_name(c);
  }
}

// F32: the kernel sums squares in fp32 over at least 4 lane-wise partial sums of <= d/4 terms, so the sum's
//      relative error is below (d/4 + 4)·2^-24 ≈ 3.1e-5 for d = 2048, r's half that, plus three roundings: 2e-5.
// BF16: x̂ is rounded to bf16 before the weight multiply, so an x̂ within the fp32 error of a rounding boundary
//       may round the other way: allow 1 bf16 ulp per rounding (2 in all) and require such cases to be rare.
TEST(RmsNorm, RandomAgainstReferenceAndInPlace) {
  const int64_t rows = 37, d = 2048;
  auto x = random_floats(rows * d, -3.0f, 3.0f, 3);
  for (Compute c : ALL_COMPUTE) {
    auto xc = as_compute(x, c);
    auto w = as_compute(random_floats(d, 0.5f, 1.5f, 4), c);
    std::vector<float> y(rows * d), want(rows * d);
    rms_norm(xc.data(), rows, d, w.data(), 1e-6f, y.data(), c);
    ref::rms_norm(xc.data(), rows, d, w.data(), 1e-6f, want.data(), c);
    int64_t off = 0;
    for (int64_t i = 0; i < rows * d; ++i) {
      if (c == Compute::F32) {
        ASSERT_NEAR(y[i], want[i], 2e-5 * std::fabs(want[i]) + 1e-30) << i;
      } else {
        ASSERT_LE(bf16_ulps(y[i], want[i]), 2.0) << i;
        off += y[i] != want[i];
      }
    }
    EXPECT_LT(off, rows * d / 100);
    auto inplace = xc;
    rms_norm(inplace.data(), rows, d, w.data(), 1e-6f, inplace.data(), c);
    EXPECT_EQ(inplace, y) << "in place must equal out of place";
  }
}

// LayerNorm: a row of ±c around a mean m normalises to ±1 exactly (eps 0), then w·(±1) + b; random rows match the
// double-precision reference (F32: a few fp32 roundings of the two sums; BF16: the one final rounding may differ by
// 1 ulp where the fp32 value sits on a rounding boundary), and in place equals out of place.
TEST(LayerNorm, ExactOnSymmetricRowsAndRandomAgainstReference) {
  const int64_t d = 64;
  auto w = random_ints(d, -8, 8, 11);
  auto b = random_ints(d, -4, 4, 12);
  std::vector<float> x(static_cast<size_t>(d)), want(static_cast<size_t>(d)), y(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) {
    const float s = (j % 2) ? 1.0f : -1.0f;
    x[j] = 100.0f + s * 0.5f;
    want[j] = s * w[j] + b[j];
  }
  layer_norm(x.data(), 1, d, w.data(), b.data(), 0.0f, y.data(), Compute::F32);
  EXPECT_EQ(y, want);

  const int64_t rows = 29, D = 1280;
  auto xr = random_floats(rows * D, -3.0f, 5.0f, 13);
  for (Compute c : ALL_COMPUTE) {
    auto xc = as_compute(xr, c);
    auto wc = as_compute(random_floats(D, 0.5f, 1.5f, 14), c);
    auto bc = as_compute(random_floats(D, -0.5f, 0.5f, 15), c);
    std::vector<float> got(rows * D), ref_y(rows * D);
    layer_norm(xc.data(), rows, D, wc.data(), bc.data(), 1e-5f, got.data(), c);
    ref::layer_norm(xc.data(), rows, D, wc.data(), bc.data(), 1e-5f, ref_y.data(), c);
    for (int64_t i = 0; i < rows * D; ++i) {
      if (c == Compute::F32)
        ASSERT_NEAR(got[i], ref_y[i], 2e-5 * (std::fabs(ref_y[i]) + 1.0)) << i;
      else
        ASSERT_LE(bf16_ulps(got[i], ref_y[i]), 1.0) << i;
    }
    auto inplace = xc;
    layer_norm(inplace.data(), rows, D, wc.data(), bc.data(), 1e-5f, inplace.data(), c);
    EXPECT_EQ(inplace, got);
  }
}

// The tables must equal the reference exactly (same definition: inv_freq in double rounded to float, one fp32
// multiply, cos/sin correctly rounded), and f selects its position row by section.
TEST(MropeTables, MatchReferenceAndSections) {
  const int64_t n = 50, d = 128;
  const std::vector<int> sections{16, 24, 24};
  std::vector<int64_t> pos(3 * n);
  for (int64_t t = 0; t < n; ++t) {
    pos[t] = t * 1000 + 3;       // T
    pos[n + t] = t % 7;          // H
    pos[2 * n + t] = 30000 - t;  // W
  }
  for (Compute c : ALL_COMPUTE) {
    std::vector<float> cs(n * d), sn(n * d), rc(n * d), rs(n * d);
    mrope_tables(pos.data(), n, d, 1e6f, sections, cs.data(), sn.data(), c);
    ref::mrope_tables(pos.data(), n, d, 1e6f, sections, rc.data(), rs.data(), c);
    EXPECT_EQ(cs, rc) << compute_name(c);
    EXPECT_EQ(sn, rs) << compute_name(c);
    if (c == Compute::F32)
      for (int64_t t = 0; t < n; ++t) {  // f = 0 has inv_freq 1: the angle is the T position itself
        EXPECT_EQ(cs[t * d], static_cast<float>(std::cos(static_cast<double>(static_cast<float>(pos[t])))));
        EXPECT_EQ(cs[t * d + 64], cs[t * d]);
        const float inv16 = static_cast<float>(1.0 / std::pow(1e6, 32.0 / 128.0));  // f = 16: first H frequency
        EXPECT_EQ(sn[t * d + 16], static_cast<float>(std::sin(static_cast<double>(pos[n + t] * inv16))));
      }
  }
}

// Small integers (products and sums exact in fp32 and bf16): fast == reference exactly, in F32 and BF16, strided.
TEST(ApplyRotary, ExactOnSmallIntegersStrided) {
  const int64_t n = 11, heads = 3, d = 16, ld = heads * d + 4;
  auto x = random_ints(n * ld, -8, 8, 5);
  auto cs = random_ints(n * d, -3, 3, 6), sn = random_ints(n * d, -3, 3, 7);
  for (Compute c : ALL_COMPUTE) {
    auto a = x, b = x;
    apply_rotary(a.data(), ld, n, heads, d, cs.data(), sn.data(), c);
    ref::apply_rotary(b.data(), ld, n, heads, d, cs.data(), sn.data(), c);
    EXPECT_EQ(a, b) << compute_name(c);
  }
}

// Random values. BF16: every product and the sum are rounded to bf16 on both sides from the same fp32 operations,
// so the results are identical. F32: the reference rounds the exact a·c − b·s once; the kernel may round each
// product (or fuse one into an FMA): a few ulp of the products' magnitude.
TEST(ApplyRotary, RandomAgainstReference) {
  const int64_t n = 40, heads = 16, d = 128, ld = heads * d;
  auto x0 = random_floats(n * ld, -4.0f, 4.0f, 8);
  auto ang = random_floats(n * d, -3.0f, 3.0f, 9);
  for (Compute c : ALL_COMPUTE) {
    std::vector<float> cs(n * d), sn(n * d);
    for (size_t i = 0; i < ang.size(); ++i) cs[i] = std::cos(ang[i]), sn[i] = std::sin(ang[i]);
    cs = as_compute(cs, c), sn = as_compute(sn, c);
    auto x = as_compute(x0, c), a = x, b = x;
    apply_rotary(a.data(), ld, n, heads, d, cs.data(), sn.data(), c);
    ref::apply_rotary(b.data(), ld, n, heads, d, cs.data(), sn.data(), c);
    if (c == Compute::BF16) {
      EXPECT_EQ(a, b);
    } else {
      for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2.5e-6) << i;  // |products| <= 4
    }
  }
}

// F32: exp_fast is within a few ulp and the division adds one: 1e-6 relative. BF16: silu(g) and the product are
// rounded to bf16; a value within that error of a rounding boundary may round the other way (1 bf16 ulp each).
TEST(SiluMul, RandomAgainstReferenceStrided) {
  const int64_t rows = 19, cols = 333, ldg = 400, ldu = 350, ldy = 340;
  auto g = random_floats(rows * ldg, -12.0f, 12.0f, 10);
  auto u = random_floats(rows * ldu, -2.0f, 2.0f, 11);
  for (Compute c : ALL_COMPUTE) {
    auto gc = as_compute(g, c), uc = as_compute(u, c);
    std::vector<float> y(rows * ldy, 9.0f), want(rows * ldy, 9.0f);
    silu_mul(gc.data(), ldg, uc.data(), ldu, y.data(), ldy, rows, cols, c);
    ref::silu_mul(gc.data(), ldg, uc.data(), ldu, want.data(), ldy, rows, cols, c);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < ldy; ++j) {
        const float got = y[i * ldy + j], expect = want[i * ldy + j];
        if (j >= cols) {
          ASSERT_EQ(got, 9.0f) << "padding written";
        } else if (c == Compute::F32) {
          ASSERT_NEAR(got, expect, 1e-6 * std::fabs(expect) + 1e-37) << i << "," << j;
        } else {
          ASSERT_LE(bf16_ulps(got, expect), 2.0) << i << "," << j;
        }
      }
  }
}

// Vision 2-D rotary tables against the formula of spec §4.3 written out for d_head = 80: 20 frequencies
// 1/10000^(2j/40), the first 20 angles from the row, the next 20 from the column, then the same 40 again.
TEST(VisionRotaryTables, MatchesSpecFormula) {
  const int64_t d = 80, n = 5;
  const std::vector<int64_t> rows = {0, 1, 7, 95, 3}, cols = {0, 2, 5, 95, 140};
  std::vector<float> cs(n * d), sn(n * d);
  vision_rotary_tables(rows.data(), cols.data(), n, d, 10000.0f, cs.data(), sn.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      const int64_t k = i % 40;
      const float inv = static_cast<float>(std::pow(10000.0, -2.0 * (k % 20) / 40.0));
      const float angle = static_cast<float>(k < 20 ? rows[t] : cols[t]) * inv;
      ASSERT_NEAR(cs[t * d + i], std::cos(static_cast<double>(angle)), 1e-7) << t << "," << i;
      ASSERT_NEAR(sn[t * d + i], std::sin(static_cast<double>(angle)), 1e-7) << t << "," << i;
    }
  EXPECT_EQ(cs[0], 1.0f);
  EXPECT_EQ(sn[d - 1], 0.0f);
}

// GELU(erf) against a float64 reference. F32: the kernel uses the reference's formula 0.5·x·(1 + erf(x/√2)) in
// float, whose 1 + erf cancels for negative x, so the error is a few ulp of the result plus ~ulp(1)·|x|.
// BF16: at most one bf16 ulp (the float result may sit on the other side of a rounding boundary), or the same
// cancellation bound.
// BF16 GELU is a lookup of the rounded input's result: over every bf16 value (and unrounded inputs between them),
// it must equal the float expression it replaced, 0.5·v·(1 + erf(v/√2)) on the rounded v, rounded, bit for bit.
TEST(GeluErf, Bf16LookupEqualsTheFloatExpressionForEveryInput) {
  std::vector<float> x;
  for (uint32_t b = 0; b < 65536; ++b) {
    const float v = std::bit_cast<float>(b << 16);
    x.push_back(v);
    x.push_back(std::bit_cast<float>((b << 16) | 0x7fffu));  // rounds to v or to its neighbour
  }
  std::vector<float> y = x;
  gelu_erf(y.data(), static_cast<int64_t>(y.size()), Compute::BF16);
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = round_bf16(x[i]);
    const float want = round_bf16(0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)));
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(y[i])) << "x bits " << std::bit_cast<uint32_t>(x[i]);
    else
      ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want))
          << "x=" << x[i] << " bits " << std::bit_cast<uint32_t>(x[i]);
  }
}

TEST(GeluErf, AgainstReferenceOverRange) {
  auto x = random_floats(20000, -9.0f, 9.0f, 12);
  x.push_back(0.0f);
  x.push_back(-30.0f);
  x.push_back(30.0f);
  for (Compute c : ALL_COMPUTE) {
    auto a = as_compute(x, c), b = a;
    gelu_erf(a.data(), static_cast<int64_t>(a.size()), c);
    ref::gelu_erf(b.data(), static_cast<int64_t>(b.size()), c);
    for (size_t i = 0; i < a.size(); ++i) {
      if (c == Compute::F32)
        ASSERT_NEAR(a[i], b[i], 4e-7 * std::fabs(b[i]) + 1.2e-7 * std::fabs(x[i])) << "x=" << x[i];
      else
        ASSERT_TRUE(bf16_ulps(a[i], b[i]) <= 1.0 || std::fabs(a[i] - b[i]) <= 1.2e-7 * std::fabs(x[i]))
            << "x=" << x[i] << " got " << a[i] << " want " << b[i];
    }
    EXPECT_EQ(a[a.size() - 2], 0.0f);   // GELU(-30) underflows to -0 or 0
    EXPECT_EQ(a[a.size() - 1], 30.0f);  // GELU(30) = 30
    EXPECT_EQ(a[a.size() - 3], 0.0f);
  }
}

// exp_fast (used by attention's softmax and by SiLU) against libm in double, over its whole range.
TEST(VecMath, ExpWithinThreeUlp) {
  for (double xd = -103.0; xd < 88.7; xd += 0.0137) {
    const float x = static_cast<float>(xd);
    const double want = std::exp(static_cast<double>(x));
    const float got = detail::exp_fast(x);
    const double ulp = want < 1.1754943508222875e-38 ? std::ldexp(1.0, -149) : std::ldexp(1.0, std::ilogb(want) - 23);
    ASSERT_LE(std::fabs(got - want), 3 * ulp) << "x=" << x;
  }
  EXPECT_EQ(detail::exp_fast(0.0f), 1.0f);
  EXPECT_EQ(detail::exp_fast(-200.0f), 0.0f);
  EXPECT_EQ(detail::exp_fast(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(detail::exp_fast(std::numeric_limits<float>::quiet_NaN())));
}

#ifdef __AVX512F__
// The softmax's vector exp for x <= 0 (vec_math.h) against libm in double: within 2 ulp down to the smallest normal
// result, exactly 0 below it (where it deliberately flushes), NaN kept.
TEST(VecMath, ExpNonpositiveAvx512) {
  alignas(64) float in[16], out[16];
  for (double x0 = -87.3; x0 <= 0.0; x0 += 16 * 0.00731) {
    for (int l = 0; l < 16; ++l) in[l] = static_cast<float>(std::min(0.0, x0 + l * 0.00731));
    _mm512_store_ps(out, detail::exp_nonpositive_avx512(_mm512_load_ps(in)));
    for (int l = 0; l < 16; ++l) {
      const double want = std::exp(static_cast<double>(in[l]));
      ASSERT_LE(std::fabs(out[l] - want), 2 * std::ldexp(1.0, std::ilogb(want) - 23)) << "x=" << in[l];
    }
  }
  const float specials[16] = {0.0f, -0.0f, -87.34f, -100.0f, -1e30f, -std::numeric_limits<float>::infinity(),
                              std::numeric_limits<float>::quiet_NaN(), -1.0f, -2.0f, -0.5f, -10.0f, -20.0f,
                              -40.0f, -80.0f, -86.0f, -87.0f};
  std::copy(std::begin(specials), std::end(specials), in);
  _mm512_store_ps(out, detail::exp_nonpositive_avx512(_mm512_load_ps(in)));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f);
  for (int l = 2; l < 6; ++l) EXPECT_EQ(out[l], 0.0f) << in[l];
  EXPECT_TRUE(std::isnan(out[6]));
}

// The vector bf16 conversion against core/dtype.h's f32_to_bf16 (ties to even, NaN quiet, infinities, overflow).
TEST(VecMath, ToBf16BitsAvx512MatchesCore) {
  auto x = random_floats(4096, -1e4f, 1e4f, 16);
  const float specials[] = {1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8), -0.0f,
                            std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
  std::copy(std::begin(specials), std::end(specials), x.begin());
  alignas(32) uint16_t bits[16];
  for (size_t i = 0; i < x.size(); i += 16) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(bits), detail::to_bf16_bits_avx512(_mm512_loadu_ps(&x[i])));
    for (int l = 0; l < 16; ++l) ASSERT_EQ(bits[l], f32_to_bf16(x[i + l])) << x[i + l];
  }
}
#endif

// The rounding helpers against core/dtype.h's independent round_bf16, including ties, NaN, infinities, subnormals.
TEST(AddInplaceAndRound, MatchCoreBf16Rounding) {
  std::vector<float> x = random_floats(5000, -100.0f, 100.0f, 12), y = random_floats(5000, -1.0f, 1.0f, 13);
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f + std::ldexp(1.0f, -8),
                            1.0f + 3 * std::ldexp(1.0f, -8),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(),
                            3.3895313892515355e38f,
                            std::numeric_limits<float>::max()};
  for (size_t i = 0; i < std::size(specials); ++i) x[i] = specials[i], y[i] = 0.0f;
  for (Compute c : ALL_COMPUTE) {
    auto a = x;
    add_inplace(a.data(), y.data(), static_cast<int64_t>(a.size()), c);
    for (size_t i = 0; i < a.size(); ++i) {
      // BF16: y is rounded first (a matmul's raw output may be passed in), then the sum.
      const float want = c == Compute::BF16 ? round_bf16(x[i] + round_bf16(y[i])) : x[i] + y[i];
      ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(want)) << i;
    }
    auto r = x;
    r[0] = std::numeric_limits<float>::quiet_NaN();
    round_activations(r.data(), static_cast<int64_t>(r.size()), c);
    EXPECT_TRUE(std::isnan(r[0]));
    for (size_t i = 1; i < r.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(r[i]), std::bit_cast<uint32_t>(c == Compute::BF16 ? round_bf16(x[i]) : x[i]))
          << i;
  }
}

// Large-n paths (the OpenMP branches) agree with the small-n results element by element.
TEST(AddInplaceAndRound, LargeArraysParallel) {
  const int64_t n = 300001;
  auto x = random_floats(n, -10.0f, 10.0f, 14), y = random_floats(n, -10.0f, 10.0f, 15);
  auto a = x;
  add_inplace(a.data(), y.data(), n, Compute::BF16);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], round_bf16(x[i] + round_bf16(y[i]))) << i;
}

}  // namespace
}  // namespace oe::kernels
