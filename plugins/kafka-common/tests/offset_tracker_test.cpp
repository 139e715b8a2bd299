// The contiguous-acknowledgement offset tracker behind kafka-source's commits.
#include <gtest/gtest.h>

#include "flow_kafka/common.hpp"

namespace {
using flow::kafka::OffsetTracker;
const OffsetTracker::Key kP0{"t", 0};
const OffsetTracker::Key kP1{"t", 1};

TEST(OffsetTracker, NothingCommittableBeforeAnAck) {
  OffsetTracker t;
  t.assign(kP0);
  ASSERT_TRUE(t.emitted(kP0, 0, 10));
  EXPECT_FALSE(t.committable(kP0));
  EXPECT_TRUE(t.uncommitted().empty());
}

TEST(OffsetTracker, OutOfOrderAcksCommitOnlyTheContiguousPrefix) {
  OffsetTracker t;
  const auto g = t.assign(kP0);
  t.emitted(kP0, 0, 10);
  t.emitted(kP0, 10, 20);
  t.emitted(kP0, 20, 30);
  t.acked(kP0, 20, 30, g);
  EXPECT_FALSE(t.committable(kP0));
  t.acked(kP0, 0, 10, g);
  EXPECT_EQ(t.committable(kP0), 10);
  t.acked(kP0, 10, 20, g);
  EXPECT_EQ(t.committable(kP0), 30);
  EXPECT_EQ(t.pending_ranges(), 0u);
}

TEST(OffsetTracker, OffsetsBetweenRangesNeedNoAck) {
  OffsetTracker t;
  const auto g = t.assign(kP0);
  t.emitted(kP0, 0, 5);
  t.emitted(kP0, 100, 105);  // 5..99 lost to retention: never emitted
  t.acked(kP0, 100, 105, g);
  EXPECT_FALSE(t.committable(kP0));
  t.acked(kP0, 0, 5, g);
  EXPECT_EQ(t.committable(kP0), 105);
}

TEST(OffsetTracker, PartitionsAreIndependent) {
  OffsetTracker t;
  const auto g0 = t.assign(kP0);
  const auto g1 = t.assign(kP1);
  t.emitted(kP0, 0, 3);
  t.emitted(kP1, 7, 9);
  t.acked(kP1, 7, 9, g1);
  EXPECT_FALSE(t.committable(kP0));
  EXPECT_EQ(t.committable(kP1), 9);
  t.acked(kP0, 0, 3, g0);
  auto u = t.uncommitted();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[kP0], 3);
  EXPECT_EQ(u[kP1], 9);
}

TEST(OffsetTracker, MarkCommittedHidesUntilItMovesAgain) {
  OffsetTracker t;
  const auto g = t.assign(kP0);
  t.emitted(kP0, 0, 3);
  t.emitted(kP0, 3, 6);
  t.acked(kP0, 0, 3, g);
  t.mark_committed(kP0, 3);
  EXPECT_TRUE(t.uncommitted().empty());
  t.acked(kP0, 3, 6, g);
  EXPECT_EQ(t.uncommitted().at(kP0), 6);
}

TEST(OffsetTracker, RevokeForgetsInFlightAndIgnoresLateAcks) {
  OffsetTracker t;
  const auto g_old = t.assign(kP0);
  t.emitted(kP0, 0, 10);
  t.revoke(kP0);
  EXPECT_FALSE(t.tracked(kP0));
  t.acked(kP0, 0, 10, g_old);  // late ack of the lost assignment
  EXPECT_FALSE(t.committable(kP0));
  const auto g_new = t.assign(kP0);
  EXPECT_NE(g_new, g_old);
  t.emitted(kP0, 0, 10);  // re-delivered to us after reassignment
  t.acked(kP0, 0, 10, g_old);
  EXPECT_FALSE(t.committable(kP0)) << "an ack of the old generation must not count";
  t.acked(kP0, 0, 10, g_new);
  EXPECT_EQ(t.committable(kP0), 10);
}

TEST(OffsetTracker, RejectsRangesGoingBackwardsAndUntrackedPartitions) {
  OffsetTracker t;
  EXPECT_FALSE(t.emitted(kP0, 0, 1));
  t.assign(kP0);
  EXPECT_TRUE(t.emitted(kP0, 5, 10));
  EXPECT_FALSE(t.emitted(kP0, 7, 12));
  EXPECT_FALSE(t.emitted(kP0, 12, 12));
}

TEST(OffsetTracker, UnknownRangeAckIsIgnored) {
  OffsetTracker t;
  const auto g = t.assign(kP0);
  t.emitted(kP0, 0, 10);
  t.acked(kP0, 0, 5, g);
  EXPECT_FALSE(t.committable(kP0));
}
}  // namespace
