// The numeric mode of a forward pass.
//  F32:  fp32 weights and activations, no intermediate rounding (the reference/test path).
//  BF16: bf16 weights, activations held in float buffers but rounded to bf16 exactly where the Hugging Face
//        reference rounds (spec qwen25-omni-thinker.md §10); matmuls take bf16 inputs, accumulate in fp32.
#pragma once

#include <string>

#include "core/error.h"

namespace oe::kernels {

enum class Compute { F32, BF16 };

inline const char* compute_name(Compute c) { return c == Compute::F32 ? "fp32" : "bf16"; }

// Parses a --dtype value: "bf16", or "fp32" (also "f32"); throws InvalidInput otherwise.
inline Compute parse_compute(const std::string& dtype) {
  if (dtype == "bf16") return Compute::BF16;
  if (dtype == "fp32" || dtype == "f32") return Compute::F32;
  throw InvalidInput(fmt::format("unknown dtype '{}': expected bf16 or fp32", dtype));
}

}  // namespace oe::kernels
