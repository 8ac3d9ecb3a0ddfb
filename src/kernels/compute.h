// The numeric mode of a forward pass.
//  F32:  fp32 weights and activations, no intermediate rounding (the reference/test path).
//  BF16: bf16 weights, activations held in float buffers but rounded to bf16 exactly where the Hugging Face
//        reference rounds (spec qwen25-omni-thinker.md §10); matmuls take bf16 inputs, accumulate in fp32.
#pragma once

namespace oe::kernels {

enum class Compute { F32, BF16 };

inline const char* compute_name(Compute c) { return c == Compute::F32 ? "fp32" : "bf16"; }

}  // namespace oe::kernels
