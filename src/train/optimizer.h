// AdamW (Loshchilov & Hutter; torch.optim.AdamW's update: decoupled weight decay, bias-corrected moments) over the
// LoRA parameters, and the learning-rate schedule: linear warm-up, then cosine decay to zero.
#pragma once

#include <cstdint>
#include <vector>

#include "model/lora.h"

namespace oe::train {

struct AdamWOptions {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

// Every parameter of an adapter as one list of spans, in a fixed order (layer, module, A then B): the optimizer's
// moments and the saved training state follow this order.
std::vector<std::vector<float>*> parameter_tensors(model::LoraAdapter& a);

class AdamW {
 public:
  explicit AdamW(const model::LoraAdapter& like);
  // One update of `params` with gradients `grad` (same shapes) at learning rate lr; step() counts from 1.
  void update(model::LoraAdapter& params, model::LoraAdapter& grad, double lr, const AdamWOptions& o);
  int64_t step() const { return step_; }
  // The moments, flattened in parameter_tensors order (for the training state), and their restore.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  void restore(int64_t step, std::vector<float> m, std::vector<float> v);

 private:
  int64_t step_ = 0;
  std::vector<float> m_, v_;
};

// lr at optimizer step `step` (0-based) of `total`: peak·(step+1)/warmup during the first `warmup` steps, then
// peak·½(1 + cos(π·progress)), progress = (step − warmup) / (total − warmup) (transformers' cosine schedule, whose
// last step is small but not zero).
double scheduled_lr(double peak, int64_t step, int64_t total, int64_t warmup);

// √(Σ g²) over the adapter's gradient.
double gradient_norm(model::LoraAdapter& grad);
void scale_gradients(model::LoraAdapter& grad, double factor);

}  // namespace oe::train
