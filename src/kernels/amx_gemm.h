// Internal to src/kernels: the project's own bf16 GEMM on the AMX tile unit (Intel Sapphire Rapids and later),
// y[m, n] = x[m, k] · Wᵀ + b with W [n, k] pre-packed once. oneDNN 2.6's AMX matmuls reach only 10–30% of the tile
// peak on the model's shapes (docs/benchmarks.md, "Kernels"); this kernel keeps its four accumulator tiles for a
// whole K chunk and feeds them from operands laid out tile by tile, so no tile load crosses a cache line or strides
// across 4 KiB (a row-major x with rows of a multiple of 4 KiB puts all 16 rows of a tile in one L1 set).
//
// Layouts (bf16 bit patterns):
//  - packed W: panels of 32 output columns; in each panel, per step of 32 input elements, two tiles of 16 rows ×
//    64 bytes (columns 0–15, then 16–31), row r holding the pairs (k = 2r, 2r+1) of each column (the "VNNI" layout
//    tdpbf16ps reads). n and k are padded with zeros to whole panels and steps.
//  - x is converted per call into 16-row × 32-element tiles, each 1 KiB contiguous.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace oe::kernels::amx {

// True when the CPU has AMX-BF16 and the kernel has granted this process the tile state (asked once).
bool available();

// Loads the tile configuration every kernel here uses (palette 1, all eight tiles 16 rows × 64 bytes) on the calling
// thread, and releases the tile state again. Require available().
void configure_tiles();
void release_tiles();

class PackedWeight {
 public:
  PackedWeight() = default;
  // w_bf16: n·k bf16 bit patterns, row-major [n, k] (PackedLinear converts other storage types first).
  // gated: w is [gate; up] stacked (n/2 rows each), packed so that panel q holds gate rows [16q, 16q + 16) and the
  // same rows of up side by side (zeros past n/2), for linear_silu_mul.
  PackedWeight(const uint16_t* w_bf16, int64_t n, int64_t k, bool gated = false);

  int64_t n() const { return n_; }
  bool gated() const { return gated_; }
  int64_t k() const { return k_; }
  size_t bytes() const;
  const uint16_t* data() const { return data_.get(); }

 private:
  int64_t n_ = 0, k_ = 0;
  bool gated_ = false;
  AlignedPtr<uint16_t> data_;
};

// y[i, j] = Σ_k bf16(x[i, k]) · W[j, k] (+ bias[j]) for i < m, j < n, accumulated in fp32; x and y row-major with
// row strides ldx and ldy (in elements). Runs on the current OpenMP team (one thread when called inside a parallel
// region). Requires available().
void linear(const PackedWeight& w, const float* bias, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy);

// For a gated weight: act[i, j] = SiLU(gate[i, j]) · up[i, j] for j < n/2, with kernels::silu_mul's BF16 rounding,
// where gate | up = x · Wᵀ + bias as linear() would give them (bit for bit; bias: n floats or nullptr); the
// products are formed from each block's accumulator tiles while they are in L1, so the [m, n] gate | up matrix is
// never written. act: row stride ld_act.
void linear_silu_mul(const PackedWeight& w, const float* bias, const float* x, int64_t m, int64_t ldx, float* act,
                     int64_t ld_act);

}  // namespace oe::kernels::amx
