// Helpers to take tensors out of a checkpoint by an explicit name/shape table (STYLE.md "Weights and config").
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/lora.h"

namespace oe::model {

// Collects the tensor names a tower expects, to report missing, mis-shaped and unexpected tensors.
class WeightTable {
 public:
  // bf16_gemm: the kernel of the BF16 linear layers it packs.
  WeightTable(const io::Checkpoint& ckpt, std::string prefix, kernels::Bf16Gemm bf16_gemm)
      : ckpt_(ckpt), prefix_(std::move(prefix)), bf16_gemm_(bf16_gemm) {}
  kernels::Bf16Gemm bf16_gemm() const { return bf16_gemm_; }

  // The tensor `prefix + name`, checked against `shape`; InvalidInput naming it when absent or mis-shaped.
  const io::TensorInfo& get(const std::string& name, const Shape& shape);
  // As float (converted from the stored dtype; rounded to bf16 in BF16 mode).
  std::vector<float> floats(const std::string& name, const Shape& shape, kernels::Compute compute);
  // Packs one or more [n_i, n_in] weights stacked along n_out, with biases for all parts or none (bias_names
  // empty); an empty name in bias_names gives that part a zero bias. gated: the two parts are an MLP's gate and up
  // projections, run with PackedLinear::forward_silu_mul.
  // lora: empty, or one entry per part (nullptr or an empty LoraWeights: that part is not adapted); the adapted parts
  // become W + lora_scale · B · A in fp32 before they are packed (so rounded to bf16 like any weight in BF16 mode).
  kernels::PackedLinear linear(const std::vector<std::string>& weight_names, const std::vector<Shape>& shapes,
                               const std::vector<std::string>& bias_names, kernels::Compute compute,
                               bool gated = false, const std::vector<const LoraWeights*>& lora = {},
                               double lora_scale = 0);
  // Every tensor whose name starts with prefix + `scope` must have been taken; InvalidInput listing the others.
  void check_no_extra(const std::string& scope) const;

 private:
  const io::Checkpoint& ckpt_;
  std::string prefix_;
  kernels::Bf16Gemm bf16_gemm_;
  std::set<std::string> taken_;
};

}  // namespace oe::model
