// Internal to src/kernels: single-threaded GEMMs for the blocks of attention, implemented with oneDNN in
// matmul_onednn.cc (the only file that includes oneDNN). Each OpenMP thread calls them on its own block from inside
// a parallel region; the primitives are created for one thread and cached per shape, so they are safe to call
// concurrently from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/compute.h"

namespace oe::kernels::detail {

// The element type of A and of the packed B: float for F32, bf16 (uint16_t bits) for BF16. C is always float.
inline size_t local_gemm_elem_bytes(Compute type) { return type == Compute::F32 ? 4 : 2; }

// Bytes of B[k, n] packed for local_gemm (the blocked layout oneDNN's kernels read); the same packed B serves
// every m.
size_t local_gemm_packed_b_bytes(Compute type, int64_t k, int64_t n);

// Packs B[k, n] from float values b into `packed` (local_gemm_packed_b_bytes bytes, 64-byte aligned), converting to
// the element type (round to nearest even for BF16). b_is_nk false: b holds rows of B ([k, n], row stride ldb);
// b_is_nk true: b holds rows of Bᵀ ([n, k], row stride ldb), e.g. the keys for Q·Kᵀ. Single-threaded.
void local_gemm_pack_b(Compute type, int64_t k, int64_t n, const float* b, int64_t ldb, bool b_is_nk, void* packed);

// C[m, n] = A[m, k] · B[k, n]; a: dense [m, k] (element type above); packed_b from local_gemm_pack_b with the same
// type, k and n; c: dense float [m, n]. Dense because oneDNN 2.6's brgemm kernels take no row strides for A and C
// (a strided call falls back to its reference kernel). Single-threaded.
void local_gemm(Compute type, int64_t m, int64_t k, int64_t n, const void* a, const void* packed_b, float* c);

}  // namespace oe::kernels::detail
