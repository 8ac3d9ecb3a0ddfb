// Scalar reference kernels (reference.h): plain loops, double accumulation, no OpenMP, no intrinsics. The oracle of
// the fast kernels' tests; deliberately written independently of them (libm exp/cos/sin, core/dtype.h rounding).
#include "kernels/reference.h"

#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"

namespace oe::kernels::ref {

namespace {

float rb(float f) { return round_bf16(f); }
float maybe_rb(float f, Compute c) { return c == Compute::BF16 ? round_bf16(f) : f; }

}  // namespace

void linear(const float* x, int64_t m, const float* w, int64_t n_out, int64_t n_in, const float* b, float* y,
            Compute compute) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = 0.0;
      for (int64_t j = 0; j < n_in; ++j)
        acc += static_cast<double>(maybe_rb(x[i * n_in + j], compute)) * maybe_rb(w[o * n_in + j], compute);
      if (b) acc += b[o];
      y[i * n_out + o] = static_cast<float>(acc);
    }
}

void attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, float* out,
               int64_t ldo, const AttentionParams& p, Compute compute) {
  const int64_t d = p.d_head, group = p.n_heads / p.n_kv_heads;
  std::vector<int64_t> cu = p.cu_seqlens.empty() ? std::vector<int64_t>{0, p.n_tokens} : p.cu_seqlens;
  std::vector<double> s;
  for (size_t seg = 0; seg + 1 < cu.size(); ++seg) {
    const int64_t begin = cu[seg], end = cu[seg + 1];
    for (int64_t h = 0; h < p.n_heads; ++h) {
      const int64_t g = h / group;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t last = p.causal ? i + 1 : end;  // keys [begin, last)
        s.assign(static_cast<size_t>(last - begin), 0.0);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = begin; j < last; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e)
            dot += static_cast<double>(maybe_rb(q[i * ldq + h * d + e], compute)) *
                   maybe_rb(k[j * ldk + g * d + e], compute);
          s[j - begin] = dot * p.scale;
          mx = std::max(mx, s[j - begin]);
        }
        double sum = 0.0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0.0;
          for (int64_t j = begin; j < last; ++j) {
            double pj = s[j - begin] / sum;
            if (compute == Compute::BF16) pj = rb(static_cast<float>(pj));
            acc += pj * maybe_rb(v[j * ldv + g * d + e], compute);
          }
          out[i * ldo + h * d + e] = static_cast<float>(acc);
        }
      }
    }
  }
}

void rms_norm(const float* x, int64_t n_rows, int64_t d, const float* w, float eps, float* y, Compute compute) {
  for (int64_t i = 0; i < n_rows; ++i) {
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[i * d + j]) * x[i * d + j];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j) {
      const double xh = x[i * d + j] * r;
      y[i * d + j] = compute == Compute::BF16 ? rb(rb(static_cast<float>(xh)) * w[j]) : static_cast<float>(xh * w[j]);
    }
  }
}

void layer_norm(const float* x, int64_t n_rows, int64_t d, const float* w, const float* b, float eps, float* y,
                Compute compute) {
  for (int64_t i = 0; i < n_rows; ++i) {
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < d; ++j) mean += x[i * d + j];
    mean /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
    const double r = 1.0 / std::sqrt(var / static_cast<double>(d) + eps);
    for (int64_t j = 0; j < d; ++j)
      y[i * d + j] = maybe_rb(static_cast<float>((x[i * d + j] - mean) * r * w[j] + b[j]), compute);
  }
}

void mrope_tables(const int64_t* pos, int64_t n_tokens, int64_t d_head, float theta, const std::vector<int>& sections,
                  float* cos, float* sin, Compute compute) {
  const int64_t half = d_head / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    int64_t f = 0;
    for (size_t sec = 0; sec < sections.size(); ++sec)
      for (int i = 0; i < sections[sec]; ++i, ++f) {
        const float inv_freq = static_cast<float>(1.0 / std::pow(static_cast<double>(theta), 2.0 * f / d_head));
        const float angle = static_cast<float>(pos[sec * n_tokens + t]) * inv_freq;
        const float c = maybe_rb(static_cast<float>(std::cos(static_cast<double>(angle))), compute);
        const float s = maybe_rb(static_cast<float>(std::sin(static_cast<double>(angle))), compute);
        cos[t * d_head + f] = cos[t * d_head + f + half] = c;
        sin[t * d_head + f] = sin[t * d_head + f + half] = s;
      }
  }
}

void apply_rotary(float* x, int64_t ld, int64_t n_tokens, int64_t n_heads, int64_t d_head, const float* cos,
                  const float* sin, Compute compute) {
  const int64_t half = d_head / 2;
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t h = 0; h < n_heads; ++h) {
      float* r = x + t * ld + h * d_head;
      const float* c = cos + t * d_head;
      const float* s = sin + t * d_head;
      for (int64_t f = 0; f < half; ++f) {
        const float a = r[f], b = r[f + half];
        if (compute == Compute::BF16) {
          r[f] = rb(rb(a * c[f]) + rb(-b * s[f]));
          r[f + half] = rb(rb(b * c[f + half]) + rb(a * s[f + half]));
        } else {
          r[f] = static_cast<float>(static_cast<double>(a) * c[f] - static_cast<double>(b) * s[f]);
          r[f + half] = static_cast<float>(static_cast<double>(b) * c[f + half] + static_cast<double>(a) * s[f + half]);
        }
      }
    }
}

void silu_mul(const float* g, int64_t ldg, const float* u, int64_t ldu, float* y, int64_t ldy, int64_t rows,
              int64_t cols, Compute compute) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const bool bf16 = compute == Compute::BF16;
      const double gv = bf16 ? rb(g[i * ldg + j]) : g[i * ldg + j];
      const double silu = gv / (1.0 + std::exp(-gv));
      const float uv = bf16 ? rb(u[i * ldu + j]) : u[i * ldu + j];
      y[i * ldy + j] = compute == Compute::BF16 ? rb(rb(static_cast<float>(silu)) * uv) : static_cast<float>(silu * uv);
    }
}

void gelu_erf(float* x, int64_t n, Compute compute) {
  const bool bf16 = compute == Compute::BF16;
  for (int64_t i = 0; i < n; ++i) {
    const double v = bf16 ? rb(x[i]) : x[i];
    const double y = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    x[i] = bf16 ? rb(static_cast<float>(y)) : static_cast<float>(y);
  }
}

}  // namespace oe::kernels::ref
