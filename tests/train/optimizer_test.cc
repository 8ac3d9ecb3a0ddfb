// AdamW and the learning-rate schedule (train/optimizer.h) on values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "train/optimizer.h"

namespace oe::train {
namespace {

model::LoraAdapter one_parameter_pair(float a, float b) {
  model::LoraAdapter ad;
  ad.layers.resize(1);
  auto& lw = ad.layers[0][0];
  lw.n_in = 1;
  lw.n_out = 1;
  lw.a = {a};
  lw.b = {b};
  return ad;
}

TEST(AdamW, TwoStepsByHand) {
  model::LoraAdapter p = one_parameter_pair(1.0f, -2.0f), g = one_parameter_pair(0.5f, 0.0f);
  AdamW opt(p);
  const AdamWOptions o{0.1, 0.9, 0.999, 1e-8, 0.01};
  opt.update(p, g, 0.1, o);
  // a: decay 1 → 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25: step 0.1·0.5/0.5 = 0.1 → 0.899.
  EXPECT_NEAR(p.layers[0][0].a[0], 0.899, 1e-6);
  // b: zero gradient, only the decay: −2 · (1 − 0.001).
  EXPECT_NEAR(p.layers[0][0].b[0], -1.998, 1e-6);
  opt.update(p, g, 0.1, o);
  // a: 0.899 · 0.999 = 0.898101; m = 0.095, v = 0.00049975; m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.001999 = 0.25.
  EXPECT_NEAR(p.layers[0][0].a[0], 0.898101 - 0.1, 1e-6);
  EXPECT_EQ(opt.step(), 2);
  EXPECT_NEAR(gradient_norm(g), 0.5, 1e-7);
  scale_gradients(g, 0.5);
  EXPECT_NEAR(gradient_norm(g), 0.25, 1e-7);
}

TEST(Schedule, WarmupThenCosine) {
  EXPECT_NEAR(scheduled_lr(1.0, 0, 10, 2), 0.5, 1e-12);  // (step + 1) / warmup
  EXPECT_NEAR(scheduled_lr(1.0, 1, 10, 2), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(1.0, 2, 10, 2), 1.0, 1e-12);  // cosine starts at the peak
  EXPECT_NEAR(scheduled_lr(1.0, 6, 10, 2), 0.5, 1e-12);  // halfway through the decay
  EXPECT_GT(scheduled_lr(1.0, 9, 10, 2), 0.0);           // the last step still learns
  EXPECT_NEAR(scheduled_lr(1.0, 9, 10, 2), 0.5 * (1 + std::cos(M_PI * 7.0 / 8.0)), 1e-12);
  EXPECT_NEAR(scheduled_lr(2.0, 0, 4, 0), 2.0, 1e-12);  // no warm-up
}

}  // namespace
}  // namespace oe::train
