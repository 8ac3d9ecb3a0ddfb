#include "core/process.h"

#include <signal.h>

#include <gtest/gtest.h>

namespace oe {
namespace {

TEST(RunCaptured, KeepsStandardOutputAndExitStatus) {
  const ProcessResult r = run_captured({"sh", "-c", "printf 'a\\0b'; echo oops >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, std::string("a\0b", 3));
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_FALSE(r.ok());
}

TEST(RunCaptured, KillsAProgramPastItsTime) {
  ProcessLimits l;
  l.wall_seconds = 0.3;
  const ProcessResult r = run_captured({"sleep", "30"}, l);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_FALSE(r.ok());
}

TEST(RunCaptured, KillsAProgramWritingTooMuch) {
  ProcessLimits l;
  l.max_output_bytes = 100000;
  const ProcessResult r = run_captured({"yes"}, l);
  EXPECT_TRUE(r.output_too_large);
  EXPECT_LE(r.out.size(), 100000u);
  EXPECT_FALSE(r.ok());
}

TEST(RunCaptured, SaysWhenTheProgramDoesNotExist) {
  const ProcessResult r = run_captured({"omni-embed-no-such-program"});
  EXPECT_TRUE(r.not_found);
  EXPECT_FALSE(r.ok());
}

TEST(RunCaptured, InheritsNoDescriptorButTheThree) {
  const ProcessResult r = run_captured({"sh", "-c", "ls /proc/self/fd | wc -l"});
  ASSERT_TRUE(r.ok());
  // 0, 1, 2 and the descriptor ls itself opens to read the folder.
  EXPECT_EQ(std::stoi(r.out), 4);
}

}  // namespace
}  // namespace oe
