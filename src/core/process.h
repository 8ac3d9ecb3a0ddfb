// Running another program with bounded resources and capturing what it writes: for work that is safer done outside
// this process (FFmpeg turning an indexed file into a thumbnail or a preview: a hostile file can at worst make that
// child fail, run out of its own memory or time, never this process).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace oe {

struct ProcessLimits {
  double wall_seconds = 30;                      // killed (SIGKILL) after this long
  int64_t max_output_bytes = int64_t{16} << 20;  // killed when its standard output grows past this
  int64_t max_error_bytes = 16 << 10;            // standard error kept (the rest is read and dropped)
  int64_t address_space_bytes = int64_t{2} << 30;  // RLIMIT_AS of the child (0: none)
  int64_t cpu_seconds = 60;                      // RLIMIT_CPU of the child (0: none)
};

struct ProcessResult {
  int exit_code = -1;          // the program's exit status, or -1 when a signal ended it
  int signal = 0;              // the signal that ended it (SIGKILL for a timeout or too much output)
  bool timed_out = false;
  bool output_too_large = false;
  bool not_found = false;      // the program could not be started (exit status 127 from the child)
  std::string out;             // its standard output (at most max_output_bytes)
  std::string err;             // the start of its standard error
  bool ok() const { return exit_code == 0 && !timed_out && !output_too_large; }
};

// Runs argv[0] (looked up on PATH) with argv, standard input from /dev/null, no other descriptor inherited, and
// returns when it has ended. IoError when no pipe or process can be created.
ProcessResult run_captured(const std::vector<std::string>& argv, const ProcessLimits& limits = {});

}  // namespace oe
