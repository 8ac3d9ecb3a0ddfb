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

}  // namespace oe::testing
