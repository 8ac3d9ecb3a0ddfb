// Forward/backward pairs of the decoder's training path (backward.h), fp32. The matrix products go through
// kernels::gemm_f32 (oneDNN's sgemm); the rest are plain loops over rows, accumulated in double where a row sum is
// formed, as the reference kernels do.
#include "train/backward.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace oe::train {

using kernels::gemm_f32;

void linear_forward(const float* x, int64_t m, int64_t ldx, const FrozenWeight& w, const float* bias, int64_t n_out,
                    int64_t n_in, const model::LoraWeights* lora, double scale, const float* x_lora, float* t,
                    float* y, int64_t ldy) {
  if (w.packed) {
    OE_CHECK(w.packed->n_out() == n_out && w.packed->n_in() == n_in);
    w.packed->forward(x, m, y, ldx, ldy);
  } else {
    gemm_f32(false, true, m, n_out, n_in, 1.0f, x, ldx, w.f32, n_in, 0.0f, y, ldy);
  }
  if (bias)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n_out; ++j) y[i * ldy + j] += bias[j];
  if (lora && !lora->empty()) {
    OE_CHECK(lora->n_in == n_in && lora->n_out == n_out && t && x_lora);
    const int64_t r = static_cast<int64_t>(lora->a.size()) / n_in;
    gemm_f32(false, true, m, r, n_in, 1.0f, x_lora, n_in, lora->a.data(), n_in, 0.0f, t, r);          // t = x·Aᵀ
    gemm_f32(false, true, m, n_out, r, static_cast<float>(scale), t, r, lora->b.data(), r, 1.0f, y, ldy);  // += s·t·Bᵀ
  }
}

void linear_backward(const float* dy, int64_t m, int64_t ldy, const FrozenWeight& w, int64_t n_out, int64_t n_in,
                     const model::LoraWeights* lora, double scale, const float* x_lora, const float* t, float* dx,
                     float* dx_lora, model::LoraWeights* grad) {
  if (w.packed_t) {  // dx += dy·W as (Wᵀ)'s forward
    OE_CHECK(w.packed_t->n_out() == n_in && w.packed_t->n_in() == n_out);
    std::vector<float> tmp(static_cast<size_t>(m * n_in));
    w.packed_t->forward(dy, m, tmp.data(), ldy, n_in);
    for (size_t i = 0; i < tmp.size(); ++i) dx[i] += tmp[i];
  } else {
    gemm_f32(false, false, m, n_in, n_out, 1.0f, dy, ldy, w.f32, n_in, 1.0f, dx, n_in);  // dx += dy·W
  }
  if (!lora || lora->empty()) return;
  OE_CHECK(grad && grad->a.size() == lora->a.size() && grad->b.size() == lora->b.size());
  const int64_t r = static_cast<int64_t>(lora->a.size()) / n_in;
  const auto s = static_cast<float>(scale);
  // dB += s·dyᵀ·t
  gemm_f32(true, false, n_out, r, m, s, dy, ldy, t, r, 1.0f, grad->b.data(), r);
  // dt = s·dy·B [m, r]
  std::vector<float> dt(static_cast<size_t>(m * r));
  gemm_f32(false, false, m, r, n_out, s, dy, ldy, lora->b.data(), r, 0.0f, dt.data(), r);
  // dA += dtᵀ·x_lora
  gemm_f32(true, false, r, n_in, m, 1.0f, dt.data(), r, x_lora, n_in, 1.0f, grad->a.data(), n_in);
  // d(x_lora) = dt·A
  if (dx_lora && dx_lora != dx)
    gemm_f32(false, false, m, n_in, r, 1.0f, dt.data(), r, lora->a.data(), n_in, 0.0f, dx_lora, n_in);
  else
    gemm_f32(false, false, m, n_in, r, 1.0f, dt.data(), r, lora->a.data(), n_in, 1.0f, dx, n_in);
}

void rms_norm_forward(const float* x, int64_t rows, int64_t d, const float* w, float eps, float* y, float* inv) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(xr[j]) * xr[j];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    inv[i] = static_cast<float>(r);
    for (int64_t j = 0; j < d; ++j) y[i * d + j] = static_cast<float>(xr[j] * r * w[j]);
  }
}

void rms_norm_backward(const float* x, const float* dy, int64_t rows, int64_t d, const float* w, const float* inv,
                       float* dx) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * d;
    const float* gr = dy + i * d;
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(w[j]) * gr[j] * xr[j];
    const double r = inv[i], c = r * r * r * dot / static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) dx[i * d + j] += static_cast<float>(static_cast<double>(w[j]) * gr[j] * r - xr[j] * c);
  }
}

void rotary_forward(float* x, int64_t ld, int64_t rows, int64_t n_heads, int64_t d_head, const float* cos,
                    const float* sin) {
  kernels::apply_rotary(x, ld, rows, n_heads, d_head, cos, sin, kernels::Compute::F32);  // the inference kernel
}

void rotary_backward(float* dx, int64_t ld, int64_t rows, int64_t n_heads, int64_t d_head, const float* cos,
                     const float* sin) {
  // x'[f] = a·c[f] − b·s[f], x'[f+h] = b·c[f+h] + a·s[f+h]  ⇒  da = g[f]·c[f] + g[f+h]·s[f+h],
  //                                                            db = −g[f]·s[f] + g[f+h]·c[f+h].
  const int64_t half = d_head / 2;
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t h = 0; h < n_heads; ++h) {
      float* r = dx + t * ld + h * d_head;
      const float* c = cos + t * d_head;
      const float* s = sin + t * d_head;
      for (int64_t f = 0; f < half; ++f) {
        const double g0 = r[f], g1 = r[f + half];
        r[f] = static_cast<float>(g0 * c[f] + g1 * s[f + half]);
        r[f + half] = static_cast<float>(-g0 * s[f] + g1 * c[f + half]);
      }
    }
}

namespace {

// Row-wise softmax of p [n, n] in place.
void softmax_rows(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float* row = p + i * n;
    const float mx = *std::max_element(row, row + n);
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  }
}

void check_shape(const AttentionShape& a) {
  OE_CHECK(a.n_heads > 0 && a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 && a.d_head > 0 &&
           a.cu_seqlens.size() >= 2 && a.cu_seqlens.front() == 0);
}

}  // namespace

void attention_forward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                       float* out, int64_t ldo, const AttentionShape& a) {
  check_shape(a);
  const int64_t dh = a.d_head, group = a.n_heads / a.n_kv_heads;
  std::vector<float> p;
  for (size_t s = 0; s + 1 < a.cu_seqlens.size(); ++s) {
    const int64_t b = a.cu_seqlens[s], n = a.cu_seqlens[s + 1] - b;
    if (n <= 0) continue;
    p.resize(static_cast<size_t>(n * n));
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const int64_t kh = h / group;
      gemm_f32(false, true, n, n, dh, a.scale, q + b * ldq + h * dh, ldq, k + b * ldk + kh * dh, ldk, 0.0f, p.data(),
               n);
      softmax_rows(p.data(), n);
      gemm_f32(false, false, n, dh, n, 1.0f, p.data(), n, v + b * ldv + kh * dh, ldv, 0.0f, out + b * ldo + h * dh,
               ldo);
    }
  }
}

void attention_backward(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                        const float* out, int64_t ldo, const float* dout, int64_t lddo, float* dq, float* dk, float* dv,
                        const AttentionShape& a) {
  check_shape(a);
  const int64_t dh = a.d_head, group = a.n_heads / a.n_kv_heads;
  std::vector<float> p, dp;
  std::vector<double> rowdot;
  for (size_t s = 0; s + 1 < a.cu_seqlens.size(); ++s) {
    const int64_t b = a.cu_seqlens[s], n = a.cu_seqlens[s + 1] - b;
    if (n <= 0) continue;
    p.resize(static_cast<size_t>(n * n));
    dp.resize(static_cast<size_t>(n * n));
    rowdot.resize(static_cast<size_t>(n));
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const int64_t kh = h / group;
      const float* qh = q + b * ldq + h * dh;
      const float* kh_ = k + b * ldk + kh * dh;
      const float* vh = v + b * ldv + kh * dh;
      const float* oh = out + b * ldo + h * dh;
      const float* doh = dout + b * lddo + h * dh;
      gemm_f32(false, true, n, n, dh, a.scale, qh, ldq, kh_, ldk, 0.0f, p.data(), n);
      softmax_rows(p.data(), n);
      // dV += Pᵀ·dO
      gemm_f32(true, false, n, dh, n, 1.0f, p.data(), n, doh, lddo, 1.0f, dv + b * ldv + kh * dh, ldv);
      // dP = dO·Vᵀ
      gemm_f32(false, true, n, n, dh, 1.0f, doh, lddo, vh, ldv, 0.0f, dp.data(), n);
      // dS = P ⊙ (dP − rowsum(dO ⊙ O))
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < dh; ++j) acc += static_cast<double>(doh[i * lddo + j]) * oh[i * ldo + j];
        rowdot[static_cast<size_t>(i)] = acc;
      }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const size_t ij = static_cast<size_t>(i * n + j);
          dp[ij] = static_cast<float>(p[ij] * (dp[ij] - rowdot[static_cast<size_t>(i)]));
        }
      // dQ += scale·dS·K, dK += scale·dSᵀ·Q
      gemm_f32(false, false, n, dh, n, a.scale, dp.data(), n, kh_, ldk, 1.0f, dq + b * ldq + h * dh, ldq);
      gemm_f32(true, false, n, dh, n, a.scale, dp.data(), n, qh, ldq, 1.0f, dk + b * ldk + kh * dh, ldk);
    }
  }
}

namespace {
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

void silu_mul_forward(const float* g, const float* u, int64_t ld, int64_t rows, int64_t cols, float* act) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double x = g[i * ld + j];
      act[i * cols + j] = static_cast<float>(x * sigmoid(x) * u[i * ld + j]);
    }
}

void silu_mul_backward(const float* g, const float* u, int64_t ld, int64_t rows, int64_t cols, const float* dact,
                       float* dg, float* du) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double x = g[i * ld + j], sg = sigmoid(x), da = dact[i * cols + j];
      du[i * ld + j] += static_cast<float>(da * x * sg);
      dg[i * ld + j] += static_cast<float>(da * u[i * ld + j] * sg * (1.0 + x * (1.0 - sg)));
    }
}

void mean_l2_forward(const float* h, int64_t d, const std::vector<int64_t>& cu, float* v, float* norms) {
  std::vector<double> acc(static_cast<size_t>(d));
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    const int64_t n = cu[s + 1] - cu[s];
    OE_CHECK(n > 0);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t i = cu[s]; i < cu[s + 1]; ++i)
      for (int64_t j = 0; j < d; ++j) acc[static_cast<size_t>(j)] += h[i * d + j];
    double norm = 0;
    for (auto& x : acc) {
      x /= static_cast<double>(n);
      norm += x * x;
    }
    norm = std::sqrt(norm);
    norms[s] = static_cast<float>(norm);
    for (int64_t j = 0; j < d; ++j) v[static_cast<int64_t>(s) * d + j] = static_cast<float>(acc[static_cast<size_t>(j)] / norm);
  }
}

void mean_l2_backward(const float* v, const float* norms, const float* dv, int64_t d, const std::vector<int64_t>& cu,
                      float* dh) {
  std::vector<float> de(static_cast<size_t>(d));
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    const int64_t n = cu[s + 1] - cu[s];
    const float* vs = v + static_cast<int64_t>(s) * d;
    const float* gs = dv + static_cast<int64_t>(s) * d;
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(vs[j]) * gs[j];
    const double c = 1.0 / (static_cast<double>(norms[s]) * static_cast<double>(n));
    for (int64_t j = 0; j < d; ++j) de[static_cast<size_t>(j)] = static_cast<float>((gs[j] - vs[j] * dot) * c);
    for (int64_t i = cu[s]; i < cu[s + 1]; ++i)
      for (int64_t j = 0; j < d; ++j) dh[i * d + j] += de[static_cast<size_t>(j)];
  }
}

InfoNce info_nce(const float* q, int64_t B, const float* p, int64_t N, int64_t d, const std::vector<int64_t>& positive,
                 double temperature) {
  OE_CHECK(B > 0 && N > 0 && static_cast<int64_t>(positive.size()) == B && temperature > 0);
  InfoNce r;
  std::vector<float> z(static_cast<size_t>(B * N));
  gemm_f32(false, true, B, N, d, static_cast<float>(1.0 / temperature), q, d, p, d, 0.0f, z.data(), N);
  // dz = (softmax(z) − onehot) / B
  for (int64_t b = 0; b < B; ++b) {
    float* row = z.data() + b * N;
    const int64_t pos = positive[static_cast<size_t>(b)];
    OE_CHECK(pos >= 0 && pos < N);
    const float mx = *std::max_element(row, row + N);
    if (row[pos] >= mx) ++r.correct;
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) sum += std::exp(static_cast<double>(row[n]) - mx);
    r.loss += (std::log(sum) + mx - row[pos]) / static_cast<double>(B);
    for (int64_t n = 0; n < N; ++n)
      row[n] = static_cast<float>((std::exp(static_cast<double>(row[n]) - mx) / sum - (n == pos ? 1.0 : 0.0)) /
                                  static_cast<double>(B));
  }
  // dq = dz·p / τ, dp = dzᵀ·q / τ
  const auto inv_t = static_cast<float>(1.0 / temperature);
  r.dq.assign(static_cast<size_t>(B * d), 0.0f);
  r.dp.assign(static_cast<size_t>(N * d), 0.0f);
  gemm_f32(false, false, B, d, N, inv_t, z.data(), N, p, d, 0.0f, r.dq.data(), d);
  gemm_f32(true, false, N, d, B, inv_t, z.data(), N, q, d, 0.0f, r.dp.data(), d);
  return r;
}

}  // namespace oe::train
