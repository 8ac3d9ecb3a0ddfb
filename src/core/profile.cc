#include "core/profile.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <mutex>

namespace oe::profile {
namespace {

std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::vector<OpTotal> g_totals;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t process_minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

}  // namespace

void enable(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

std::vector<OpTotal> take() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<OpTotal> out;
  out.swap(g_totals);
  return out;
}

void Scope::start(const char* op, double flop) {
  op_ = op;
  flop_ = flop;
  faults0_ = process_minor_faults();
  t0_ns_ = now_ns();
}

void Scope::stop() {
  const double seconds = static_cast<double>(now_ns() - t0_ns_) * 1e-9;
  const int64_t faults = process_minor_faults() - faults0_;
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& t : g_totals)
    if (t.op == op_) {
      t.seconds += seconds;
      t.calls += 1;
      t.minor_faults += faults;
      t.flop += flop_;
      return;
    }
  g_totals.push_back({op_, seconds, 1, faults, flop_});
}

}  // namespace oe::profile
