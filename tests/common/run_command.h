// Running a shell command from a test and capturing what it printed.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace oe::testing {

// Runs `cmd` through the shell; returns its exit status (-1 when it did not exit normally) and stores its stdout.
inline int run_stdout(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int status = pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The same with stderr merged into the captured output.
inline int run_command(const std::string& cmd, std::string* output = nullptr) {
  return run_stdout(cmd + " 2>&1", output);
}

// What a command printed, stdout and stderr apart.
struct Outcome {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `cmd` through the shell with stderr sent to `err_file` (which is overwritten and read back).
inline Outcome run_split(const std::string& cmd, const std::string& err_file) {
  Outcome o;
  o.rc = run_stdout(cmd + " 2>'" + err_file + "'", &o.out);
  if (FILE* f = std::fopen(err_file.c_str(), "rb")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) o.err.append(buf, n);
    std::fclose(f);
  }
  return o;
}

}  // namespace oe::testing
