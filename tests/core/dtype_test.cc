#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/tensor.h"

namespace oe {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 is exactly half-way between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(round_bf16(1.0f + std::ldexp(1.0f, -8)), 1.0f);
  // 1 + 3·2^-8 is half-way between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6 (even).
  EXPECT_EQ(round_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  // Just above the half-way point rounds up.
  EXPECT_EQ(round_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 1.0f + std::ldexp(1.0f, -7));
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(F16, RoundTripsAndRounds) {
  for (float v : {0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  }
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + std::ldexp(1.0f, -11))), 1.0f);  // tie to even
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
}

TEST(Tensor, ShapeAndConversion) {
  Tensor t({2, 3}, DType::BF16);
  auto* p = t.ptr<bf16_t>();
  for (int i = 0; i < 6; ++i) p[i] = f32_to_bf16(static_cast<float>(i) - 2.5f);
  Tensor f = t.to_f32();
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.shape(), (Shape{2, 3}));
  EXPECT_EQ(f.ptr<float>()[5], 2.5f);
  EXPECT_EQ(t.reshaped({3, 2}).dim(0), 3);
  EXPECT_THROW(t.reshaped({4, 2}), std::exception);
}

}  // namespace
}  // namespace oe
