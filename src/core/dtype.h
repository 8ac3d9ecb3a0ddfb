// Element types and the bf16/f16 <-> f32 conversions used everywhere.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace oe {

enum class DType { F32, BF16, F16, I32, I64, U8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "F32", "BF16", ... (the safetensors spelling)

using bf16_t = uint16_t;
using f16_t = uint16_t;

inline float bf16_to_f32(bf16_t v) {
  uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch's float -> bfloat16 conversion does; NaN stays a quiet NaN.
inline bf16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16_t>(u >> 16);
}

// f rounded to the nearest bf16 value, kept as a float.
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

float f16_to_f32(f16_t v);
f16_t f32_to_f16(float f);

// Converts n elements of `src` (of type t: F32, BF16 or F16) to float.
void convert_to_f32(const void* src, DType t, size_t n, float* dst);
// Rounds n floats to bf16 precision in place (values stay floats).
void round_bf16_inplace(float* x, size_t n);
void f32_to_bf16_array(const float* src, size_t n, bf16_t* dst);

}  // namespace oe
