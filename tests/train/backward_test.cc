// Every backward function of train/backward.h against central finite differences of its forward, in fp32: the
// scalar checked is L = Σ r ⊙ output for a fixed random r, so dL/doutput = r; the error is the relative norm
// ‖g_fd − g‖ / ‖g‖ over the coordinates probed, which must be ≤ 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "train/backward.h"

namespace oe::train {
namespace {

std::vector<float> random_vec(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(g);
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Central differences of loss() with respect to x (every coordinate, or `probes` of them), against `grad`.
double fd_error(std::vector<float>& x, const std::vector<float>& grad, const std::function<double()>& loss,
                double eps = 1e-2, size_t probes = 0) {
  std::vector<size_t> idx;
  if (probes == 0 || probes >= x.size()) {
    for (size_t i = 0; i < x.size(); ++i) idx.push_back(i);
  } else {
    std::mt19937_64 g(7);
    for (size_t i = 0; i < probes; ++i) idx.push_back(static_cast<size_t>(g() % x.size()));
  }
  double num = 0, den = 0;
  for (size_t i : idx) {
    const float x0 = x[i];
    x[i] = static_cast<float>(x0 + eps);
    const double lp = loss();
    x[i] = static_cast<float>(x0 - eps);
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (2 * eps);
    num += (fd - grad[i]) * (fd - grad[i]);
    den += static_cast<double>(grad[i]) * grad[i];
  }
  EXPECT_GT(den, 0.0) << "the gradient is zero where it is probed: the check would prove nothing";
  return std::sqrt(num / den);
}

TEST(Backward, LinearWithLora) {
  const int64_t m = 5, n_in = 12, n_out = 7, r = 3;
  const double scale = 2.0;
  auto x = random_vec(m * n_in, 1), w = random_vec(n_out * n_in, 2, 0.3f), bias = random_vec(n_out, 3);
  model::LoraWeights lw;
  lw.n_in = n_in;
  lw.n_out = n_out;
  lw.a = random_vec(r * n_in, 4, 0.3f);
  lw.b = random_vec(n_out * r, 5, 0.3f);
  auto rr = random_vec(m * n_out, 6);
  std::vector<float> y(m * n_out), t(m * r);
  auto loss = [&] {
    linear_forward(x.data(), m, n_in, w.data(), bias.data(), n_out, n_in, &lw, scale, x.data(), t.data(), y.data(),
                   n_out);
    return dot(y, rr);
  };
  loss();
  std::vector<float> dx(m * n_in, 0.0f);
  model::LoraWeights g = lw;
  std::fill(g.a.begin(), g.a.end(), 0.0f);
  std::fill(g.b.begin(), g.b.end(), 0.0f);
  linear_backward(rr.data(), m, n_out, w.data(), n_out, n_in, &lw, scale, x.data(), t.data(), dx.data(), dx.data(), &g);
  // x reaches y through W and through the LoRA branch (no dropout: x_lora is x).
  EXPECT_LT(fd_error(x, dx, loss), 1e-3);
  EXPECT_LT(fd_error(lw.a, g.a, loss), 1e-3);
  EXPECT_LT(fd_error(lw.b, g.b, loss), 1e-3);

  // With a separate dx_lora, the LoRA part of the input gradient is written there and not added to dx.
  std::vector<float> dx_base(m * n_in, 0.0f), dx_lora(m * n_in, 1e9f);
  model::LoraWeights g2 = g;
  linear_backward(rr.data(), m, n_out, w.data(), n_out, n_in, &lw, scale, x.data(), t.data(), dx_base.data(),
                  dx_lora.data(), &g2);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx_base[i] + dx_lora[i], dx[i], 1e-4);
}

TEST(Backward, RmsNorm) {
  const int64_t rows = 4, d = 16;
  auto x = random_vec(rows * d, 11), w = random_vec(d, 12), rr = random_vec(rows * d, 13);
  std::vector<float> y(rows * d), inv(rows);
  auto loss = [&] {
    rms_norm_forward(x.data(), rows, d, w.data(), 1e-6f, y.data(), inv.data());
    return dot(y, rr);
  };
  loss();
  std::vector<float> dx(rows * d, 0.0f);
  rms_norm_backward(x.data(), rr.data(), rows, d, w.data(), inv.data(), dx.data());
  EXPECT_LT(fd_error(x, dx, loss), 1e-3);
}

TEST(Backward, Rotary) {
  const int64_t rows = 3, heads = 2, dh = 8, ld = heads * dh + 5;  // rows with a stride, as q inside q|k|v
  auto x = random_vec(rows * ld, 21), rr = random_vec(rows * ld, 22);
  std::vector<float> cos(rows * dh), sin(rows * dh);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t f = 0; f < dh; ++f) {
      const double angle = 0.37 * static_cast<double>(t + 1) * static_cast<double>(f % (dh / 2) + 1);
      cos[t * dh + f] = static_cast<float>(std::cos(angle));
      sin[t * dh + f] = static_cast<float>(std::sin(angle));
    }
  for (int64_t t = 0; t < rows; ++t)  // the gap columns are not the rotation's: zero weight
    for (int64_t j = heads * dh; j < ld; ++j) rr[t * ld + j] = 0.0f;
  auto loss = [&] {
    std::vector<float> y = x;
    rotary_forward(y.data(), ld, rows, heads, dh, cos.data(), sin.data());
    return dot(y, rr);
  };
  std::vector<float> dx = rr;
  rotary_backward(dx.data(), ld, rows, heads, dh, cos.data(), sin.data());
  EXPECT_LT(fd_error(x, dx, loss), 1e-3);
}

TEST(Backward, AttentionSegmentsAndGqa) {
  AttentionShape a;
  a.n_heads = 4;
  a.n_kv_heads = 2;
  a.d_head = 6;
  a.scale = 1.0f / std::sqrt(6.0f);
  a.cu_seqlens = {0, 3, 8};  // two segments that must not see each other
  const int64_t S = 8, qd = a.n_heads * a.d_head, kd = a.n_kv_heads * a.d_head, ld = qd + 2 * kd;
  auto qkv = random_vec(S * ld, 31), rr = random_vec(S * qd, 32);
  std::vector<float> out(S * qd);
  auto loss = [&] {
    attention_forward(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, out.data(), qd, a);
    return dot(out, rr);
  };
  loss();
  std::vector<float> d(S * ld, 0.0f);
  attention_backward(qkv.data(), ld, qkv.data() + qd, ld, qkv.data() + qd + kd, ld, out.data(), qd, rr.data(), qd,
                     d.data(), d.data() + qd, d.data() + qd + kd, a);
  EXPECT_LT(fd_error(qkv, d, loss), 1e-3);

  // Segments are separate: the output of segment 0 does not depend on segment 1's keys.
  std::vector<float> before(out.begin(), out.begin() + 3 * qd);
  qkv[5 * ld + qd] += 3.0f;
  loss();
  for (int64_t i = 0; i < 3 * qd; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], before[static_cast<size_t>(i)]);
}

TEST(Backward, SiluMul) {
  const int64_t rows = 3, cols = 10, ld = 2 * cols;
  auto gu = random_vec(rows * ld, 41, 2.0f), rr = random_vec(rows * cols, 42);
  std::vector<float> act(rows * cols);
  auto loss = [&] {
    silu_mul_forward(gu.data(), gu.data() + cols, ld, rows, cols, act.data());
    return dot(act, rr);
  };
  loss();
  std::vector<float> d(rows * ld, 0.0f);
  silu_mul_backward(gu.data(), gu.data() + cols, ld, rows, cols, rr.data(), d.data(), d.data() + cols);
  EXPECT_LT(fd_error(gu, d, loss), 1e-3);
}

TEST(Backward, MeanL2) {
  const int64_t d = 8;
  const std::vector<int64_t> cu = {0, 2, 7};
  auto h = random_vec(7 * d, 51), rr = random_vec(2 * d, 52);
  std::vector<float> v(2 * d), norms(2);
  auto loss = [&] {
    mean_l2_forward(h.data(), d, cu, v.data(), norms.data());
    return dot(v, rr);
  };
  loss();
  double n0 = 0;
  for (int64_t j = 0; j < d; ++j) n0 += static_cast<double>(v[j]) * v[j];
  EXPECT_NEAR(n0, 1.0, 1e-6);
  std::vector<float> dh(7 * d, 0.0f);
  mean_l2_backward(v.data(), norms.data(), rr.data(), d, cu, dh.data());
  EXPECT_LT(fd_error(h, dh, loss), 1e-3);
}

TEST(Backward, InfoNce) {
  const int64_t B = 3, N = 7, d = 6;
  const std::vector<int64_t> pos = {0, 3, 5};
  auto q = random_vec(B * d, 61), p = random_vec(N * d, 62);
  auto loss = [&] { return info_nce(q.data(), B, p.data(), N, d, pos, 0.5).loss; };
  InfoNce r = info_nce(q.data(), B, p.data(), N, d, pos, 0.5);
  EXPECT_LT(fd_error(q, r.dq, loss), 1e-3);
  EXPECT_LT(fd_error(p, r.dp, loss), 1e-3);

  // By hand: one query, two documents at scores 1 and 0, τ = 1: L = log(1 + e⁻¹).
  const float q1[2] = {1, 0}, p2[4] = {1, 0, 0, 1};
  InfoNce h = info_nce(q1, 1, p2, 2, 2, {0}, 1.0);
  EXPECT_NEAR(h.loss, std::log(1 + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(h.correct, 1);
}

}  // namespace
}  // namespace oe::train
