#include "core/threads.h"

#include <omp.h>
#include <sched.h>

#include <thread>

#include "core/error.h"

namespace oe {

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_num_threads(int n) {
  // Far more threads than cores only slows work down, and libgomp aborts or crashes on tens of thousands.
  if (n < 0 || n > MAX_THREADS)
    throw InvalidInput(fmt::format("{} threads: choose 0 (all {} cores) up to {}", n, hardware_threads(), MAX_THREADS));
  omp_set_num_threads(n > 0 ? n : hardware_threads());
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace oe
