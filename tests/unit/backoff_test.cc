#include "core/backoff.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using std::chrono::milliseconds;

TEST(RetryDelayTest, DoublesWithJitterAndStopsAtTheCap) {
  for (int i = 0; i < 200; ++i) {
    const milliseconds first = RetryDelay(milliseconds(100), 1, milliseconds(10'000));
    EXPECT_GE(first.count(), 50);
    EXPECT_LT(first.count(), 150);
    const milliseconds third = RetryDelay(milliseconds(100), 3, milliseconds(10'000));
    EXPECT_GE(third.count(), 200);
    EXPECT_LT(third.count(), 600);
    const milliseconds late = RetryDelay(milliseconds(100), 40, milliseconds(1'000));
    EXPECT_GE(late.count(), 500);
    EXPECT_LT(late.count(), 1'500);
  }
}

TEST(RetryDelayTest, IsJittered) {
  bool differs = false;
  const milliseconds a = RetryDelay(milliseconds(1000), 2, milliseconds(60'000));
  for (int i = 0; i < 50 && !differs; ++i) {
    differs = RetryDelay(milliseconds(1000), 2, milliseconds(60'000)) != a;
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace ferry
