#include <cstdio>
#include <cstring>

#include "core/timer.h"

namespace oe {
namespace {

long long read_status_kb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long long kb = 0;
  size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, n) == 0) {
      std::sscanf(line + n, " %lld", &kb);
      break;
    }
  }
  std::fclose(f);
  return kb;
}

}  // namespace

long long peak_rss_bytes() { return read_status_kb("VmHWM:") * 1024; }
long long current_rss_bytes() { return read_status_kb("VmRSS:") * 1024; }

}  // namespace oe
