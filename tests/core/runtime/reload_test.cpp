// Hot reload in-process, with the test plugins and real threads: Runtime::reload while records
// flow. The counter source numbers its records 0, 1, 2...: a source that kept running continues
// the sequence, and every sink's file says whether anything was lost or written twice.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "host/yaml_value.hpp"
#include "runtime/clock.hpp"
#include "runtime/runtime.hpp"
#include "support/process.hpp"

namespace {

using flow::test::TempDir;
namespace fs = std::filesystem;

struct Loaded {
  flow::spec::PipelineSpec spec;
  std::map<std::string, flow::loader::PluginPtr> plugins;
};

Loaded load(const std::string& yaml) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "r.yaml", errors);
  auto spec = root ? flow::spec::parse_pipeline(*root, "r.yaml", errors) : std::nullopt;
  if (!spec) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR});
  auto plugins = flow::spec::check_pipeline(*spec, registry, errors);
  if (!errors.empty()) throw std::runtime_error("bad test pipeline: " + flow::spec::format_errors(errors));
  return {std::move(*spec), std::move(plugins)};
}

std::string with(std::string yaml, const std::string& from, const std::string& to) {
  for (auto at = yaml.find(from); at != std::string::npos; at = yaml.find(from, at + to.size())) yaml.replace(at, from.size(), to);
  return yaml;
}

std::vector<int64_t> numbers(const fs::path& p) {
  std::vector<int64_t> out;
  std::ifstream f(p);
  int64_t n;
  while (f >> n) out.push_back(n);
  return out;
}

std::size_t lines(const fs::path& p) { return numbers(p).size(); }

const flow::runtime::StageReport& stage(const flow::runtime::RunReport& r, const std::string& id) {
  for (const auto& s : r.stages)
    if (s.id == id) return s;
  throw std::runtime_error("no stage " + id);
}

uint64_t acked(const flow::runtime::RunReport& r) {
  for (const auto& [k, v] : stage(r, "src").counters)
    if (k == "acked") return v;
  return 0;
}

// 0..n-1 once each, in order.
void expect_sequence(const std::vector<int64_t>& got, uint64_t n) {
  ASSERT_EQ(got.size(), n);
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != static_cast<int64_t>(i)) FAIL() << "record " << i << " is " << got[i];
}

const char* kPipeline = R"(
name: r
stages:
  - {id: src, plugin: test.counter-source, config: {count: 0, batch_size: 10, pause: 1ms}}
  - {id: mid, plugin: test.passthrough, input: src}
  - {id: out, plugin: test.collect-sink, input: mid, config: {path: A}}
)";

TEST(Reload, AChangedSinkDrainsIntoItsOldFileAndGoesOnInItsNewOne) {
  TempDir dir;
  const std::string a = (dir / "a.txt").string(), b = (dir / "b.txt").string();
  const std::string yaml = with(kPipeline, "path: A", "path: " + a);
  auto first = load(yaml);
  flow::runtime::Runtime rt(std::move(first.spec), first.plugins);
  flow::runtime::ReloadResult result;
  std::thread t([&] {
    flow::test::eventually([&] { return lines(a) > 200; });
    auto next = load(with(yaml, a, b));
    result = rt.reload(std::move(next.spec), std::move(next.plugins));
    flow::test::eventually([&] { return lines(b) > 200; });
    rt.request_stop();
  });
  const auto r = rt.run();
  t.join();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(result.ok) << result.message;
  EXPECT_NE(result.message.find("1 changed, 0 added, 0 removed, 0 restarted with them; 2 stages kept running"),
            std::string::npos)
      << result.message;
  // The source kept running (its numbers go on, not from 0 again) and nothing was lost or doubled.
  auto all = numbers(a);
  const auto after = numbers(b);
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.front(), all.back() + 1);
  all.insert(all.end(), after.begin(), after.end());
  expect_sequence(all, stage(r, "src").records_out);
  EXPECT_EQ(acked(r), all.size());
}

TEST(Reload, AddingAndRemovingASinkReWiresItsWriterAndKeepsTheOtherSinkRunning) {
  TempDir dir;
  const std::string a = (dir / "a.txt").string(), c = (dir / "c.txt").string();
  const std::string yaml = with(kPipeline, "path: A", "path: " + a);
  const std::string two = yaml + "  - {id: out2, plugin: test.collect-sink, input: mid, config: {path: " + c + "}}\n";
  auto first = load(yaml);
  flow::runtime::Runtime rt(std::move(first.spec), first.plugins);
  flow::runtime::ReloadResult added, removed;
  std::size_t c_at_removal = 0;
  std::thread t([&] {
    flow::test::eventually([&] { return lines(a) > 200; });
    auto next = load(two);
    added = rt.reload(std::move(next.spec), std::move(next.plugins));
    flow::test::eventually([&] { return lines(c) > 200; });
    auto back = load(yaml);
    removed = rt.reload(std::move(back.spec), std::move(back.plugins));
    c_at_removal = lines(c);
    flow::test::eventually([&] { return lines(a) > c_at_removal + 400; });
    rt.request_stop();
  });
  const auto r = rt.run();
  t.join();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(added.ok) << added.message;
  EXPECT_NE(added.message.find("0 changed, 1 added, 0 removed, 1 restarted with them"), std::string::npos) << added.message;
  EXPECT_TRUE(removed.ok) << removed.message;
  EXPECT_NE(removed.message.find("1 removed"), std::string::npos) << removed.message;
  // `out` kept running through both reloads: one file with every record once, in order.
  expect_sequence(numbers(a), stage(r, "src").records_out);
  EXPECT_EQ(acked(r), numbers(a).size());
  // out2 saw a contiguous stretch from when it was added until it was removed, and then nothing.
  const auto mid = numbers(c);
  ASSERT_FALSE(mid.empty());
  for (std::size_t i = 1; i < mid.size(); ++i) ASSERT_EQ(mid[i], mid[i - 1] + 1) << "at " << i;
  EXPECT_EQ(mid.size(), c_at_removal);
}

TEST(Reload, ARunLevelChangeIsRefusedAndTheRunGoesOnUnchanged) {
  TempDir dir;
  const std::string a = (dir / "a.txt").string();
  const std::string yaml = with(kPipeline, "path: A", "path: " + a);
  auto first = load(yaml);
  flow::runtime::Runtime rt(std::move(first.spec), first.plugins);
  flow::runtime::ReloadResult result;
  std::thread t([&] {
    flow::test::eventually([&] { return lines(a) > 100; });
    auto next = load(with(yaml, "name: r", "name: r\nrun: {duration: 1h, cycles: 2}"));
    result = rt.reload(std::move(next.spec), std::move(next.plugins));
    const std::size_t at = lines(a);
    flow::test::eventually([&] { return lines(a) > at + 100; });
    rt.request_stop();
  });
  const auto r = rt.run();
  t.join();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("run.cycles: 1 -> 2"), std::string::npos) << result.message;
  expect_sequence(numbers(a), stage(r, "src").records_out);
}

TEST(Reload, WhileACycleDrainsItAppliesWhenTheNextCycleStarts) {
  TempDir dir;
  const std::string a = (dir / "a.txt").string(), b = (dir / "b.txt").string();
  // A slow sink makes the drain last; the cycle's duration runs on a clock the test moves.
  const std::string yaml = with(with(with(kPipeline, "path: A", "path: " + a + ", delay: 50ms"), "name: r",
                                     "name: r\nrun: {duration: 100ms, cycles: 2}"),
                                "input: mid,", "input: mid, buffer: {batches: 8},");
  auto first = load(yaml);
  flow::runtime::ManualClock clock;
  flow::runtime::RunOptions opts;
  opts.clock = &clock;
  flow::runtime::Runtime rt(std::move(first.spec), first.plugins, opts);
  flow::runtime::ReloadResult result;
  std::thread t([&] {
    flow::test::eventually([&] { return lines(a) > 50; });
    clock.advance(std::chrono::milliseconds(100));  // cycle 1 drains from the next wake-up on
    auto next = load(with(yaml, a, b));
    result = rt.reload(std::move(next.spec), std::move(next.plugins));  // answered when cycle 2 starts
    flow::test::eventually([&] { return lines(b) > 50; });
    clock.advance(std::chrono::milliseconds(100));
  });
  const auto r = rt.run();
  t.join();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.cycles_completed, 2);
  EXPECT_TRUE(result.ok) << result.message;
  EXPECT_NE(result.message.find("applied at the start of cycle 2: 1 changed"), std::string::npos) << result.message;
  // Each cycle's source starts at 0: cycle 1 went wholly to a, cycle 2 wholly to b.
  const auto one = numbers(a), two = numbers(b);
  ASSERT_FALSE(one.empty());
  ASSERT_FALSE(two.empty());
  EXPECT_EQ(one.front(), 0);
  EXPECT_EQ(two.front(), 0);
  EXPECT_EQ(one.size() + two.size(), stage(r, "src").records_out);
}

TEST(Reload, AfterTheRunEndedItIsAnsweredAtOnce) {
  TempDir dir;
  const std::string yaml = with(with(kPipeline, "path: A", "path: " + (dir / "a.txt").string()), "count: 0", "count: 50");
  auto first = load(yaml);
  flow::runtime::Runtime rt(std::move(first.spec), first.plugins);
  ASSERT_TRUE(rt.run().ok);
  auto next = load(yaml);
  const auto result = rt.reload(std::move(next.spec), std::move(next.plugins));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.message, "the run has ended");
}

}  // namespace
