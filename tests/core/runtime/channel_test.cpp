#include "runtime/channel.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

using flow::Batch;
using flow::runtime::Channel;
using namespace std::chrono_literals;

namespace {
Batch numbers(int64_t from, int64_t count, std::size_t pad = 0) {
  auto schema = flow::make_schema({{"n", flow::Type::Int64}, {"pad", flow::Type::String}});
  Batch b(schema);
  for (int64_t i = 0; i < count; ++i) {
    b.column(0).append_int64(from + i);
    b.column(1).append_string(std::string(pad, 'x'));
  }
  return b;
}
}  // namespace

TEST(Channel, RejectsZeroLimits) {
  EXPECT_THROW(Channel("c", 0, 100, 1), std::invalid_argument);
  EXPECT_THROW(Channel("c", 1, 0, 1), std::invalid_argument);
  EXPECT_THROW(Channel("c", 1, 100, 0), std::invalid_argument);
}

TEST(Channel, SlowReaderBlocksFastWriterWithoutLossOrReorder) {
  Channel ch("test", 4, 1 << 30, 1);
  constexpr int kBatches = 200;
  std::atomic<std::size_t> max_depth{0};
  std::thread writer([&] {
    for (int i = 0; i < kBatches; ++i) ASSERT_TRUE(ch.push(numbers(i * 10, 10)));
    ch.writer_done();
  });
  int64_t expect = 0;
  int popped = 0;
  for (;;) {
    Batch b;
    auto r = ch.pop(b, 1s);
    if (r == Channel::Pop::End) break;
    ASSERT_EQ(r, Channel::Pop::Item);
    max_depth = std::max<std::size_t>(max_depth, ch.stats().depth);
    for (std::size_t i = 0; i < b.num_rows(); ++i) ASSERT_EQ(b.column(0).int64_at(i), expect++);
    ++popped;
    if (popped % 20 == 0) std::this_thread::sleep_for(2ms);  // a slow reader
  }
  writer.join();
  EXPECT_EQ(popped, kBatches);
  EXPECT_EQ(expect, kBatches * 10);
  const auto st = ch.stats();
  EXPECT_LE(st.peak_depth, 4u);  // the bound held
  EXPECT_EQ(st.batches_in, static_cast<uint64_t>(kBatches));
  EXPECT_EQ(st.records_in, static_cast<uint64_t>(kBatches * 10));
}

TEST(Channel, ByteBoundHolds) {
  const uint64_t one = numbers(0, 10, 1000).byte_size();
  Channel ch("bytes", 1000, one * 3, 1);
  Batch b1 = numbers(0, 10, 1000), b2 = numbers(10, 10, 1000), b3 = numbers(20, 10, 1000), b4 = numbers(30, 10, 1000);
  EXPECT_TRUE(ch.try_push(b1));
  EXPECT_TRUE(ch.try_push(b2));
  EXPECT_TRUE(ch.try_push(b3));
  EXPECT_FALSE(ch.try_push(b4));  // would exceed the byte limit
  EXPECT_EQ(b4.num_rows(), 10u);  // untouched
  EXPECT_LE(ch.stats().bytes, one * 3);
  Batch out;
  ASSERT_EQ(ch.pop(out, 0ms), Channel::Pop::Item);
  EXPECT_TRUE(ch.try_push(b4));
}

TEST(Channel, OversizeBatchIsAdmittedAloneSoItCannotWedge) {
  Channel ch("big", 10, 100, 1);
  Batch big = numbers(0, 10, 1000);
  ASSERT_GT(big.byte_size(), 100u);
  EXPECT_TRUE(ch.try_push(big));
  Batch small = numbers(0, 1);
  EXPECT_FALSE(ch.try_push(small));
}

TEST(Channel, RecordBoundHoldsAndALargerBatchIsAdmittedAlone) {
  Channel ch("records", 1000, 1ull << 30, 1);
  ch.set_max_records(25);
  Batch b1 = numbers(0, 10), b2 = numbers(10, 10), b3 = numbers(20, 10);
  EXPECT_TRUE(ch.try_push(b1));
  EXPECT_TRUE(ch.try_push(b2));
  EXPECT_FALSE(ch.try_push(b3));  // 30 records would exceed 25
  EXPECT_EQ(b3.num_rows(), 10u);  // untouched
  EXPECT_EQ(ch.stats().records, 20u);
  EXPECT_EQ(ch.room(), Channel::Room::Free);  // 5 records of budget left: a small batch fits
  Batch out;
  ASSERT_EQ(ch.pop(out, 0ms), Channel::Pop::Item);
  EXPECT_TRUE(ch.try_push(b3));
  EXPECT_EQ(ch.stats().peak_records, 20u);
  // A batch above the whole limit waits for an empty channel, then goes alone.
  Channel one("one", 10, 1ull << 30, 1);
  one.set_max_records(5);
  Batch big = numbers(0, 8), small = numbers(0, 1);
  EXPECT_TRUE(one.try_push(big));
  EXPECT_FALSE(one.try_push(small));
  EXPECT_THROW(one.set_max_records(0), std::invalid_argument);
}

TEST(Channel, RecordBoundBlocksAWriterUntilTheReaderTakes) {
  Channel ch("records", 1000, 1ull << 30, 1);
  ch.set_max_records(30);
  std::thread writer([&] {
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ch.push(numbers(i * 10, 10)));
    ch.writer_done();
  });
  int64_t expect = 0;
  for (;;) {
    Batch b;
    const auto r = ch.pop(b, 5s);
    if (r == Channel::Pop::End) break;
    ASSERT_EQ(r, Channel::Pop::Item);
    for (std::size_t i = 0; i < b.num_rows(); ++i) ASSERT_EQ(b.column(0).int64_at(i), expect++);
  }
  writer.join();
  EXPECT_EQ(expect, 1000);
  EXPECT_LE(ch.stats().peak_records, 30u);
}

TEST(Channel, EndOfStreamOnlyAfterEveryWriterAndDrain) {
  Channel ch("fanin", 10, 1 << 20, 2);
  ASSERT_TRUE(ch.push(numbers(0, 1)));
  ch.writer_done();
  Batch b;
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::Item);
  EXPECT_EQ(ch.pop(b, 10ms), Channel::Pop::Timeout);  // one writer still open
  ASSERT_TRUE(ch.push(numbers(1, 1)));
  ch.writer_done();
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::Item);  // drained before the end
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::End);
}

TEST(Channel, CancelWakesBlockedWriterAndReader) {
  Channel ch("cancel", 1, 1 << 20, 1);
  ASSERT_TRUE(ch.push(numbers(0, 1)));
  std::atomic<int> result{-1};
  std::thread writer([&] { result = ch.push(numbers(1, 1)) ? 1 : 0; });
  while (ch.stats().depth == 0) std::this_thread::yield();
  ch.cancel();
  writer.join();
  EXPECT_EQ(result, 0);
  Batch b;
  EXPECT_EQ(ch.pop(b, 1s), Channel::Pop::Cancelled);
  EXPECT_FALSE(ch.wait_writable(0ms));
}

TEST(Channel, CancelForgetsQueuedPositions) {
  Channel ch("forget", 4, 1 << 20, 1);
  int acked = 0;
  Batch b = numbers(0, 3);
  b.positions() = flow::Positions::track({{"s", 0, 0, 3}}, [&](const auto&) { ++acked; });
  ASSERT_TRUE(ch.push(std::move(b)));
  ch.cancel();
  EXPECT_EQ(acked, 0);  // dropped, not acknowledged: an at-least-once source redelivers
}

TEST(Channel, CountsWriterBlockedTime) {
  Channel ch("blocked", 1, 1 << 20, 1);
  ASSERT_TRUE(ch.push(numbers(0, 1)));
  std::thread writer([&] { ASSERT_TRUE(ch.push(numbers(1, 1))); });
  while (ch.stats().blocked_writers == 0) std::this_thread::yield();  // the writer waits for room
  Batch b;
  ASSERT_EQ(ch.pop(b, 1s), Channel::Pop::Item);
  writer.join();
  EXPECT_GT(ch.stats().blocked_ns, 0u);
}

// Hot reload's hand-over: the old reader gets what was queued before the cut, then Pop::Cut; the
// writer goes on, and its successor reads the rest in order; nothing is dropped or repeated.
TEST(Channel, CutHandsTheQueueOverAtThatPointWhileTheWriterGoesOn) {
  Channel ch("cut", 4, 1 << 30, 1);
  ASSERT_TRUE(ch.push(numbers(0, 1)));
  ASSERT_TRUE(ch.push(numbers(1, 1)));
  ch.cut();
  EXPECT_THROW(ch.cut(), std::logic_error);  // one at a time
  ASSERT_TRUE(ch.push(numbers(2, 1)));         // behind the cut
  Batch b;
  ASSERT_EQ(ch.pop(b, 0ms), Channel::Pop::Item);
  EXPECT_EQ(b.column(0).int64_at(0), 0);
  ASSERT_EQ(ch.pop(b, 0ms), Channel::Pop::Item);
  EXPECT_EQ(b.column(0).int64_at(0), 1);
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::Cut);
  // The successor: what came after the cut, then the end once the writer is done.
  ASSERT_EQ(ch.pop_until(b, flow::runtime::Clock::never()), Channel::Pop::Item);
  EXPECT_EQ(b.column(0).int64_at(0), 2);
  ch.writer_done();
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::End);
}

TEST(Channel, ACutOnAnEmptyChannelWakesAWaitingReader) {
  Channel ch("cut", 4, 1 << 30, 1);
  std::atomic<int> got{-1};
  std::thread reader([&] {
    Batch b;
    got = static_cast<int>(ch.pop_until(b, flow::runtime::Clock::never()));
  });
  ch.cut();
  reader.join();
  EXPECT_EQ(got.load(), static_cast<int>(Channel::Pop::Cut));
}

TEST(Channel, ClearCutAndWriterCountsFollowTheNewWiring) {
  Channel ch("cut", 4, 1 << 30, 1);
  ch.cut();
  ch.clear_cut();  // its reader had ended: the successor must not see it
  ch.add_writers(1);
  ASSERT_TRUE(ch.push(numbers(7, 1)));
  ch.writer_done();
  Batch b;
  ASSERT_EQ(ch.pop(b, 0ms), Channel::Pop::Item);
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::Timeout);  // a writer is left
  ch.add_writers(-1);
  EXPECT_EQ(ch.pop(b, 0ms), Channel::Pop::End);
  ch.set_limits(2, 4096);
  EXPECT_EQ(ch.stats().max_batches, 2u);
  EXPECT_EQ(ch.stats().max_bytes, 4096u);
}
