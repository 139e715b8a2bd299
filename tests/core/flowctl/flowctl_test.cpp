// flowctl as a user runs it: a real process, real signals, exit codes and messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <regex>

#include "support/process.hpp"

namespace {

using flow::test::eventually;
using flow::test::Process;
using flow::test::TempDir;
using namespace std::chrono_literals;

const std::vector<std::pair<std::string, std::string>> kEnv = {{"FLOW_PLUGIN_PATH", FLOW_TEST_PLUGIN_DIR}};

Process flowctl(const TempDir& dir, std::vector<std::string> args, const std::string& log = "flowctl") {
  args.insert(args.begin(), FLOW_FLOWCTL);
  return Process(args, dir / log, kEnv);
}

std::size_t line_count(const std::filesystem::path& p) {
  const auto s = flow::test::read_file(p);
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// "src   test.counter-source   -   1234" -> 1234 (records out of a stage in the summary)
uint64_t records_out(const std::string& summary, const std::string& stage) {
  std::smatch m;
  std::regex re("\n" + stage + R"(\s+\S+\s+\S+\s+(\d+))");
  if (!std::regex_search(summary, m, re)) return UINT64_MAX;
  return std::stoull(m[1]);
}

std::string endless_pipeline(const TempDir& dir, const std::string& sink_extra = "") {
  const auto file = dir / "p.yaml";
  flow::test::write_file(file, "name: endless\nstages:\n  - id: src\n    plugin: test.counter-source\n"
                               "    config: {count: 0, batch_size: 10, pause: 1ms}\n"
                               "  - id: out\n    plugin: test.collect-sink\n    input: src\n"
                               "    config: {path: " + (dir / "out.txt").string() + sink_extra + "}\n");
  return file.string();
}

TEST(Flowctl, SigtermDeliversEveryEmittedBatchAndExitsZero) {
  TempDir dir;
  auto p = flowctl(dir, {"run", endless_pipeline(dir)});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "out.txt") && line_count(dir / "out.txt") > 200; }));
  p.signal(SIGTERM);
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc) << "flowctl did not stop after SIGTERM";
  EXPECT_EQ(*rc, 0) << p.err();
  const auto lines = line_count(dir / "out.txt");
  EXPECT_EQ(lines, records_out(p.err(), "src")) << p.err();
  EXPECT_THAT(p.err(), ::testing::HasSubstr("stop requested: draining"));
}

TEST(Flowctl, SecondSigintAbortsASlowDrain) {
  TempDir dir;
  // A sink that needs 200ms per batch and a deep buffer: a full drain would take minutes.
  const auto file = dir / "p.yaml";
  flow::test::write_file(file, "name: slow\nstages:\n  - id: src\n    plugin: test.counter-source\n"
                               "    config: {count: 0, batch_size: 10}\n"
                               "  - id: out\n    plugin: test.collect-sink\n    input: src\n    buffer: {batches: 1000}\n"
                               "    config: {path: " + (dir / "out.txt").string() + ", delay: 200ms}\n");
  auto p = flowctl(dir, {"run", file.string()});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "out.txt") && line_count(dir / "out.txt") > 0; }));
  p.signal(SIGINT);
  ASSERT_TRUE(eventually([&] { return p.err().find("draining") != std::string::npos; }));
  p.signal(SIGINT);
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc) << "flowctl did not abort after a second SIGINT";
  EXPECT_EQ(*rc, 1) << "an aborted run did not complete: exit 1, not 0";
  EXPECT_THAT(p.err(), ::testing::HasSubstr("second signal: aborting"));
  EXPECT_THAT(p.err(), ::testing::HasSubstr("aborted by a second signal: the drain was skipped"));
}

TEST(Flowctl, StopAfterStopsASourceOnlyOnceItsStagesFinished) {
  TempDir dir;
  // `consumer` may stop only after `slow` (fed by `producer`) has drained and finished.
  const auto file = dir / "p.yaml";
  flow::test::write_file(file, "name: ordered\nstages:\n"
                               "  - id: producer\n    plugin: test.counter-source\n    config: {count: 0, batch_size: 10, pause: 1ms}\n"
                               "  - id: slow\n    plugin: test.collect-sink\n    input: producer\n"
                               "    config: {path: " + (dir / "a.txt").string() + ", delay: 20ms}\n"
                               "  - id: consumer\n    plugin: test.counter-source\n    config: {count: 0, batch_size: 10, pause: 1ms}\n"
                               "    stop_after: [slow]\n"
                               "  - id: sink\n    plugin: test.collect-sink\n    input: consumer\n"
                               "    config: {path: " + (dir / "b.txt").string() + "}\n");
  auto p = flowctl(dir, {"--log-level", "debug", "run", file.string(), "--duration", "500ms"});
  auto rc = p.wait(120s);
  ASSERT_TRUE(rc);
  ASSERT_EQ(*rc, 0) << p.err();
  const auto err = p.err();
  const auto slow_done = err.find("[slow] finished");
  const auto consumer_stop = err.find("[consumer] stopping: the stages it waits for (stop_after) have finished");
  const auto consumer_done = err.find("[consumer] finished");
  ASSERT_NE(slow_done, std::string::npos) << err;
  ASSERT_NE(consumer_stop, std::string::npos) << err;
  ASSERT_NE(consumer_done, std::string::npos) << err;
  EXPECT_LT(slow_done, consumer_stop);
  EXPECT_LT(consumer_stop, consumer_done);
}

TEST(Flowctl, FailingStageExitsOneNamingTheStage) {
  TempDir dir;
  const auto file = dir / "p.yaml";
  flow::test::write_file(file, "name: fails\nstages:\n  - id: src\n    plugin: test.counter-source\n"
                               "  - id: boom\n    plugin: test.fail-stage\n    input: src\n    config: {after: 10, message: disk on fire}\n");
  auto p = flowctl(dir, {"run", file.string()});
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 1);
  EXPECT_THAT(p.err(), ::testing::HasSubstr("stage 'boom' failed: disk on fire"));
}

TEST(Flowctl, ValidatePrintsEveryErrorWithPositionAndExitsTwo) {
  TempDir dir;
  const auto file = dir / "broken.yaml";
  flow::test::write_file(file, "name: broken\nstages:\n  - id: src\n    plugin: test.counter-source\n    config: {cont: 1}\n"
                               "  - id: out\n    plugin: test.colect-sink\n    input: sr\n");
  auto p = flowctl(dir, {"validate", file.string()});
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 2);
  const auto err = p.err();
  EXPECT_THAT(err, ::testing::HasSubstr(file.string() + ":5:14: error: stage 'src': unknown option 'cont' (did you mean 'count'?)"));
  EXPECT_THAT(err, ::testing::HasSubstr(file.string() + ":7:13: error: stage 'out': unknown plugin 'test.colect-sink' (did you mean 'test.collect-sink'?)"));
  EXPECT_THAT(err, ::testing::HasSubstr(file.string() + ":8:12: error: stage 'out': input 'sr' names no stage (did you mean 'src'?)"));
}

TEST(Flowctl, ValidateAcceptsAGoodPipeline) {
  TempDir dir;
  auto p = flowctl(dir, {"validate", endless_pipeline(dir)});
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 0) << p.err();
  EXPECT_THAT(p.out(), ::testing::HasSubstr("ok (pipeline 'endless', 2 stages)"));
}

TEST(Flowctl, DurationFlagStopsTheRun) {
  TempDir dir;
  auto p = flowctl(dir, {"run", endless_pipeline(dir), "--duration", "300ms"});
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 0) << p.err();
  EXPECT_EQ(line_count(dir / "out.txt"), records_out(p.err(), "src"));
}

TEST(Flowctl, UsageErrorsExitTwo) {
  TempDir dir;
  auto p = flowctl(dir, {"run"});
  EXPECT_EQ(p.wait(60s), 2);
  auto q = flowctl(dir, {"frobnicate"}, "q");
  EXPECT_EQ(q.wait(60s), 2);
}

TEST(Flowctl, PluginsListAndDescribe) {
  TempDir dir;
  auto p = flowctl(dir, {"plugins", "list"});
  ASSERT_EQ(p.wait(60s), 0);
  EXPECT_THAT(p.out(), ::testing::HasSubstr("test.counter-source"));
  EXPECT_THAT(p.out(), ::testing::HasSubstr("Emits 0..count-1 for tests and benchmarks"));
  auto d = flowctl(dir, {"plugins", "describe", "test.collect-sink", "--format", "json"}, "d");
  ASSERT_EQ(d.wait(60s), 0);
  EXPECT_THAT(d.out(), ::testing::HasSubstr("\"schema_version\": 1"));
  EXPECT_THAT(d.out(), ::testing::HasSubstr("{\"name\": \"path\", \"type\": \"string\", \"required\": true"));
  auto m = flowctl(dir, {"plugins", "describe", "test.counter-source", "--format", "markdown"}, "m");
  ASSERT_EQ(m.wait(60s), 0);
  EXPECT_THAT(m.out(), ::testing::HasSubstr("| `batch_size` | int | `100` | Rows per batch (range [1, 1000000]) |"));
  auto u = flowctl(dir, {"plugins", "describe", "no-such-plugin"}, "u");
  EXPECT_EQ(u.wait(60s), 2);
  EXPECT_THAT(u.err(), ::testing::HasSubstr("unknown plugin 'no-such-plugin'"));
}

TEST(Flowctl, GraphPrintsDotAndMermaid) {
  TempDir dir;
  auto p = flowctl(dir, {"graph", endless_pipeline(dir)});
  ASSERT_EQ(p.wait(60s), 0);
  EXPECT_THAT(p.out(), ::testing::HasSubstr("src -> out;"));
  auto m = flowctl(dir, {"graph", endless_pipeline(dir), "--format", "mermaid"}, "m");
  ASSERT_EQ(m.wait(60s), 0);
  EXPECT_THAT(m.out(), ::testing::HasSubstr("src --> out"));
}

TEST(Flowctl, ValidatePrintSubstitutesVariablesAndOverrides) {
  TempDir dir;
  const auto file = dir / "v.yaml";
  flow::test::write_file(file, "name: v\nstages:\n  - id: src\n    plugin: test.counter-source\n"
                               "    config:\n      count: ${FLOW_T_COUNT:-3}\n"
                               "  - id: out\n    plugin: test.collect-sink\n    input: src\n"
                               "    config: {path: \"${FLOW_T_UNSET}/o.txt\"}\n");
  // Unset variable: an error at its line and column; global options after the subcommand.
  auto bad = flowctl(dir, {"validate", file.string(), "--log-level", "debug"}, "bad");
  ASSERT_EQ(bad.wait(30s), 2);
  EXPECT_THAT(bad.err(), ::testing::HasSubstr(file.string() + ":10:21: error: environment variable 'FLOW_T_UNSET' is not set"));
  flow::test::write_file(file, flow::test::read_file(file).replace(flow::test::read_file(file).find("${FLOW_T_UNSET}"), 15, "$${X}"));
  auto good = flowctl(dir, {"validate", file.string(), "--print", "--set", "src.batch_size=4"}, "good");
  ASSERT_EQ(good.wait(30s), 0) << good.err();
  EXPECT_THAT(good.out(), ::testing::HasSubstr("count: 3\n      batch_size: 4"));
  EXPECT_THAT(good.out(), ::testing::HasSubstr("path: \"${X}/o.txt\""));
}

TEST(Flowctl, GraphDrawsTheKafkaHop) {
  if (!std::filesystem::exists(std::filesystem::path(FLOW_PLUGIN_DIR) / "libflow-kafka-sink.so"))
    GTEST_SKIP() << "the Kafka plugins are not in this build";
  TempDir dir;
  auto dot = flowctl(dir, {"graph", std::string(FLOW_SOURCE_DIR) + "/pipelines/iot-demo.yaml"}, "dot");
  ASSERT_EQ(dot.wait(30s), 0) << dot.err();
  EXPECT_THAT(dot.out(), ::testing::HasSubstr("publish -> consume [style=dashed, label=\"kafka: sensor-data\"];"));
  auto mm = flowctl(dir, {"graph", std::string(FLOW_SOURCE_DIR) + "/pipelines/iot-demo.yaml", "--format", "mermaid"}, "mm");
  ASSERT_EQ(mm.wait(30s), 0) << mm.err();
  EXPECT_THAT(mm.out(), ::testing::HasSubstr("publish -.->|kafka: sensor-data| consume"));
  // The producer half alone has no consumer: no hop.
  auto half = flowctl(dir, {"graph", std::string(FLOW_SOURCE_DIR) + "/pipelines/iot-producer.yaml"}, "half");
  ASSERT_EQ(half.wait(30s), 0) << half.err();
  EXPECT_THAT(half.out(), ::testing::Not(::testing::HasSubstr("kafka:")));
}

TEST(Flowctl, ValidateSaysWhyExactlyOnceCannotHold) {
  if (!std::filesystem::exists(std::filesystem::path(FLOW_PLUGIN_DIR) / "libflow-kafka-source.so"))
    GTEST_SKIP() << "the Kafka plugins are not in this build";
  TempDir dir;
  const auto file = dir / "to-stdout.yaml";
  auto write = [&](const std::string& delivery) {
    flow::test::write_file(file, "name: to-stdout\nstages:\n  - id: consume\n    plugin: kafka-source\n"
                                 "    config: {brokers: embedded, topics: [t]" + delivery + "}\n"
                                 "  - id: print\n    plugin: stdout-sink\n    input: consume\n");
  };
  write("");
  auto p = flowctl(dir, {"validate", file.string()}, "default");
  ASSERT_EQ(p.wait(60s), 0) << p.err();
  EXPECT_THAT(p.err(), ::testing::HasSubstr(file.string() + ":4:13: warning: stage 'consume': delivery: exactly-once (the default) "
                                            "cannot hold: sink 'print' (plugin stdout-sink) keeps no durable record"));
  write(", delivery: exactly-once");
  auto asked = flowctl(dir, {"validate", file.string()}, "asked");
  ASSERT_EQ(asked.wait(60s), 0) << asked.err();
  EXPECT_THAT(asked.err(), ::testing::HasSubstr(file.string() + ":5:56: warning: stage 'consume': delivery: exactly-once cannot hold"));
  write(", delivery: at-least-once");
  auto chosen = flowctl(dir, {"validate", file.string()}, "chosen");
  ASSERT_EQ(chosen.wait(60s), 0) << chosen.err();
  EXPECT_THAT(chosen.err(), ::testing::Not(::testing::HasSubstr("warning")));
  // The consumer pipeline writes only to csv-window-sink, which keeps its committed positions.
  auto consumer = flowctl(dir, {"validate", std::string(FLOW_SOURCE_DIR) + "/pipelines/iot-consumer.yaml"}, "consumer");
  ASSERT_EQ(consumer.wait(60s), 0) << consumer.err();
  EXPECT_THAT(consumer.err(), ::testing::Not(::testing::HasSubstr("warning")));
}

TEST(Flowctl, TheSystemdUnitReloadsWithSighup) {
  std::ifstream unit(std::string(FLOW_SOURCE_DIR) + "/packaging/flow@.service");
  ASSERT_TRUE(unit) << "no packaging/flow@.service";
  const std::string text((std::istreambuf_iterator<char>(unit)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, ::testing::HasSubstr("\nExecReload=/bin/kill -HUP $MAINPID\n"));  // `systemctl reload` = hot reload
}

TEST(Flowctl, ReloadWithoutAPipelineListeningSaysSoAndExits1) {
  TempDir dir;
  auto p = flowctl(dir, {"reload", "--url", "http://127.0.0.1:1"}, "reload");
  auto rc = p.wait(30s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 1);
  EXPECT_THAT(p.err(), ::testing::HasSubstr("flowctl: error: cannot reach http://127.0.0.1:1"));
}

TEST(Flowctl, SighupReReadsTheFileAndTheRunGoesOn) {
  TempDir dir;
  auto p = flowctl(dir, {"run", endless_pipeline(dir)});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "out.txt") && line_count(dir / "out.txt") > 100; }));
  p.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return p.err().find("SIGHUP: reloading") != std::string::npos; })) << p.err();
  ASSERT_TRUE(eventually([&] { return p.err().find("no stage changed; 2 stages kept running") != std::string::npos; }))
      << p.err();
  const auto at_hup = line_count(dir / "out.txt");
  ASSERT_TRUE(eventually([&] { return line_count(dir / "out.txt") > at_hup + 100; })) << "the run stopped after SIGHUP";
  p.signal(SIGTERM);
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 0) << p.err();
  EXPECT_EQ(line_count(dir / "out.txt"), records_out(p.err(), "src")) << p.err();
}

}  // namespace
