#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"

namespace oe {
namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) throw IoError(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

// In the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(char* const* argv, int out, int err, const ProcessLimits& limits) {
  const int null_in = ::open("/dev/null", O_RDONLY);
  if (null_in < 0 || ::dup2(null_in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
  if (limits.address_space_bytes > 0) {
    const rlimit r{static_cast<rlim_t>(limits.address_space_bytes), static_cast<rlim_t>(limits.address_space_bytes)};
    ::setrlimit(RLIMIT_AS, &r);
  }
  if (limits.cpu_seconds > 0) {
    const rlimit r{static_cast<rlim_t>(limits.cpu_seconds), static_cast<rlim_t>(limits.cpu_seconds)};
    ::setrlimit(RLIMIT_CPU, &r);
  }
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::close_range(3, ~0U, 0);
  ::execvp(argv[0], argv);
  ::_exit(127);
}

}  // namespace

ProcessResult run_captured(const std::vector<std::string>& argv, const ProcessLimits& limits) {
  OE_CHECK(!argv.empty(), "run_captured without a program");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Pipe out, err;
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError(fmt::format("cannot start {}: {}", argv[0], std::strerror(errno)));
  if (pid == 0) exec_child(args.data(), out.fd[1], err.fd[1], limits);
  out.close_end(1);
  err.close_end(1);

  ProcessResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limits.wall_seconds);
  bool killed = false;
  auto kill_child = [&] {
    if (!killed) ::kill(pid, SIGKILL);
    killed = true;
  };
  char buf[65536];
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      kill_child();
      break;
    }
    pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      kill_child();
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        (i == 0 ? out : err).close_end(0);
        continue;
      }
      if (i == 0) {
        if (static_cast<int64_t>(r.out.size()) + got > limits.max_output_bytes) {
          r.output_too_large = true;
          kill_child();
          out.close_end(0);
          err.close_end(0);
          break;
        }
        r.out.append(buf, static_cast<size_t>(got));
      } else if (static_cast<int64_t>(r.err.size()) < limits.max_error_bytes) {
        r.err.append(buf, static_cast<size_t>(std::min<int64_t>(got, limits.max_error_bytes - r.err.size())));
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    r.not_found = r.exit_code == 127;
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

}  // namespace oe
