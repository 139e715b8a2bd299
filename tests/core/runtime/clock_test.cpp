// The injectable clock: a ManualClock moves only when told, and whatever waits on it (a channel
// read with a deadline) wakes when it passes the deadline, without sleeping in the test.
#include "runtime/clock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <thread>
#include <vector>

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

// Waiters whose mutex and cv live on their own stack and die right after the wait, while another
// thread advances the clock without pause: wake_all() must never touch a waiter that has left
// (AddressSanitizer reports a use after scope in the CI job if it does).
TEST(ManualClock, WaitersMayDestroyTheirMutexRightAfterTheWait) {
  ManualClock clock;
  std::atomic<int> done{0}, waits{0};
  constexpr int kThreads = 4, kWaits = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kWaits; ++i) {
        std::mutex m;
        std::condition_variable cv;
        std::unique_lock lock(m);
        clock.wait_until(lock, cv, clock.now() + std::chrono::milliseconds(1));
        waits.fetch_add(1);
      }
      done.fetch_add(1);
    });
  while (done.load() < kThreads) clock.advance(std::chrono::milliseconds(1));
  for (auto& t : threads) t.join();
  EXPECT_EQ(waits.load(), kThreads * kWaits);
}
