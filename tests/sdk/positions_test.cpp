#include "flow/positions.hpp"

#include <gtest/gtest.h>

#include "flow/batch.hpp"

TEST(Positions, AckCallsBackOnceAllSharesAreAcknowledged) {
  int calls = 0;
  std::vector<flow::PositionRange> seen;
  auto p = flow::Positions::track({{"t", 1, 10, 20}}, [&](const auto& r) {
    ++calls;
    seen = r;
  });
  auto second = p.share();
  p.ack();
  EXPECT_EQ(calls, 0);
  second.ack();
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (flow::PositionRange{"t", 1, 10, 20}));
  second.ack();  // empty now: nothing happens
  EXPECT_EQ(calls, 1);
}

TEST(Positions, DestroyingForgets) {
  int calls = 0;
  { auto p = flow::Positions::track({{"t", 0, 0, 1}}, [&](const auto&) { ++calls; }); }
  EXPECT_EQ(calls, 0);
}

TEST(Positions, CloneOfBatchSharesPositions) {
  int calls = 0;
  flow::Batch a(flow::make_schema({{"x", flow::Type::Int64}}));
  a.column(0).append_int64(1);
  a.positions() = flow::Positions::track({{"t", 0, 0, 1}}, [&](const auto&) { ++calls; });
  flow::Batch b = a.clone();
  EXPECT_EQ(b.column(0).int64_at(0), 1);
  a.positions().ack();
  EXPECT_EQ(calls, 0);
  b.positions().ack();
  EXPECT_EQ(calls, 1);
}

TEST(Positions, AppendMergesGroups) {
  int calls = 0;
  auto a = flow::Positions::track({{"t", 0, 0, 1}}, [&](const auto&) { ++calls; });
  auto b = flow::Positions::track({{"t", 0, 1, 2}}, [&](const auto&) { ++calls; });
  a.append(std::move(b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(a.ranges().size(), 2u);
  a.ack();
  EXPECT_EQ(calls, 2);
}

TEST(Column, NullsAndStrings) {
  flow::Column c(flow::Type::String);
  c.append_string("a,b");
  c.append_null();
  c.append_string("");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c.string_at(0), "a,b");
  EXPECT_TRUE(c.is_null(1));
  EXPECT_FALSE(c.is_null(2));
  EXPECT_EQ(c.string_at(2), "");
}
