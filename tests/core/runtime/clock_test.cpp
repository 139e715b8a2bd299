// The injectable clock: a ManualClock moves only when told, and whatever waits on it (a channel
// read with a deadline) wakes when it passes the deadline, without sleeping in the test.
#include "runtime/clock.hpp"

#include <gtest/gtest.h>

#include <future>

#include "runtime/channel.hpp"

namespace {
using namespace std::chrono_literals;
using flow::runtime::Channel;
using flow::runtime::ManualClock;

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock clock;
  const auto t0 = clock.now();
  const auto w0 = clock.wall();
  EXPECT_EQ(clock.now(), t0);
  clock.advance(1500ms);
  EXPECT_EQ(clock.now() - t0, 1500ms);
  EXPECT_EQ(clock.wall() - w0, 1500ms);
}

TEST(ManualClock, ChannelReadTimesOutOnlyWhenTheClockPassesItsDeadline) {
  ManualClock clock;
  Channel ch("c", 4, 1 << 20, 1, {}, clock);
  auto read = std::async(std::launch::async, [&] {
    flow::Batch b;
    return ch.pop_until(b, clock.now() + 10s);
  });
  // Ten simulated seconds never pass by themselves: the reader is still waiting.
  EXPECT_EQ(read.wait_for(50ms), std::future_status::timeout);
  clock.advance(9s);
  EXPECT_EQ(read.wait_for(50ms), std::future_status::timeout);
  clock.advance(1s);
  EXPECT_EQ(read.get(), Channel::Pop::Timeout);
}

TEST(ManualClock, ChannelReadWakesForAnItemBeforeTheDeadline) {
  ManualClock clock;
  Channel ch("c", 4, 1 << 20, 1, {}, clock);
  auto read = std::async(std::launch::async, [&] {
    flow::Batch b;
    return ch.pop_until(b, flow::runtime::Clock::never());
  });
  flow::Batch b(flow::make_schema({{"n", flow::Type::Int64}}));
  b.column(0).append_int64(1);
  ASSERT_TRUE(ch.push(std::move(b)));
  EXPECT_EQ(read.get(), Channel::Pop::Item);
}

}  // namespace
