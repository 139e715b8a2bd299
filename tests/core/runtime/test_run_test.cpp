// The engine behind `flowctl test` (runtime/test_run.hpp): captures lose nothing, replaced stages
// feed what follows them and what fed only them does not run, timers fire only when the manual
// clock reaches the given times, and failures are reported.
#include "runtime/test_run.hpp"

#include <gtest/gtest.h>

#include "host/yaml_value.hpp"
#include "support/files.hpp"

namespace {

using flow::runtime::TestRunConfig;
using flow::runtime::TestRunResult;

struct Loaded {
  flow::spec::PipelineSpec spec;
  std::map<std::string, flow::loader::PluginPtr> plugins;
};

Loaded load(const std::string& yaml) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "t.yaml", errors);
  auto spec = flow::spec::parse_pipeline(*root, "t.yaml", errors);
  if (!spec) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  static flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR, FLOW_PLUGIN_DIR});
  auto plugins = flow::spec::check_pipeline(*spec, registry, errors);
  if (!errors.empty()) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  return {std::move(*spec), std::move(plugins)};
}

TestRunResult run(const std::string& yaml, TestRunConfig cfg) {
  auto l = load(yaml);
  cfg.log = [](flow::LogLevel, std::string_view, std::string_view) {};
  return flow::runtime::run_pipeline_test(l.spec, l.plugins, std::move(cfg));
}

std::vector<int64_t> numbers(const std::vector<flow::Batch>& batches, const std::string& column) {
  std::vector<int64_t> out;
  for (const auto& b : batches)
    for (std::size_t i = 0; i < b.num_rows(); ++i) out.push_back(b.column(column).ints()[i]);
  return out;
}

flow::Batch ints(std::initializer_list<int64_t> values) {
  flow::Batch b(flow::make_schema({{"n", flow::Type::Int64}}));
  for (auto v : values) b.column(0).append_int64(v);
  return b;
}

TEST(TestRun, CapturesEveryRecordOfARealSourceInOrder) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.captures = {"mid", "->out"};
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source, config: {count: 100000, batch_size: 64}}
  - {id: mid, plugin: test.passthrough, input: src}
  - {id: out, plugin: test.collect-sink, input: mid, config: {path: )" + (dir / "out.txt").string() + "}}\n",
               std::move(cfg));
  ASSERT_TRUE(r.ok) << r.error;
  // A tap samples (1024 rows a reader); a capture must not lose one.
  for (const char* name : {"mid", "->out"}) {
    const auto got = numbers(r.captured.at(name), "n");
    ASSERT_EQ(got.size(), 100000u) << name;
    for (int64_t i = 0; i < 100000; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i) << name;
  }
}

TEST(TestRun, AReplacedStageFeedsWhatFollowsAndWhatFedOnlyItDoesNotRun) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.replaced = {"mid"};
  cfg.captures = {"->out"};
  cfg.inputs.push_back({"mid", "", std::chrono::seconds(0), ints({7, 8})});
  cfg.inputs.push_back({"mid", "", std::chrono::seconds(1), ints({9})});
  // count: 0 never ends by itself: the test would fail if it ran.
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source, config: {count: 0}}
  - {id: mid, plugin: test.passthrough, input: src}
  - {id: out, plugin: test.collect-sink, input: mid, config: {path: )" + (dir / "out.txt").string() + "}}\n",
               std::move(cfg));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.pruned, std::vector<std::string>{"src"});
  EXPECT_EQ(numbers(r.captured.at("->out"), "n"), (std::vector<int64_t>{7, 8, 9}));
  for (const auto& s : r.stages) {
    if (s.id == "mid") {
      EXPECT_EQ(s.records_out, 3u);
    }
  }
}

TEST(TestRun, WindowsCloseWhenTheManualClockReachesTheGivenTimes) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.replaced = {"src"};
  cfg.captures = {"csv"};
  cfg.inputs.push_back({"src", "", std::chrono::seconds(0), ints({1})});
  cfg.inputs.push_back({"src", "", std::chrono::milliseconds(4999), ints({2})});
  cfg.inputs.push_back({"src", "", std::chrono::seconds(5), ints({3})});  // the 5s window has ended
  cfg.inputs.push_back({"src", "", std::chrono::seconds(30), ints({4, 5})});
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source}
  - {id: csv, plugin: csv-window-sink, input: src, config: {path: )" + (dir / "parts").string() + ", window: 5s}}\n",
               std::move(cfg));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(numbers(r.captured.at("csv"), "rows"), (std::vector<int64_t>{2, 1, 2}));
  // Windows are timed by the manual clock's wall time, which starts at 2025-06-15 09:00:00 UTC.
  const auto starts = numbers(r.captured.at("csv"), "window_start");
  const int64_t t0 = 1'749'978'000'000'000;
  EXPECT_EQ(starts, (std::vector<int64_t>{t0, t0 + 5'000'000, t0 + 30'000'000}));
}

TEST(TestRun, AFailingStageIsReportedAndTheOthersStillFinish) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.replaced = {"src"};
  cfg.captures = {"->out"};
  cfg.inputs.push_back({"src", "", std::chrono::seconds(0), ints({1, 2})});
  cfg.inputs.push_back({"src", "", std::chrono::seconds(1), ints({3, 4})});
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source}
  - {id: bad, plugin: test.fail-stage, input: src, config: {after: 2, message: boom}}
  - {id: out, plugin: test.collect-sink, input: bad, config: {path: )" + (dir / "out.txt").string() + "}}\n",
               std::move(cfg));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_stage, "bad");
  EXPECT_EQ(r.error, "boom");
  EXPECT_EQ(numbers(r.captured.at("->out"), "n"), (std::vector<int64_t>{1, 2}));
}

TEST(TestRun, ASourceThatDoesNotEndByItselfIsStoppedAndNamed) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.source_timeout = std::chrono::seconds(1);
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source, config: {count: 0, pause: 10ms}}
  - {id: out, plugin: test.collect-sink, input: src, config: {path: )" + (dir / "out.txt").string() + "}}\n",
               std::move(cfg));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_stage, "src");
  EXPECT_NE(r.error.find("did not end by itself"), std::string::npos) << r.error;
}

}  // namespace

namespace {

TEST(TestRun, ASourceThatFloodsTheChannelsIsStoppedBeforeTheMemoryFills) {
  flow::test::TempDir dir;
  TestRunConfig cfg;
  cfg.source_max_batches = 10;
  cfg.captures = {"src"};
  auto r = run(R"(
name: t
stages:
  - {id: src, plugin: test.counter-source, config: {count: 0, batch_size: 8}}
  - {id: out, plugin: test.collect-sink, input: src, config: {path: )" + (dir / "out.txt").string() + "}}\n",
               std::move(cfg));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_stage, "src");
  EXPECT_NE(r.error.find("emitted more than 10 batches"), std::string::npos) << r.error;
}

}  // namespace
