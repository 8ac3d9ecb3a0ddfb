// An opt-in per-operation profile: wall time, calls, page faults and arithmetic per named operation, summed over
// every scope of that name until taken. Off by default: a Scope then costs one relaxed atomic load, so the model
// code keeps its scopes in every build. `omni-embed-bench --profile` turns it on for one extra run per row and
// prints where an item's time went (docs/benchmarks.md, "Every modality on the current kernels").
//
// Scopes must not nest on one thread (each op is timed once, not also inside a wider scope); every thread's
// scopes add to the same totals, so the profile of a multi-threaded caller is the sum of its threads' times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace oe::profile {

void enable(bool on);
bool enabled();

struct OpTotal {
  std::string op;
  double seconds = 0;
  int64_t calls = 0;
  int64_t minor_faults = 0;  // the process's page faults inside the scope (first touches of fresh memory)
  double flop = 0;           // arithmetic the scope declared (0 for memory-bound ops)
};

// The totals since the last take(), in the order the operations first ran; resets them.
std::vector<OpTotal> take();

// One named operation timed from construction to destruction.
class Scope {
 public:
  // op: a string literal (kept by pointer). flop: the arithmetic this call does, for GFLOP/s.
  explicit Scope(const char* op, double flop = 0) {
    if (enabled()) start(op, flop);
  }
  ~Scope() {
    if (op_) stop();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  friend class Sequence;
  Scope() = default;
  void start(const char* op, double flop);
  void stop();
  const char* op_ = nullptr;
  double flop_ = 0;
  int64_t t0_ns_ = 0, faults0_ = 0;
};

// Consecutive operations of straight-line code: next() ends the current one (if any) and starts the next;
// the destructor ends the last.
//   profile::Sequence ops;
//   ops.next("vision rms_norm");            kernels::rms_norm(...);
//   ops.next("vision GEMM q·k·v", flop);    B.qkv.forward(...);
class Sequence {
 public:
  Sequence() = default;
  ~Sequence() { end(); }
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  void next(const char* op, double flop = 0) {
    end();
    if (enabled()) current_.start(op, flop);
  }
  void end() {
    if (current_.op_) current_.stop();
    current_.op_ = nullptr;
  }

 private:
  Scope current_;
};

}  // namespace oe::profile
