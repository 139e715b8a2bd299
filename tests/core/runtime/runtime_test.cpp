// The scheduler in-process, with the test plugins: ordering, acknowledgement through fan-out,
// bounded channels under a slow sink, failures and stops.
#include "runtime/runtime.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "host/yaml_value.hpp"
#include "runtime/clock.hpp"
#include "support/process.hpp"

namespace {

using flow::test::TempDir;

// Runs the pipeline; `during` runs on another thread while it does (to stop it, move its clock).
flow::runtime::RunReport run_yaml(const std::string& yaml, std::function<void(flow::runtime::Runtime&)> during = {},
                                  flow::runtime::Clock* clock = nullptr) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "t.yaml", errors);
  auto spec = flow::spec::parse_pipeline(*root, "t.yaml", errors);
  if (!spec) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR});
  auto plugins = flow::spec::check_pipeline(*spec, registry, errors);
  if (!errors.empty()) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  flow::runtime::RunOptions opts;
  if (clock) opts.clock = clock;
  flow::runtime::Runtime rt(std::move(*spec), plugins, opts);
  std::thread t;
  if (during) t = std::thread([&] { during(rt); });
  auto report = rt.run();
  if (t.joinable()) t.join();
  return report;
}

std::vector<int64_t> read_numbers(const std::filesystem::path& p) {
  std::vector<int64_t> out;
  std::ifstream f(p);
  int64_t n;
  while (f >> n) out.push_back(n);
  return out;
}

// The test pipelines name their output file OUT.
std::string fmt_yaml(std::string yaml, const std::filesystem::path& out) {
  const auto at = yaml.find("OUT");
  yaml.replace(at, 3, out.string());
  return yaml;
}

uint64_t counter(const flow::runtime::RunReport& r, const std::string& stage, const std::string& name) {
  for (const auto& s : r.stages)
    if (s.id == stage)
      for (const auto& [k, v] : s.counters)
        if (k == name) return v;
  return 0;
}

const flow::runtime::StageReport& stage(const flow::runtime::RunReport& r, const std::string& id) {
  for (const auto& s : r.stages)
    if (s.id == id) return s;
  throw std::runtime_error("no stage " + id);
}

TEST(Runtime, ThreeStagesDeliverEverythingInOrderAndAcknowledge) {
  TempDir dir;
  auto r = run_yaml(fmt_yaml(R"(
name: t
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 10000, batch_size: 64}
  - id: mid
    plugin: test.passthrough
    input: src
  - id: out
    plugin: test.collect-sink
    input: mid
    config: {path: OUT}
)",
                                 dir / "out.txt"));
  ASSERT_TRUE(r.ok) << r.error;
  auto nums = read_numbers(dir / "out.txt");
  ASSERT_EQ(nums.size(), 10000u);
  for (int64_t i = 0; i < 10000; ++i) ASSERT_EQ(nums[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(counter(r, "src", "acked"), 10000u);
  EXPECT_EQ(stage(r, "out").records_in, 10000u);
}

TEST(Runtime, FanOutAcknowledgesOnlyWhenEveryBranchDid) {
  TempDir dir;
  const std::string base = R"(
name: t
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 500, batch_size: 50}
  - id: a
    plugin: test.collect-sink
    input: src
    config: {path: A}
  - id: b
    plugin: test.collect-sink
    input: src
    config: {path: B, ack: ACK}
)";
  auto replace = [&](std::string s, const std::string& ack) {
    s.replace(s.find("A}"), 1, (dir / "a.txt").string());
    s.replace(s.find("B,"), 1, (dir / "b.txt").string());
    s.replace(s.find("ACK"), 3, ack);
    return s;
  };
  auto r1 = run_yaml(replace(base, "false"));
  ASSERT_TRUE(r1.ok) << r1.error;
  EXPECT_EQ(read_numbers(dir / "a.txt").size(), 500u);
  EXPECT_EQ(read_numbers(dir / "b.txt").size(), 500u);
  EXPECT_EQ(counter(r1, "src", "acked"), 0u);  // branch b never acknowledged
  auto r2 = run_yaml(replace(base, "true"));
  ASSERT_TRUE(r2.ok) << r2.error;
  EXPECT_EQ(counter(r2, "src", "acked"), 500u);
}

TEST(Runtime, SlowSinkBlocksSourceWithinTheBuffer) {
  TempDir dir;
  // 64 KiB batches into a 2-batch buffer in front of a sink that sleeps per batch.
  auto r = run_yaml(fmt_yaml(R"(
name: t
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 2000, batch_size: 64, row_bytes: 1024}
  - id: out
    plugin: test.collect-sink
    input: src
    buffer: {batches: 2, bytes: 256KiB}
    config: {path: OUT, delay: 2ms}
)",
                                 dir / "out.txt"));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(read_numbers(dir / "out.txt").size(), 2000u);
  ASSERT_EQ(r.channels.size(), 1u);
  const auto& ch = r.channels[0].second;
  EXPECT_LE(ch.peak_depth, 2u);
  EXPECT_LE(ch.peak_bytes, 256u * 1024u);
  EXPECT_GT(ch.blocked_ns, 0u);  // the writer did wait: backpressure reached the source
}

TEST(Runtime, FailingStageStopsThePipelineWithItsId) {
  TempDir dir;
  auto r = run_yaml(fmt_yaml(R"(
name: t
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 0, batch_size: 10}
  - id: boom
    plugin: test.fail-stage
    input: src
    config: {after: 100, message: kaboom}
  - id: out
    plugin: test.collect-sink
    input: boom
    config: {path: OUT}
)",
                                 dir / "out.txt"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_stage, "boom");
  EXPECT_EQ(r.error, "kaboom");
  // What passed the failing stage before it failed was still delivered and acknowledged.
  EXPECT_EQ(read_numbers(dir / "out.txt").size(), 100u);
  EXPECT_EQ(counter(r, "src", "acked"), 100u);
}

TEST(Runtime, SignalDrainsEverythingAlreadyEmitted) {
  TempDir dir;
  auto stop_when_flowing = [&](flow::runtime::Runtime& rt) {
    flow::test::eventually([&] { return std::filesystem::exists(dir / "out.txt") && std::filesystem::file_size(dir / "out.txt") > 1000; });
    rt.request_stop();  // what flowctl's signal thread does on SIGINT
  };
  auto r = run_yaml(fmt_yaml(R"(
name: t
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 0, batch_size: 10, pause: 1ms}
  - id: out
    plugin: test.collect-sink
    input: src
    config: {path: OUT}
)",
                                 dir / "out.txt"),
                     stop_when_flowing);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.interrupted);
  const auto nums = read_numbers(dir / "out.txt");
  EXPECT_EQ(nums.size(), stage(r, "src").records_out);  // every emitted record reached the sink
  EXPECT_EQ(counter(r, "src", "acked"), nums.size());
}

// Stage threads are named after their stage (what `top -H` and perf show), and run under the
// pipeline's `run.scheduling` policy (SCHED_BATCH unless `normal`), which the caller's thread
// gets back when the run ends.
struct ThreadSeen {
  std::string name;
  int policy;
};
std::vector<ThreadSeen> threads_of_a_run(const std::string& run_settings) {
  TempDir dir;
  std::vector<ThreadSeen> seen;
  auto look = [&](flow::runtime::Runtime& rt) {
    flow::test::eventually([&] {
      seen.clear();
      for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        seen.push_back({name, ::sched_getscheduler(std::stoi(task.path().filename().string()))});
      }
      auto named = [&](const std::string& n) {
        return std::any_of(seen.begin(), seen.end(), [&](const ThreadSeen& t) { return t.name == n; });
      };
      return named("src") && named("a-rather-long-s");
    });
    rt.request_stop();
  };
  auto r = run_yaml(fmt_yaml(R"(
name: t
)" + run_settings + R"(
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 0, batch_size: 10, pause: 1ms}
  - id: a-rather-long-sink-id
    plugin: test.collect-sink
    input: src
    config: {path: OUT}
)",
                             dir / "out.txt"),
                     look);
  EXPECT_TRUE(r.ok) << r.error;
  return seen;
}

TEST(Runtime, StageThreadsCarryTheirStageIdsAndRunUnderBatchScheduling) {
  if (::sched_getscheduler(0) != SCHED_OTHER) GTEST_SKIP() << "started under another policy (chrt), which a run keeps";
  bool batch_allowed = false;  // a sandbox may refuse it (the run then warns and goes on)
  std::thread([&] {
    const sched_param param{};
    batch_allowed = ::sched_setscheduler(0, SCHED_BATCH, &param) == 0;
  }).join();
  if (!batch_allowed) GTEST_SKIP() << "this machine does not let a thread take SCHED_BATCH";
  std::map<std::string, int> policy;
  for (const auto& t : threads_of_a_run("")) policy[t.name] = t.policy;
  ASSERT_TRUE(policy.count("src"));
  ASSERT_TRUE(policy.count("a-rather-long-s"));  // 15 bytes: what Linux keeps of a thread name
  EXPECT_EQ(policy["src"], SCHED_BATCH);
  EXPECT_EQ(policy["a-rather-long-s"], SCHED_BATCH);
  EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);  // given back
}

TEST(Runtime, NormalSchedulingLeavesTheDefaultPolicy) {
  std::map<std::string, int> policy;
  for (const auto& t : threads_of_a_run("run: {scheduling: normal}")) policy[t.name] = t.policy;
  ASSERT_TRUE(policy.count("src"));
  EXPECT_EQ(policy["src"], SCHED_OTHER);
  EXPECT_EQ(policy["a-rather-long-s"], SCHED_OTHER);
}

TEST(Runtime, CyclesRunTheirDurationEachTime) {
  TempDir dir;
  // The duration is counted on an injected clock: each cycle ends only when the test moves it
  // past 100ms, after the cycle has delivered something.
  flow::runtime::ManualClock clock;
  auto advance_each_cycle = [&](flow::runtime::Runtime& rt) {
    uint64_t seen = 0;
    for (int cycle = 0; cycle < 3; ++cycle) {
      flow::test::eventually([&] {
        auto snap = rt.snapshot();
        for (const auto& s : snap.stages)
          if (s.id == "out" && snap.cycle == cycle && s.records_in > seen) {
            seen = s.records_in;
            return true;
          }
        return false;
      });
      clock.advance(std::chrono::milliseconds(100));
    }
  };
  auto r = run_yaml(fmt_yaml(R"(
name: t
run: {duration: 100ms, cycles: 3}
stages:
  - id: src
    plugin: test.counter-source
    config: {count: 0, batch_size: 10, pause: 5ms}
  - id: out
    plugin: test.collect-sink
    input: src
    config: {path: OUT}
)",
                                 dir / "out.txt"),
                    advance_each_cycle, &clock);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cycles_completed, 3);
  // Each cycle restarts the source at 0: three runs of 0..k.
  const auto nums = read_numbers(dir / "out.txt");
  EXPECT_EQ(std::count(nums.begin(), nums.end(), 0), 3);
}

}  // namespace
