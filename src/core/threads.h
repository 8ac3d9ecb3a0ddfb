// Thread settings. All parallel work (oneDNN and our own kernels) runs on one OpenMP pool; never add a second
// spinning pool on these 2-core machines (notes/cpu-gemm.md §4).
#pragma once

namespace oe {

// Number of hardware threads available to this process (sched affinity aware).
int hardware_threads();
// Sets the OpenMP pool size; n <= 0 means hardware_threads().
void set_num_threads(int n);
int num_threads();

}  // namespace oe
