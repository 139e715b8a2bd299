#include <gtest/gtest.h>

#include "positions_tracker.hpp"

namespace {

using flow_file::Tracker;

TEST(Tracker, CommitsOnlyTheContiguousAcknowledgedPrefix) {
  Tracker t;
  t.start("s:1:2", 0, 100);
  t.emitted("s:1:2", 0, 130);
  EXPECT_EQ(*t.committed("s:1:2", 0), 100);
  t.acked("s:1:2", 0, 110, 120);  // above a gap: held back
  EXPECT_EQ(*t.committed("s:1:2", 0), 100);
  EXPECT_FALSE(t.fully_acked("s:1:2", 0));
  t.acked("s:1:2", 0, 100, 110);
  EXPECT_EQ(*t.committed("s:1:2", 0), 120);
  t.acked("s:1:2", 0, 120, 130);
  EXPECT_EQ(*t.committed("s:1:2", 0), 130);
  EXPECT_TRUE(t.fully_acked("s:1:2", 0));
}

TEST(Tracker, GenerationsAreSeparateAndForgottenOnesIgnored) {
  Tracker t;
  t.start("s:1:2", 0, 0);
  t.start("s:1:2", 1, 0);  // truncated: a new generation
  t.acked("s:1:2", 0, 0, 50);
  EXPECT_EQ(*t.committed("s:1:2", 0), 50);
  EXPECT_EQ(*t.committed("s:1:2", 1), 0);
  const auto snap = t.snapshot();  // only the newest generation is checkpointed
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].gen, 1);
  t.acked("s:1:2", 0, 50, 60);
  EXPECT_FALSE(t.committed("s:1:2", 0).has_value());
  EXPECT_FALSE(t.committed("other", 0).has_value());
}

TEST(Tracker, HeadAndClosedFiles) {
  Tracker t;
  t.start("s:1:3", 0, 0, {1, 3}, "/x");
  t.add_head("s:1:3", 0, 0, "abc");
  t.add_head("s:1:3", 0, 2, "cdef");  // overlaps: only "def" is new
  t.add_head("s:1:3", 0, 10, "zzz");  // a gap: ignored
  t.emitted("s:1:3", 0, 6);
  t.acked("s:1:3", 0, 0, 4);
  auto snap = t.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].head, "abcd");  // only bytes below the committed offset
  EXPECT_EQ(snap[0].path, "/x");
  t.closed("s:1:3", 0);
  EXPECT_EQ(t.snapshot().size(), 1u);  // not fully acknowledged yet
  t.acked("s:1:3", 0, 4, 6);
  EXPECT_TRUE(t.snapshot().empty());
  EXPECT_TRUE(t.seen({1, 3}));
}

}  // namespace
