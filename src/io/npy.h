// NumPy .npy files (format version 1.0, little-endian, C order), for --dump-inputs, goldens and tests.
// F32 <-> '<f4', I32 <-> '<i4', I64 <-> '<i8', U8 <-> '|u1', F16 <-> '<f2'; BF16 is written as '<f4' (converted).
// Reading also accepts '<f8' (converted to F32).
#pragma once

#include <filesystem>

#include "core/tensor.h"

namespace oe::io {

void write_npy(const std::filesystem::path& path, const Tensor& t);
Tensor read_npy(const std::filesystem::path& path);

}  // namespace oe::io
