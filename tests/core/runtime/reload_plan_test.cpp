// The reload plan: which stages a re-read file restarts, from two parsed specs, without plugins
// or threads (the kinds are given).
#include "runtime/reload_plan.hpp"

#include <gtest/gtest.h>

#include "host/yaml_value.hpp"

namespace {

using flow::StageKind;
using flow::runtime::plan_reload;
using flow::runtime::ReloadPlan;
using Ids = std::vector<std::string>;

flow::spec::PipelineSpec parse(const std::string& yaml) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "p.yaml", errors);
  auto spec = root ? flow::spec::parse_pipeline(*root, "p.yaml", errors) : std::nullopt;
  if (!spec) throw std::runtime_error(flow::spec::format_errors(errors));
  return *spec;
}

const flow::runtime::StageKinds kKinds = {{"sim", StageKind::Source},   {"gen", StageKind::Source},
                                          {"validate", StageKind::Transform}, {"csv", StageKind::Sink},
                                          {"archive", StageKind::Sink},  {"tee", StageKind::Transform}};

const char* kBase = R"(
name: p
stages:
  - {id: sim, plugin: sensor-simulator, config: {rate: 100, seed: 1}}
  - {id: validate, plugin: json-validator, input: sim, config: {schema: {sensor_id: int}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: /tmp/p, window: 1s}}
  - {id: archive, plugin: merge-archive, input: csv, config: {parts_dir: /tmp/p, backup_dir: /tmp/b}}
)";

ReloadPlan plan(const std::string& next) { return plan_reload(parse(kBase), kKinds, parse(next)); }

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  if (at == std::string::npos) throw std::logic_error("no '" + from + "'");
  return s.replace(at, from.size(), to);
}

Ids ids(const std::vector<flow::runtime::StageChange>& v) {
  Ids out;
  for (const auto& c : v) out.push_back(c.id);
  return out;
}

TEST(ReloadPlan, TheSameFileChangesNothing) {
  const auto p = plan(kBase);
  EXPECT_TRUE(p.no_stage_change());
  EXPECT_TRUE(p.changed.empty() && p.added.empty() && p.removed.empty() && p.refused.empty());
}

TEST(ReloadPlan, KeyOrderPositionsAndFlowStyleDoNotCount) {
  const auto p = plan(R"(
name: p
stages:
  - id: sim
    plugin: sensor-simulator
    config:
      seed: 1
      rate: 100
  - {id: validate, plugin: json-validator, input: sim, config: {schema: {sensor_id: int}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {window: 1s, path: /tmp/p}}
  - {id: archive, plugin: merge-archive, input: csv, config: {parts_dir: /tmp/p, backup_dir: /tmp/b}}
)");
  EXPECT_TRUE(p.no_stage_change());
}

TEST(ReloadPlan, AChangedSinkOptionRestartsOnlyThatSink) {
  const auto p = plan(replace(kBase, "window: 1s", "window: 2s"));
  EXPECT_EQ(ids(p.changed), Ids{"csv"});
  EXPECT_EQ(p.changed[0].why, "options: window");
  EXPECT_TRUE(p.restarted.empty());  // the simulator and the validator keep running
  EXPECT_EQ(p.stop, Ids{"csv"});
  EXPECT_EQ(p.start, Ids{"csv"});
}

TEST(ReloadPlan, AQuotedNumberIsAnotherValue) {
  const auto p = plan(replace(kBase, "rate: 100", "rate: '100'"));
  EXPECT_EQ(ids(p.changed), Ids{"sim"});
}

TEST(ReloadPlan, ANestedOptionNamesItsTopLevelKey) {
  const auto p = plan(replace(kBase, "schema: {sensor_id: int}", "schema: {sensor_id: float}"));
  EXPECT_EQ(ids(p.changed), Ids{"validate"});
  EXPECT_EQ(p.changed[0].why, "options: schema");
  EXPECT_EQ(p.stop, Ids{"validate"});
}

TEST(ReloadPlan, AChangedSourceDrainsItsRecordsDownToTheFirstSink) {
  const auto p = plan(replace(kBase, "rate: 100", "rate: 200"));
  EXPECT_EQ(ids(p.changed), Ids{"sim"});
  // validate and csv hold the simulator's records until csv commits them; archive is past the sink.
  EXPECT_EQ(ids(p.restarted), (Ids{"validate", "csv"}));
  EXPECT_EQ(p.stop, (Ids{"sim", "validate", "csv"}));  // upstream first
  EXPECT_EQ(p.start, (Ids{"sim", "validate", "csv"}));
}

TEST(ReloadPlan, ChangedInputsRestartTheReaderAndReWireTheWriters) {
  const std::string two_sources = replace(kBase, "  - {id: validate",
                                          "  - {id: gen, plugin: sensor-simulator, config: {rate: 5}}\n  - {id: validate");
  const auto base = parse(two_sources);
  const auto p = plan_reload(base, kKinds, parse(replace(two_sources, "input: sim,", "input: gen,")));
  EXPECT_EQ(ids(p.changed), Ids{"validate"});
  EXPECT_NE(p.changed[0].why.find("inputs: [sim] -> [gen]"), std::string::npos) << p.changed[0].why;
  // sim loses a consumer, gen gains one: both re-wired; being sources, their records drain to csv.
  EXPECT_EQ(p.stop, (Ids{"sim", "gen", "validate", "csv"}));
  EXPECT_EQ(p.start, (Ids{"sim", "gen", "validate", "csv"}));
}

TEST(ReloadPlan, AddedAndRemovedStages) {
  const auto p = plan(R"(
name: p
stages:
  - {id: sim, plugin: sensor-simulator, config: {rate: 100, seed: 1}}
  - {id: validate, plugin: json-validator, input: sim, config: {schema: {sensor_id: int}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: /tmp/p, window: 1s}}
  - {id: csv2, plugin: csv-window-sink, input: validate, config: {path: /tmp/q}}
)");
  EXPECT_EQ(p.added, Ids{"csv2"});
  EXPECT_EQ(p.removed, Ids{"archive"});
  EXPECT_TRUE(p.changed.empty());
  // validate gains a consumer and csv loses one: both re-wired; the simulator keeps running.
  EXPECT_EQ(ids(p.restarted), (Ids{"validate", "csv"}));
  EXPECT_EQ(p.stop, (Ids{"validate", "csv", "archive"}));
  EXPECT_EQ(p.start, (Ids{"validate", "csv", "csv2"}));
}

TEST(ReloadPlan, ABufferChangeIsAppliedInPlace) {
  const auto p = plan(replace(kBase, "input: validate,", "input: validate, buffer: {batches: 3},"));
  EXPECT_TRUE(p.no_stage_change());
  EXPECT_EQ(p.buffers, Ids{"csv"});
}

TEST(ReloadPlan, RunLevelKeys) {
  const auto cycles = plan(replace(kBase, "name: p", "name: p\nrun: {cycles: 3, duration: 1s}"));
  ASSERT_EQ(cycles.refused.size(), 1u);
  EXPECT_NE(cycles.refused[0].find("run.cycles: 1 -> 3"), std::string::npos) << cycles.refused[0];
  const auto duration = plan(replace(kBase, "name: p", "name: p\nrun: {duration: 10s}"));
  EXPECT_TRUE(duration.refused.empty());
  ASSERT_EQ(duration.notes.size(), 1u);
  EXPECT_NE(duration.notes[0].find("next cycle"), std::string::npos);
  const auto renamed = plan(replace(kBase, "name: p", "name: q"));
  ASSERT_EQ(renamed.refused.size(), 1u);
  EXPECT_NE(renamed.refused[0].find("name: 'p' -> 'q'"), std::string::npos);
}

TEST(ReloadPlan, AStageWithoutConfigIsUnchangedWhenItStaysWithout) {
  const std::string no_config = replace(kBase, ", config: {schema: {sensor_id: int}}", "");
  const auto p = plan_reload(parse(no_config), kKinds, parse(replace(no_config, "window: 1s", "window: 3s")));
  EXPECT_EQ(ids(p.changed), Ids{"csv"});
  const auto given = plan_reload(parse(no_config), kKinds, parse(kBase));
  EXPECT_EQ(ids(given.changed), Ids{"validate"});
  EXPECT_EQ(given.changed[0].why, "options: schema");
}

TEST(ReloadPlan, AKafkaSourceUpstreamOfAChangedSinkKeepsRunning) {
  const char* kafka = R"(
name: k
stages:
  - {id: consume, plugin: kafka-source, config: {brokers: b:9092, topics: [t], group: g}}
  - {id: validate, plugin: json-validator, input: consume, config: {schema: {sensor_id: int}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: /tmp/p, window: 1s}}
)";
  const flow::runtime::StageKinds kinds = {
      {"consume", StageKind::Source}, {"validate", StageKind::Transform}, {"csv", StageKind::Sink}};
  const auto sink = plan_reload(parse(kafka), kinds, parse(replace(kafka, "window: 1s", "window: 5s")));
  EXPECT_EQ(sink.stop, Ids{"csv"});  // the consumer, its group membership and validate are untouched
  const auto source = plan_reload(parse(kafka), kinds, parse(replace(kafka, "group: g", "group: h")));
  EXPECT_EQ(source.stop, (Ids{"consume", "validate", "csv"}));  // its records are committed before it closes
}

TEST(ReloadPlan, ARemovedSourceDrainsItsRecordsIntoTheSinks) {
  const std::string two = replace(replace(kBase, "  - {id: validate", "  - {id: gen, plugin: sensor-simulator}\n  - {id: validate"),
                                  "input: sim,", "input: [sim, gen],");
  const auto p = plan_reload(parse(two), kKinds, parse(kBase));
  EXPECT_EQ(p.removed, Ids{"gen"});
  EXPECT_EQ(ids(p.changed), Ids{"validate"});  // its inputs
  ASSERT_EQ(ids(p.restarted), Ids{"csv"});
  EXPECT_EQ(p.restarted[0].why, "commits the records of source 'gen', which is removed");
  EXPECT_EQ(p.stop, (Ids{"gen", "validate", "csv"}));
  EXPECT_EQ(p.start, (Ids{"validate", "csv"}));  // sim keeps running
}

TEST(ReloadPlan, APluginSwapIsAChange) {
  const auto p = plan(replace(kBase, "plugin: merge-archive", "plugin: stdout-sink"));
  EXPECT_EQ(ids(p.changed), Ids{"archive"});
  EXPECT_EQ(p.changed[0].why, "plugin: merge-archive -> stdout-sink");
}

}  // namespace
