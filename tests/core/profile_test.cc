// core/profile.h: scopes add up per operation only while profiling is on, in first-run order, and take() resets.
#include "core/profile.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace oe::profile {
namespace {

TEST(Profile, ScopesCountOnlyWhileEnabledAndTakeResets) {
  take();
  { Scope s("off", 10.0); }
  EXPECT_TRUE(take().empty());

  enable(true);
  for (int i = 0; i < 3; ++i) {
    { Scope a("first", 100.0); }
    { Scope b("second"); }
  }
  {
    Scope c("touches memory");
    std::vector<char> big(64 << 20);
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = 1;
  }
  enable(false);
  { Scope d("after"); }

  const std::vector<OpTotal> t = take();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].op, "first");
  EXPECT_EQ(t[0].calls, 3);
  EXPECT_DOUBLE_EQ(t[0].flop, 300.0);
  EXPECT_GE(t[0].seconds, 0.0);
  EXPECT_EQ(t[1].op, "second");
  EXPECT_EQ(t[1].calls, 3);
  EXPECT_EQ(t[1].flop, 0.0);
  EXPECT_EQ(t[2].op, "touches memory");
  EXPECT_GT(t[2].minor_faults, 1000);  // 16,384 fresh pages touched (fewer with huge pages, never ~0)
  EXPECT_GT(t[2].seconds, 0.0);
  EXPECT_TRUE(take().empty());
}

TEST(Profile, ThreadsAddToTheSameTotals) {
  take();
  enable(true);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([] {
      for (int j = 0; j < 100; ++j) Scope s("op", 1.0);
    });
  for (auto& th : threads) th.join();
  enable(false);
  const auto t = take();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].calls, 400);
  EXPECT_DOUBLE_EQ(t[0].flop, 400.0);
}

}  // namespace
}  // namespace oe::profile
