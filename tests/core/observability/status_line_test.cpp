// The time left that the status line and `flowctl top` show: per cycle and for the whole run,
// right in every cycle of a `run: {duration: D, cycles: N}` pipeline, not only the first. The
// runtime case runs a real pipeline on a ManualClock, so the times are exact.
#include "observability/status_line.hpp"

#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <thread>

#include "host/yaml_value.hpp"
#include "runtime/clock.hpp"
#include "support/process.hpp"

namespace {

using flow::observability::time_left;
using flow::observability::time_left_text;

TEST(TimeLeft, CountsThisCycleAndTheCyclesAfterIt) {
  // Third cycle of 5 (index 2), 4 s into a 10 s duration: 6 s of it left, then two whole cycles.
  auto t = time_left(2, 5, 4.0, 10.0);
  ASSERT_TRUE(t);
  EXPECT_DOUBLE_EQ(t->cycle, 6.0);
  ASSERT_TRUE(t->total);
  EXPECT_DOUBLE_EQ(*t->total, 26.0);
  // The last cycle: only its own rest.
  EXPECT_DOUBLE_EQ(*time_left(4, 5, 9.5, 10.0)->total, 0.5);
  // Past the duration (draining): nothing left, never negative.
  EXPECT_DOUBLE_EQ(time_left(4, 5, 12.0, 10.0)->cycle, 0.0);
  EXPECT_DOUBLE_EQ(*time_left(4, 5, 12.0, 10.0)->total, 0.0);
  // Cycles forever: no total. No duration: nothing at all.
  EXPECT_FALSE(time_left(7, 0, 1.0, 10.0)->total);
  EXPECT_FALSE(time_left(0, 3, 1.0, std::nullopt));
}

TEST(TimeLeft, TextSaysWhichCycleOnlyWhenThereAreSeveral) {
  EXPECT_EQ(time_left_text(0, 1, 3.0, 4.0), "3s of 4s, 1s left");
  EXPECT_EQ(time_left_text(1, 3, 4.0, 10.0), "cycle 2/3 4s of 10s, 6s left, 16s in all");
  EXPECT_EQ(time_left_text(6, 0, 4.0, 10.0), "cycle 7 4s of 10s, 6s left");
  EXPECT_EQ(time_left_text(0, 1, 3.0, std::nullopt), "");
}

// A real run of three 10 s cycles on a ManualClock: in each cycle, before and after moving the
// clock 4 s, the snapshot's time left (what the status line and /metrics.json show) is exact.
TEST(TimeLeft, IsRightInEveryCycleOfARun) {
  flow::test::TempDir dir;
  const std::string yaml = "name: t\nrun: {duration: 10s, cycles: 3}\nstages:\n"
                           "  - id: src\n    plugin: test.counter-source\n    config: {count: 0, batch_size: 10, pause: 5ms}\n"
                           "  - id: out\n    plugin: test.collect-sink\n    input: src\n    config: {path: " +
                           (dir.path() / "out.txt").string() + "}\n";
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "t.yaml", errors);
  auto spec = flow::spec::parse_pipeline(*root, "t.yaml", errors);
  ASSERT_TRUE(spec) << flow::spec::format_errors(errors);
  flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR});
  auto plugins = flow::spec::check_pipeline(*spec, registry, errors);
  ASSERT_TRUE(errors.empty()) << flow::spec::format_errors(errors);
  flow::runtime::ManualClock clock;
  flow::runtime::RunOptions opts;
  opts.clock = &clock;
  flow::runtime::Runtime rt(std::move(*spec), plugins, opts);

  struct Seen {
    int cycle;
    double left_at_start, total_at_start, left_after_4s, total_after_4s;
    std::string status;
  };
  std::vector<Seen> seen;
  std::thread driver([&] {
    uint64_t records = 0;
    for (int cycle = 0; cycle < 3; ++cycle) {
      // This cycle's stages run (its records arrive): its duration is being counted.
      flow::test::eventually([&] {
        const auto snap = rt.snapshot();
        for (const auto& s : snap.stages)
          if (s.id == "out" && snap.cycle == cycle && s.records_in > records) {
            records = s.records_in;
            return true;
          }
        return false;
      });
      Seen s{cycle, -1, -1, -1, -1, ""};
      if (auto t = time_left(rt.snapshot())) {
        s.left_at_start = t->cycle;
        s.total_at_start = t->total.value_or(-1);
      }
      clock.advance(std::chrono::seconds(4));
      const auto snap = rt.snapshot();
      if (auto t = time_left(snap)) {
        s.left_after_4s = t->cycle;
        s.total_after_4s = t->total.value_or(-1);
      }
      s.status = flow::observability::status_text(snap, nullptr, 0);
      seen.push_back(s);
      clock.advance(std::chrono::seconds(6));  // the cycle's duration is reached
    }
  });
  const auto report = rt.run();
  driver.join();
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_EQ(report.cycles_completed, 3);
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& s : seen) {
    SCOPED_TRACE("cycle " + std::to_string(s.cycle + 1));
    EXPECT_DOUBLE_EQ(s.left_at_start, 10.0);
    EXPECT_DOUBLE_EQ(s.total_at_start, 10.0 * (3 - s.cycle));
    EXPECT_DOUBLE_EQ(s.left_after_4s, 6.0);
    EXPECT_DOUBLE_EQ(s.total_after_4s, 6.0 + 10.0 * (2 - s.cycle));
    EXPECT_THAT(s.status, ::testing::StartsWith(fmt::format("[cycle {}/3 4s of 10s, 6s left, {:.0f}s in all]", s.cycle + 1,
                                                            6.0 + 10.0 * (2 - s.cycle))));
  }
}

}  // namespace
