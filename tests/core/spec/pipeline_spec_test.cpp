// Broken pipeline files, each with the exact message and line:column it must produce.
#include "spec/pipeline_spec.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "host/yaml_value.hpp"

namespace {

std::vector<std::string> errors_of(const std::string& yaml, bool with_plugins = true) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "p.yaml", errors);
  std::optional<flow::spec::PipelineSpec> spec;
  if (root) spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  if (spec && with_plugins) {
    flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR});
    flow::spec::check_pipeline(*spec, registry, errors);
  }
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.str());
  return out;
}

struct Case {
  const char* name;
  const char* yaml;
  std::vector<std::string> expected;
};

// Stage boilerplate: a valid source + sink the cases below vary.
const Case kCases[] = {
    {"yaml_syntax", "name: x\nstages: [\n", {"p.yaml:3:1: error: YAML syntax: end of sequence flow not found"}},
    {"alias_refused",
     "name: &a x\nstages: []\n",
     {"p.yaml:1:7: error: YAML anchors (&name) are not supported in pipeline files"}},
    {"self_alias_refused", "a: &a [*a]\n", {"p.yaml:1:4: error: YAML anchors (&name) are not supported in pipeline files"}},
    {"duplicate_key",
     "name: x\nname: y\nstages:\n  - id: s\n    plugin: test.counter-source\n",
     {"p.yaml:2:1: error: duplicate key 'name' (first defined at line 1)"}},
    {"unknown_top_key",
     "name: x\nstagse: []\n",
     {"p.yaml:1:1: error: missing key 'stages'", "p.yaml:2:1: error: unknown key 'stagse' in the pipeline (did you mean 'stages'?)"}},
    {"unknown_stage_key",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    confg: {}\n",
     {"p.yaml:5:5: error: unknown key 'confg' in a stage (did you mean 'config'?)"}},
    {"unknown_plugin",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-sorce\n",
     {"p.yaml:4:13: error: stage 's': unknown plugin 'test.counter-sorce' (did you mean 'test.counter-source'?) (looked for "
      "libflow-test.counter-sorce.so in " FLOW_TEST_PLUGIN_DIR "; add a folder with --plugin-path DIR or FLOW_PLUGIN_PATH)"}},
    {"unknown_option",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    config:\n      cont: 5\n",
     {"p.yaml:6:7: error: stage 's': unknown option 'cont' (did you mean 'count'?)"}},
    {"option_type",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    config:\n      count: lots\n",
     {"p.yaml:6:14: error: stage 's': option 'count': expected an integer, got 'lots'"}},
    {"option_range",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    config: {batch_size: 0}\n",
     {"p.yaml:5:26: error: stage 's': option 'batch_size': value '0' is out of range [1, 1000000]"}},
    {"missing_required",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: k\n    plugin: test.collect-sink\n    input: s\n",
     {"p.yaml:5:5: error: stage 'k': missing required option 'path'"}},
    {"unknown_input",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: k\n    plugin: test.collect-sink\n    input: src\n    config: {path: /tmp/x}\n",
     {"p.yaml:7:12: error: stage 'k': input 'src' names no stage (did you mean 's'?)"}},
    {"unknown_output",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: k\n    plugin: test.collect-sink\n    input: s.invalid\n    config: {path: /tmp/x}\n",
     {"p.yaml:7:12: error: stage 'k': 's' has no output 'invalid' (test.counter-source outputs: only the main one)"}},
    {"source_with_input",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: t\n    plugin: test.counter-source\n    input: s\n",
     {"p.yaml:7:12: error: stage 't': a source (test.counter-source) takes no input"}},
    {"sink_as_input",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x}\n"
     "  - id: p\n    plugin: test.passthrough\n    input: k\n",
     {"p.yaml:11:12: error: stage 'p': input 'k' is a sink (test.collect-sink) that emits nothing"}},
    {"transform_without_input",
     "name: x\nstages:\n  - id: p\n    plugin: test.passthrough\n",
     {"p.yaml:3:5: error: stage 'p': a transform needs an 'input'"}},
    {"cycle",
     "name: x\nstages:\n  - id: a\n    plugin: test.passthrough\n    input: b\n  - id: b\n    plugin: test.passthrough\n    input: a\n",
     {"p.yaml:3:5: error: stage 'a': its inputs form a cycle (a -> b -> a)"}},
    {"duplicate_stage_id",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: s\n    plugin: test.counter-source\n",
     {"p.yaml:5:9: error: duplicate stage id 's'"}},
    {"bad_duration",
     "name: x\nrun: {duration: 5}\nstages:\n  - id: s\n    plugin: test.counter-source\n",
     {"p.yaml:2:17: error: 'run.duration' must be a positive duration such as 30s or 2m, got '5'"}},
    {"bad_scheduling",
     "name: x\nrun: {scheduling: fifo}\nstages:\n  - id: s\n    plugin: test.counter-source\n",
     {"p.yaml:2:19: error: 'run.scheduling' must be 'batch' or 'normal', got 'fifo'"}},
    {"bad_buffer",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: p\n    plugin: test.passthrough\n    input: s\n    buffer: {batches: 0, byts: 1}\n",
     {"p.yaml:8:26: error: unknown key 'byts' in 'buffer' (did you mean 'bytes'?)",
      "p.yaml:8:23: error: 'buffer.batches' must be an integer from 1 to 1000000"}},
    {"stop_after_on_sink",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n  - id: k\n    plugin: test.collect-sink\n    input: s\n"
     "    config: {path: /tmp/x}\n    stop_after: [s]\n",
     {"p.yaml:9:18: error: stage 'k': 'stop_after' applies to sources only"}},
    {"column_missing",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n"
     "  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x, column: m}\n",
     {"p.yaml:7:12: error: stage 'k': input 's' has no column 'm' (int64), which test.collect-sink reads; 's' emits: n int64"}},
    {"column_type",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    config: {row_bytes: 8}\n"
     "  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x, column: pad}\n",
     {"p.yaml:8:12: error: stage 'k': column 'pad' of input 's' is string, but test.collect-sink reads it as int64"}},
    {"stop_after_unknown",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    stop_after: [k2]\n"
     "  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x}\n",
     {"p.yaml:5:18: error: stage 's': stop_after 'k2' names no stage (did you mean 'k'?)"}},
    {"stop_after_waits_forever",
     "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    stop_after: [k]\n"
     "  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x}\n",
     {"p.yaml:5:18: error: stage 's': 'stop_after' waits for a stage that can only finish after 's' stopped"}},
};

class BrokenPipeline : public ::testing::TestWithParam<Case> {};

TEST_P(BrokenPipeline, ReportsExactMessageAndPosition) {
  const Case& c = GetParam();
  EXPECT_THAT(errors_of(c.yaml), ::testing::UnorderedElementsAreArray(c.expected));
}

INSTANTIATE_TEST_SUITE_P(Table, BrokenPipeline, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PipelineSpec, EveryErrorAtOnce) {
  auto errs = errors_of(
      "name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n    config: {cont: 1, batch_size: -1}\n"
      "  - id: k\n    plugin: nope\n    input: s\n");
  EXPECT_EQ(errs.size(), 3u) << ::testing::PrintToString(errs);
}

TEST(PipelineSpec, ValidPipelineHasNoErrors) {
  EXPECT_THAT(errors_of("name: ok\nrun: {duration: 2s, cycles: 2}\nstages:\n  - id: s\n    plugin: test.counter-source\n"
                        "  - id: k\n    plugin: test.collect-sink\n    input: s\n    config: {path: /tmp/x}\n"),
              ::testing::IsEmpty());
}

TEST(PipelineSpec, OverridesSetStageOptionsAndRunSettings) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml("name: x\nstages:\n  - id: s\n    plugin: test.counter-source\n", "p.yaml", errors);
  ASSERT_TRUE(root);
  flow::spec::apply_overrides(*root, {"s.count=7", "run.duration=3s", "nope.count=1", "bad"}, errors);
  auto spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_EQ(errors.size(), 2u);  // unknown stage, malformed
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->stages[0].config.find("count")->text(), "7");
  EXPECT_EQ(spec->run.duration, flow::Duration(3000));
  EXPECT_EQ(spec->run.scheduling, flow::spec::Scheduling::Batch);  // the default
}

TEST(PipelineSpec, SchedulingIsBatchUnlessSetToNormal) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml("name: x\nrun: {scheduling: batch}\nstages:\n  - id: s\n    plugin: test.counter-source\n",
                                       "p.yaml", errors);
  ASSERT_TRUE(root);
  auto spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_TRUE(spec && errors.empty());
  EXPECT_EQ(spec->run.scheduling, flow::spec::Scheduling::Batch);
  flow::spec::apply_overrides(*root, {"run.scheduling=normal"}, errors);
  spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_TRUE(spec && errors.empty());
  EXPECT_EQ(spec->run.scheduling, flow::spec::Scheduling::Normal);
}

// `limits`: the pipeline-wide bound is split over its channels (one per stage with inputs).
TEST(PipelineSpec, LimitsSplitOverTheChannels) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(
      "name: x\nlimits: {batches: 6, bytes: 2MiB}\nstages:\n  - {id: s, plugin: test.counter-source}\n"
      "  - {id: p, plugin: test.passthrough, input: s, buffer: {batches: 2}}\n"
      "  - {id: k, plugin: test.null-sink, input: p}\n",
      "p.yaml", errors);
  ASSERT_TRUE(root);
  auto spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_TRUE(spec) << ::testing::PrintToString(errors.empty() ? "" : errors[0].str());
  EXPECT_EQ(spec->stages[1].buffer.batches, 2u);  // below its share already
  EXPECT_EQ(spec->stages[2].buffer.batches, 3u);  // 6 / 2 channels, down from the default 8
  EXPECT_EQ(spec->stages[1].buffer.bytes, 1u << 20);
  EXPECT_EQ(spec->stages[2].buffer.bytes, 1u << 20);
  std::size_t batches = 0;
  for (const auto& st : spec->stages)
    if (!st.inputs.empty()) batches += st.buffer.batches;
  EXPECT_LE(batches, 6u);
}

TEST(PipelineSpec, RecordLimitsSplitOverTheChannels) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(
      "name: x\nlimits: {records: 1000}\nstages:\n  - {id: s, plugin: test.counter-source}\n"
      "  - {id: p, plugin: test.passthrough, input: s, buffer: {records: 100}}\n"
      "  - {id: k, plugin: test.null-sink, input: p}\n",
      "p.yaml", errors);
  ASSERT_TRUE(root);
  auto spec = flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_TRUE(spec) << ::testing::PrintToString(errors.empty() ? "" : errors[0].str());
  EXPECT_EQ(spec->stages[0].buffer.records, UINT64_MAX);  // a source has no input channel
  EXPECT_EQ(spec->stages[1].buffer.records, 100u);        // below its share already
  EXPECT_EQ(spec->stages[2].buffer.records, 500u);        // 1000 / 2 channels
  EXPECT_THAT(errors_of("name: x\nlimits: {records: 1}\nstages:\n  - {id: s, plugin: test.counter-source}\n"
                        "  - {id: p, plugin: test.passthrough, input: s}\n  - {id: k, plugin: test.null-sink, input: p}\n"),
              ::testing::ElementsAre("p.yaml:2:19: error: 'limits.records' is 1, below the pipeline's 2 channels: each needs "
                                     "room for one record"));
  EXPECT_THAT(errors_of("name: x\nstages:\n  - {id: s, plugin: test.counter-source}\n"
                        "  - {id: k, plugin: test.null-sink, input: s, buffer: {records: 0}}\n"),
              ::testing::ElementsAre("p.yaml:4:65: error: 'buffer.records' must be an integer from 1 to 1000000000000"));
}

TEST(PipelineSpec, LimitsBelowOneBatchPerChannelAreRefused) {
  EXPECT_THAT(errors_of("name: x\nlimits: {batches: 1, bytes: 1KiB}\nstages:\n  - {id: s, plugin: test.counter-source}\n"
                        "  - {id: p, plugin: test.passthrough, input: s}\n  - {id: k, plugin: test.null-sink, input: p}\n"),
              ::testing::ElementsAre("p.yaml:2:19: error: 'limits.batches' is 1, below the pipeline's 2 channels: each needs "
                                     "room for one batch"));
  EXPECT_THAT(errors_of("name: x\nlimits: {batchs: 1}\nstages:\n  - {id: s, plugin: test.counter-source}\n"),
              ::testing::ElementsAre("p.yaml:2:10: error: unknown key 'batchs' in 'limits' (did you mean 'batches'?)"));
}

TEST(YamlValue, BillionLaughsIsRefusedBeforeExpansion) {
  // The classic: each level refers to the previous one nine times.
  std::string y = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    y += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) y += (k ? ", *l" : "*l") + std::to_string(i - 1);
    y += "]\n";
  }
  std::vector<flow::ConfigError> errors;
  EXPECT_FALSE(flow::config::parse_yaml(y, "lol.yaml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("anchors"), std::string::npos);
}

TEST(YamlValue, DeepNestingIsBounded) {
  std::string y(200, '[');
  y += std::string(200, ']');
  std::vector<flow::ConfigError> errors;
  EXPECT_FALSE(flow::config::parse_yaml(y, "deep.yaml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("nesting deeper than 64"), std::string::npos);
}

TEST(YamlValue, QuotedScalarsStayStrings) {
  std::vector<flow::ConfigError> errors;
  auto v = flow::config::parse_yaml("a: \"5\"\nb: 5\nc: ~\nd: 'null'\n", "q.yaml", errors);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->find("a")->quoted());
  EXPECT_FALSE(v->find("b")->quoted());
  EXPECT_TRUE(v->find("c")->is_null());
  EXPECT_EQ(v->find("d")->text(), "null");
  EXPECT_EQ(v->find("b")->location().line, 2);
  EXPECT_EQ(v->find("b")->location().column, 4);
}

}  // namespace

namespace {

std::optional<std::string> fake_env(const std::string& name) {
  if (name == "HOST") return "broker:9092";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

std::string expand(const std::string& text, std::vector<std::string>* errs = nullptr) {
  std::vector<flow::ConfigError> errors;
  auto out = flow::config::expand_variables(text, {"f.yaml", 3, 10}, errors, fake_env);
  if (errs)
    for (const auto& e : errors) errs->push_back(e.str());
  return out;
}

TEST(Variables, SetDefaultRequiredAndEscape) {
  EXPECT_EQ(expand("${HOST}/x"), "broker:9092/x");
  EXPECT_EQ(expand("a${MISSING:-b c}d"), "ab cd");
  EXPECT_EQ(expand("${EMPTY:-dflt}"), "dflt");  // ':-' covers empty too
  EXPECT_EQ(expand("${HOST:?need it}"), "broker:9092");
  EXPECT_EQ(expand("$${HOST} and $HOST"), "${HOST} and $HOST");
}

TEST(Variables, UnsetIsAnErrorAtItsColumn) {
  std::vector<std::string> errs;
  expand("ab${NOPE}", &errs);
  expand("${NOPE:?set it to the broker list}", &errs);
  expand("${1x}", &errs);
  expand("x ${OPEN", &errs);
  EXPECT_THAT(errs, ::testing::ElementsAre(
                        "f.yaml:3:12: error: environment variable 'NOPE' is not set (give a default with ${NOPE:-default})",
                        "f.yaml:3:10: error: environment variable 'NOPE' is not set: set it to the broker list",
                        "f.yaml:3:10: error: '${1x}' is not a variable: expected ${NAME}, ${NAME:-default} or ${NAME:?message}",
                        "f.yaml:3:12: error: unterminated '${' (write '$${' for a literal '${')"));
}

TEST(Variables, ExpandedInValuesNotKeysWithFilePositions) {
  ::setenv("FLOW_TEST_VAR", "7", 1);
  ::unsetenv("FLOW_TEST_UNSET");
  std::vector<flow::ConfigError> errors;
  auto v = flow::config::parse_yaml("${FLOW_TEST_VAR}: ${FLOW_TEST_VAR}\nb: \"x${FLOW_TEST_UNSET}\"\n", "p.yaml", errors);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->find("${FLOW_TEST_VAR}")->text(), "7");
  EXPECT_FALSE(v->find("${FLOW_TEST_VAR}")->quoted());  // a plain 7 stays a number
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].str(), "p.yaml:2:6: error: environment variable 'FLOW_TEST_UNSET' is not set (give a default with ${FLOW_TEST_UNSET:-default})");
}

TEST(Overrides, YamlValuesAndDottedKeysInsideMaps) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(
      "name: x\nstages:\n  - id: s\n    plugin: p\n    config:\n      librdkafka: {session.timeout.ms: 1000}\n"
      "      schema: {t: {max: 1}}\n",
      "p.yaml", errors);
  ASSERT_TRUE(root);
  flow::spec::apply_overrides(*root,
                              {"s.topics=[a, b]", "s.librdkafka.session.timeout.ms=6000", "s.librdkafka.fetch.max.bytes=5",
                               "s.schema.t.max=90", "s.fresh.a.b=1", "s.name=\"5\"", "s.empty="},
                              errors);
  ASSERT_TRUE(errors.empty()) << errors[0].str();
  const flow::Value& c = *root->find("stages")->items()[0].find("config");
  ASSERT_TRUE(c.find("topics")->is_list());
  EXPECT_EQ(c.find("topics")->items().size(), 2u);
  EXPECT_EQ(c.find("librdkafka")->find("session.timeout.ms")->text(), "6000");
  EXPECT_EQ(c.find("librdkafka")->find("fetch.max.bytes")->text(), "5");
  EXPECT_EQ(c.find("schema")->find("t")->find("max")->text(), "90");
  EXPECT_EQ(c.find("fresh")->find("a.b")->text(), "1");  // no existing key: first segment, then the rest
  EXPECT_TRUE(c.find("name")->quoted());
  EXPECT_EQ(c.find("empty")->text(), "");
}

TEST(Overrides, ZeroDurationReportsTheDurationOnly) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml("name: x\nrun: {cycles: 2, duration: 5s}\nstages:\n  - id: s\n    plugin: p\n", "p.yaml", errors);
  ASSERT_TRUE(root);
  flow::spec::apply_overrides(*root, {"run.duration=0"}, errors);
  flow::spec::parse_pipeline(*root, "p.yaml", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].str(), "--set run.duration=0: error: 'run.duration' must be a positive duration such as 30s or 2m, got '0'");
}

}  // namespace
