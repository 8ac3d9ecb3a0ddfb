// AdamW as torch.optim.AdamW computes it (amsgrad off): p ← p − lr·wd·p; m ← β1·m + (1−β1)·g;
// v ← β2·v + (1−β2)·g²; p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + eps).
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace oe::train {

std::vector<std::vector<float>*> parameter_tensors(model::LoraAdapter& a) {
  std::vector<std::vector<float>*> out;
  for (auto& layer : a.layers)
    for (auto& lw : layer)
      if (!lw.empty()) {
        out.push_back(&lw.a);
        out.push_back(&lw.b);
      }
  return out;
}

AdamW::AdamW(const model::LoraAdapter& like) {
  const auto n = static_cast<size_t>(like.parameter_count());
  m_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

void AdamW::restore(int64_t step, std::vector<float> m, std::vector<float> v) {
  OE_CHECK(m.size() == m_.size() && v.size() == v_.size(), "training state moments of {} values, the adapter has {}",
           m.size(), m_.size());
  step_ = step;
  m_ = std::move(m);
  v_ = std::move(v);
}

void AdamW::update(model::LoraAdapter& params, model::LoraAdapter& grad, double lr, const AdamWOptions& o) {
  ++step_;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step_));
  auto ps = parameter_tensors(params);
  auto gs = parameter_tensors(grad);
  OE_CHECK(ps.size() == gs.size());
  size_t k = 0;
  for (size_t t = 0; t < ps.size(); ++t) {
    std::vector<float>& p = *ps[t];
    const std::vector<float>& g = *gs[t];
    OE_CHECK(p.size() == g.size() && k + p.size() <= m_.size());
    for (size_t i = 0; i < p.size(); ++i, ++k) {
      double pi = p[i];
      pi -= lr * o.weight_decay * pi;
      const double m = o.beta1 * m_[k] + (1.0 - o.beta1) * g[i];
      const double v = o.beta2 * v_[k] + (1.0 - o.beta2) * static_cast<double>(g[i]) * g[i];
      m_[k] = static_cast<float>(m);
      v_[k] = static_cast<float>(v);
      pi -= lr * (m / bc1) / (std::sqrt(v / bc2) + o.eps);
      p[i] = static_cast<float>(pi);
    }
  }
  OE_CHECK(k == m_.size());
}

double scheduled_lr(double peak, int64_t step, int64_t total, int64_t warmup) {
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  return peak * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

double gradient_norm(model::LoraAdapter& grad) {
  double s = 0;
  for (auto* t : parameter_tensors(grad))
    for (float x : *t) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

void scale_gradients(model::LoraAdapter& grad, double factor) {
  for (auto* t : parameter_tensors(grad))
    for (float& x : *t) x = static_cast<float>(x * factor);
}

}  // namespace oe::train
