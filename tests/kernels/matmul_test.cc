// PackedLinear (oneDNN, pre-packed; in BF16 mode also the AMX GEMM) against ref::linear (scalar, double
// accumulation).
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/reference.h"
#include "test_util.h"

namespace oe::kernels {
namespace {

using testing::ALL_COMPUTE;
using testing::random_floats;
using testing::random_ints;

// The weight in the requested storage type, plus its float values (exact images of what was stored).
struct StoredWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

StoredWeight store(const std::vector<float>& w, DType t) {
  StoredWeight s;
  s.values.resize(w.size());
  s.bytes.resize(w.size() * dtype_size(t));
  for (size_t i = 0; i < w.size(); ++i) {
    if (t == DType::F32) {
      std::memcpy(s.bytes.data() + 4 * i, &w[i], 4);
      s.values[i] = w[i];
    } else if (t == DType::BF16) {
      bf16_t b = f32_to_bf16(w[i]);
      std::memcpy(s.bytes.data() + 2 * i, &b, 2);
      s.values[i] = bf16_to_f32(b);
    } else {
      f16_t h = f32_to_f16(w[i]);
      std::memcpy(s.bytes.data() + 2 * i, &h, 2);
      s.values[i] = f16_to_f32(h);
    }
  }
  return s;
}

struct Shape {
  int64_t m, n_out, n_in;
};

// The BF16 kernels this machine can run: oneDNN always, the AMX GEMM where the CPU has AMX-BF16.
std::vector<Bf16Gemm> bf16_kernels() {
  std::vector<Bf16Gemm> k{Bf16Gemm::OneDnn};
  if (resolve_bf16_gemm(Bf16Gemm::Auto) == Bf16Gemm::Amx) k.push_back(Bf16Gemm::Amx);
  return k;
}

// Small integers: every product and partial sum is an integer below 2^24, so fp32 accumulation is exact in any
// order, and the values are exact in bf16 and f16. The result must equal the reference exactly.
TEST(PackedLinear, ExactOnSmallIntegersAllTypesAndStrides) {
  const Shape shapes[] = {{1, 17, 33}, {7, 33, 64}, {33, 100, 129}, {64, 48, 40}};
  for (Bf16Gemm g : bf16_kernels())
    for (Compute c : ALL_COMPUTE)
      for (DType wt : {DType::F32, DType::BF16, DType::F16})
        for (const Shape& s : shapes)
          for (bool with_bias : {false, true})
            for (int64_t pad : {0, 5}) {
              SCOPED_TRACE(::testing::Message()
                           << bf16_gemm_name(g) << " " << compute_name(c) << " " << dtype_name(wt) << " m=" << s.m
                           << " n_out=" << s.n_out << " n_in=" << s.n_in << " bias=" << with_bias << " pad=" << pad);
              auto x = random_ints(s.m * s.n_in, -4, 4, 1);
              auto w = store(random_ints(s.n_out * s.n_in, -4, 4, 2), wt);
              auto b = random_ints(s.n_out, -20, 20, 3);
              PackedLinear lin(w.bytes.data(), wt, s.n_out, s.n_in, with_bias ? b.data() : nullptr, DType::F32, c, g);
              const int64_t ldx = s.n_in + pad, ldy = s.n_out + pad;
              std::vector<float> xs(s.m * ldx, 1e30f), y(s.m * ldy, -7.0f);
              for (int64_t i = 0; i < s.m; ++i) std::copy_n(x.begin() + i * s.n_in, s.n_in, xs.begin() + i * ldx);
              lin.forward(xs.data(), s.m, y.data(), ldx, ldy);
              std::vector<float> want(s.m * s.n_out);
              ref::linear(x.data(), s.m, w.values.data(), s.n_out, s.n_in, with_bias ? b.data() : nullptr, want.data(),
                          c);
              for (int64_t i = 0; i < s.m; ++i) {
                for (int64_t o = 0; o < s.n_out; ++o) ASSERT_EQ(y[i * ldy + o], want[i * s.n_out + o]) << i << "," << o;
                for (int64_t o = s.n_out; o < ldy; ++o) ASSERT_EQ(y[i * ldy + o], -7.0f) << "padding overwritten";
              }
            }
}

// Random values. Both sides multiply the same (bf16-rounded in BF16 mode) inputs, and every product of two bf16 or
// two fp32 values is then accumulated in fp32; the worst-case error of an fp32 sum of n_in terms is
// n_in · 2^-24 · Σ|x·w| (plus one rounding of the bias add), so the tolerance 1.1 · (n_in + 2) · 2^-24 · Σ|x·w|
// is a proven bound, not a fitted one.
TEST(PackedLinear, RandomWithinFp32AccumulationBound) {
  const Shape shapes[] = {{1, 31, 300}, {13, 64, 257}, {100, 40, 96}};
  for (Bf16Gemm g : bf16_kernels())
    for (Compute c : ALL_COMPUTE)
      for (DType wt : {DType::F32, DType::BF16, DType::F16})
        for (const Shape& s : shapes) {
          SCOPED_TRACE(::testing::Message()
                       << bf16_gemm_name(g) << " " << compute_name(c) << " " << dtype_name(wt) << " m=" << s.m);
          auto x = random_floats(s.m * s.n_in, -2.0f, 2.0f, 11);
          auto w = store(random_floats(s.n_out * s.n_in, -1.0f, 1.0f, 12), wt);
          auto b = random_floats(s.n_out, -1.0f, 1.0f, 13);
          std::vector<uint16_t> b_bf16(s.n_out);
          for (int64_t o = 0; o < s.n_out; ++o) b_bf16[o] = f32_to_bf16(b[o]);
          for (int64_t o = 0; o < s.n_out; ++o) b[o] = bf16_to_f32(b_bf16[o]);  // a BF16 bias, converted exactly
          PackedLinear lin(w.bytes.data(), wt, s.n_out, s.n_in, b_bf16.data(), DType::BF16, c, g);
          std::vector<float> y(s.m * s.n_out), want(s.m * s.n_out);
          lin.forward(x.data(), s.m, y.data());
          ref::linear(x.data(), s.m, w.values.data(), s.n_out, s.n_in, b.data(), want.data(), c);
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t o = 0; o < s.n_out; ++o) {
              double mag = std::fabs(b[o]);
              for (int64_t j = 0; j < s.n_in; ++j) {
                float xv = x[i * s.n_in + j], wv = w.values[o * s.n_in + j];
                if (c == Compute::BF16) xv = round_bf16(xv), wv = round_bf16(wv);
                mag += std::fabs(static_cast<double>(xv) * wv);
              }
              const double tol = 1.1 * (s.n_in + 2) * std::ldexp(1.0, -24) * mag;
              ASSERT_NEAR(y[i * s.n_out + o], want[i * s.n_out + o], tol) << i << "," << o;
            }
        }
}

// Shapes that cross every blocking boundary of the AMX kernel: several K chunks (n_in > 512, not a multiple of 32),
// more panels per thread than one block holds, an odd number of 16-row tiles, a single row, and a partial last
// panel. Small integers keep the results exact.
TEST(PackedLinear, Bf16ExactAcrossBlocksAndChunks) {
  const Shape shapes[] = {{1, 600, 1100}, {33, 600, 1100}, {50, 70, 2000}, {96, 1030, 40}};
  for (Bf16Gemm g : bf16_kernels())
    for (const Shape& s : shapes) {
      SCOPED_TRACE(::testing::Message() << bf16_gemm_name(g) << " m=" << s.m << " n_out=" << s.n_out
                                        << " n_in=" << s.n_in);
      auto x = random_ints(s.m * s.n_in, -4, 4, 41);
      auto w = store(random_ints(s.n_out * s.n_in, -4, 4, 42), DType::BF16);
      auto b = random_ints(s.n_out, -20, 20, 43);
      PackedLinear lin(w.bytes.data(), DType::BF16, s.n_out, s.n_in, b.data(), DType::F32, Compute::BF16, g);
      EXPECT_STREQ(lin.kernel_name(), g == Bf16Gemm::Amx ? "amx" : "onednn");
      const int64_t ldx = s.n_in + 3, ldy = s.n_out + 7;
      std::vector<float> xs(s.m * ldx, 1e30f), y(s.m * ldy, -7.0f);
      for (int64_t i = 0; i < s.m; ++i) std::copy_n(x.begin() + i * s.n_in, s.n_in, xs.begin() + i * ldx);
      lin.forward(xs.data(), s.m, y.data(), ldx, ldy);
      std::vector<float> want(s.m * s.n_out);
      ref::linear(x.data(), s.m, w.values.data(), s.n_out, s.n_in, b.data(), want.data(), Compute::BF16);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t o = 0; o < s.n_out; ++o) ASSERT_EQ(y[i * ldy + o], want[i * s.n_out + o]) << i << "," << o;
        for (int64_t o = s.n_out; o < ldy; ++o) ASSERT_EQ(y[i * ldy + o], -7.0f) << "padding overwritten";
      }
    }
}

// A gated layer's forward_silu_mul gives exactly what forward() of the same stacked [gate; up] weight followed by
// silu_mul gives, bit for bit, on every kernel and precision: on the AMX GEMM (products formed from the accumulator
// tiles) with ragged rows, a gate width that is not a multiple of 16, biases, K over several chunks and strides.
// The act padding is never written.
TEST(PackedLinear, GatedSiluMulEqualsForwardThenSiluMul) {
  struct Case {
    int64_t m, d, n_in;
    bool bias;
  };
  const Case cases[] = {{1, 16, 40, false},   {15, 48, 300, false}, {17, 48, 300, false}, {33, 64, 520, false},
                        {70, 160, 64, false}, {32, 24, 40, false},  {20, 32, 40, true},   {45, 44, 300, true}};
  for (Compute c : ALL_COMPUTE)
    for (Bf16Gemm g : c == Compute::BF16 ? bf16_kernels() : std::vector<Bf16Gemm>{Bf16Gemm::Auto})
      for (const Case& k : cases) {
        SCOPED_TRACE(::testing::Message() << compute_name(c) << " " << bf16_gemm_name(g) << " m=" << k.m
                                          << " d=" << k.d << " n_in=" << k.n_in << " bias=" << k.bias);
        const int64_t n = 2 * k.d;
        auto w = store(random_floats(n * k.n_in, -0.5f, 0.5f, 51), DType::BF16);
        auto b = random_floats(n, -1.0f, 1.0f, 52);
        auto x = random_floats(k.m * k.n_in, -2.0f, 2.0f, 53);
        const float* bias = k.bias ? b.data() : nullptr;
        PackedLinear plain(w.bytes.data(), DType::BF16, n, k.n_in, bias, DType::F32, c, g);
        PackedLinear gated(w.bytes.data(), DType::BF16, n, k.n_in, bias, DType::F32, c, g, /*gated=*/true);
        std::vector<float> gu(k.m * n), want(k.m * k.d);
        plain.forward(x.data(), k.m, gu.data());
        silu_mul(gu.data(), n, gu.data() + k.d, n, want.data(), k.d, k.m, k.d, c);
        const int64_t ld_act = k.d + 5;
        std::vector<float> act(k.m * ld_act, -7.0f);
        gated.forward_silu_mul(x.data(), k.m, act.data(), 0, ld_act);
        for (int64_t i = 0; i < k.m; ++i) {
          for (int64_t j = 0; j < k.d; ++j) ASSERT_EQ(act[i * ld_act + j], want[i * k.d + j]) << i << "," << j;
          for (int64_t j = k.d; j < ld_act; ++j) ASSERT_EQ(act[i * ld_act + j], -7.0f) << "padding overwritten";
        }
        EXPECT_THROW(plain.forward_silu_mul(x.data(), k.m, act.data()), InternalError);
      }
}

// Auto picks the AMX GEMM for BF16 layers exactly when the CPU has it; F32 layers stay on oneDNN.
TEST(PackedLinear, AutoKernelChoice) {
  auto w = random_ints(24 * 40, -3, 3, 5);
  const bool amx = bf16_kernels().size() == 2;
  PackedLinear bf(w.data(), DType::F32, 24, 40, nullptr, DType::F32, Compute::BF16);
  PackedLinear f32(w.data(), DType::F32, 24, 40, nullptr, DType::F32, Compute::F32);
  EXPECT_STREQ(bf.kernel_name(), amx ? "amx" : "onednn");
  EXPECT_STREQ(f32.kernel_name(), "onednn");
  EXPECT_EQ(parse_bf16_gemm("onednn"), Bf16Gemm::OneDnn);
  EXPECT_EQ(parse_bf16_gemm("amx"), Bf16Gemm::Amx);
  EXPECT_EQ(parse_bf16_gemm("auto"), Bf16Gemm::Auto);
  EXPECT_THROW(parse_bf16_gemm("mkl"), InvalidInput);
  if (!amx) {
    EXPECT_THROW(resolve_bf16_gemm(Bf16Gemm::Amx), Unsupported);
    GTEST_SKIP() << "this CPU has no AMX-BF16: only the oneDNN kernel was checked";
  }
}

TEST(PackedLinear, Accessors) {
  auto w = random_ints(24 * 40, -3, 3, 5);
  PackedLinear empty;
  EXPECT_TRUE(empty.empty());
  for (Compute c : ALL_COMPUTE) {
    PackedLinear lin(w.data(), DType::F32, 24, 40, nullptr, DType::F32, c);
    EXPECT_FALSE(lin.empty());
    EXPECT_EQ(lin.n_out(), 24);
    EXPECT_EQ(lin.n_in(), 40);
    EXPECT_EQ(lin.compute(), c);
    EXPECT_GE(lin.packed_bytes(), size_t{24 * 40} * (c == Compute::F32 ? 4 : 2));
  }
  EXPECT_THROW(PackedLinear(w.data(), DType::I32, 24, 40, nullptr, DType::F32, Compute::F32), Unsupported);
}

// One shared PackedLinear, two std::threads calling forward concurrently with different M (and therefore
// different primitives created concurrently), many times; every result must be exact (small integers).
TEST(PackedLinear, ConcurrentForwardFromTwoThreads) {
  const int64_t n_out = 72, n_in = 96;
  auto w = random_ints(n_out * n_in, -4, 4, 21);
  auto b = random_ints(n_out, -9, 9, 22);
  for (Bf16Gemm g : bf16_kernels())
    for (Compute c : ALL_COMPUTE) {
      PackedLinear lin(w.data(), DType::F32, n_out, n_in, b.data(), DType::F32, c, g);
      auto worker = [&](int64_t m0, uint32_t seed, int* failures) {
        for (int rep = 0; rep < 12; ++rep) {
          const int64_t m = m0 + rep % 3;  // a few distinct M per thread, none shared with the other thread
          auto x = random_ints(m * n_in, -4, 4, seed + rep);
          std::vector<float> y(m * n_out), want(m * n_out);
          lin.forward(x.data(), m, y.data());
          ref::linear(x.data(), m, w.data(), n_out, n_in, b.data(), want.data(), c);
          if (y != want) ++*failures;
        }
      };
      int fail_a = 0, fail_b = 0;
      std::thread ta(worker, 5, 100, &fail_a), tb(worker, 37, 200, &fail_b);
      ta.join();
      tb.join();
      EXPECT_EQ(fail_a, 0) << compute_name(c);
      EXPECT_EQ(fail_b, 0) << compute_name(c);
    }
}

// BF16 mode converts x to bf16 (round to nearest even) before the product: x values that are not bf16 must give
// the product of their rounded values, exactly (integer-valued weights and bf16-exact rounded x keep it exact).
TEST(PackedLinear, Bf16ModeRoundsActivationsToNearestEven) {
  const int64_t n_out = 16, n_in = 32;
  auto w = random_ints(n_out * n_in, -2, 2, 31);
  std::vector<float> x(n_in);
  for (int64_t j = 0; j < n_in; ++j) x[j] = 1.0f + std::ldexp(static_cast<float>(j % 5), -9);  // ties and not
  for (Bf16Gemm g : bf16_kernels()) {
    PackedLinear lin(w.data(), DType::F32, n_out, n_in, nullptr, DType::F32, Compute::BF16, g);
    std::vector<float> y(n_out), want(n_out);
    lin.forward(x.data(), 1, y.data());
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = 0.0;
      for (int64_t j = 0; j < n_in; ++j) acc += static_cast<double>(round_bf16(x[j])) * w[o * n_in + j];
      want[o] = static_cast<float>(acc);
    }
    EXPECT_EQ(y, want) << bf16_gemm_name(g);
  }
}

}  // namespace
}  // namespace oe::kernels
