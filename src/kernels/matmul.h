// Linear layers through oneDNN (the only file that includes oneDNN is matmul_onednn.cc) or, in BF16 mode on a CPU
// with AMX, through the project's own tile GEMM (amx_gemm.h). The weight W [n_out, n_in] (nn.Linear layout) is
// converted and pre-packed once, at construction, into the layout the kernel wants; for oneDNN, one matmul primitive
// per number of rows M is created on first use and kept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "kernels/compute.h"

namespace oe::kernels {

// The kernel that runs BF16 linear layers, chosen per layer when it is packed (a model's load option). Auto: the
// project's AMX GEMM where the CPU has AMX-BF16 (1.05–2.0× oneDNN 2.6's matmul on the decoder's shapes, 0.84–1.7×
// on the vision tower's; docs/benchmarks.md, "Kernels"), oneDNN's matmul otherwise. F32 layers always run on oneDNN.
enum class Bf16Gemm { Auto, OneDnn, Amx };

// The kernel g stands for on this CPU: Auto resolves to Amx or OneDnn. Amx on a CPU without it (or where the
// operating system refuses the tile state) throws Unsupported.
Bf16Gemm resolve_bf16_gemm(Bf16Gemm g);
const char* bf16_gemm_name(Bf16Gemm g);
// Parses "auto", "onednn" or "amx"; throws InvalidInput otherwise.
Bf16Gemm parse_bf16_gemm(const std::string& s);

class PackedLinear {
 public:
  PackedLinear() = default;
  // w: n_out·n_in elements of type w_type (F32, BF16 or F16), row-major [n_out, n_in].
  // bias: n_out elements of type bias_type, or nullptr. Neither pointer is kept after construction.
  // bf16_gemm: the kernel of a BF16 layer (Unsupported for Amx on a CPU without it).
  // gated: w stacks an MLP's gate and up projections ([2·d, n_in]); such a layer runs only forward_silu_mul.
  PackedLinear(const void* w, DType w_type, int64_t n_out, int64_t n_in, const void* bias, DType bias_type,
               Compute compute, Bf16Gemm bf16_gemm = Bf16Gemm::Auto, bool gated = false);

  // y[m, n_out] = x[m, n_in] · Wᵀ + b, all row-major float; ldx/ldy are row strides in elements (0 = dense).
  // In BF16 mode x is converted to bf16 first (exact when x holds bf16 values); y is not rounded.
  // Thread-safe: a loaded model is shared between threads.
  void forward(const float* x, int64_t m, float* y, int64_t ldx = 0, int64_t ldy = 0) const;

  // A gated layer's forward: act[m, d] = SiLU(gate) ⊙ up, exactly silu_mul (ops.h) of gate | up = x · Wᵀ + b. On
  // the AMX GEMM the products are formed from the accumulator tiles (amx_gemm.h), so the [m, 2·d] gate | up matrix
  // is never written; on oneDNN it goes through a per-thread buffer. ld_act: act's row stride (0 = d).
  void forward_silu_mul(const float* x, int64_t m, float* act, int64_t ldx = 0, int64_t ld_act = 0) const;

  int64_t n_out() const;
  int64_t n_in() const;
  // The arithmetic of a forward of m rows: 2 · m · n_out · n_in FLOP (for profiles and benchmarks).
  double flop(int64_t m) const {
    return 2.0 * static_cast<double>(m) * static_cast<double>(n_out()) * static_cast<double>(n_in());
  }
  Compute compute() const;
  size_t packed_bytes() const;
  // The kernel this layer runs on: "onednn" or "amx".
  const char* kernel_name() const;
  bool empty() const { return impl_ == nullptr; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// C[m, n] = A[m, k] · B[n, k]ᵀ, all fp32 row-major with dense rows, B used in place (no packing): for operands
// that are used once or are too large to copy, such as an index's vectors against a batch of queries. oneDNN's
// sgemm, on the current OpenMP threads.
void gemm_f32_nt(const float* a, int64_t m, const float* b, int64_t n, int64_t k, float* c);

// C[m, n] = alpha · op(A) · op(B) + beta · C, fp32 row-major with row strides lda, ldb, ldc; op(A) is [m, k] (A
// stored [k, m] when trans_a), op(B) is [k, n] (B stored [n, k] when trans_b). oneDNN's sgemm; for the backward
// passes of training (src/train), which need every transpose.
void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace oe::kernels
