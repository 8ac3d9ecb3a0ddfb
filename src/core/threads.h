// Thread settings. All parallel work (oneDNN and our own kernels) runs on one OpenMP pool; never add a second
// spinning pool on these 2-core machines (notes/cpu-gemm.md §4).
#pragma once

namespace oe {

inline constexpr int MAX_THREADS = 1024;

// Number of hardware threads available to this process (sched affinity aware).
int hardware_threads();
// Sets the OpenMP pool size; 0 means hardware_threads(). InvalidInput outside [0, MAX_THREADS].
void set_num_threads(int n);
int num_threads();

}  // namespace oe
