// The graph plan: built from a checked spec with the test plugins, without starting a thread.
#include "runtime/graph.hpp"

#include <gtest/gtest.h>

#include "host/yaml_value.hpp"

namespace {

struct Planned {
  flow::spec::PipelineSpec spec;
  std::map<std::string, flow::loader::PluginPtr> plugins;
};

// The spec is kept alive with the graph, which points into it.
std::unique_ptr<Planned> checked(const std::string& yaml) {
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(yaml, "g.yaml", errors);
  auto spec = flow::spec::parse_pipeline(*root, "g.yaml", errors);
  if (!spec) throw std::runtime_error(flow::spec::format_errors(errors));
  flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR});
  auto p = std::make_unique<Planned>();
  p->spec = std::move(*spec);
  p->plugins = flow::spec::check_pipeline(p->spec, registry, errors);
  if (!errors.empty()) throw std::runtime_error(flow::spec::format_errors(errors));
  return p;
}

TEST(Graph, FanOutAndFanInBecomeEdgesAndWriterCounts) {
  auto p = checked(R"(
name: g
stages:
  - {id: a, plugin: test.counter-source}
  - {id: b, plugin: test.counter-source}
  - id: mid
    plugin: test.passthrough
    input: [a, b]
  - {id: out1, plugin: test.collect-sink, input: mid, config: {path: /tmp/x}}
  - {id: out2, plugin: test.collect-sink, input: mid, config: {path: /tmp/y}}
)");
  const auto g = flow::runtime::plan_graph(p->spec, p->plugins);
  ASSERT_EQ(g.nodes.size(), 5u);
  EXPECT_TRUE(g.nodes[0].is_source());
  EXPECT_EQ(g.nodes[0].input_writers, 0);
  EXPECT_EQ(g.nodes[g.index("mid")].input_writers, 2);  // fan-in: one channel, two writers
  EXPECT_EQ(g.nodes[g.index("out1")].input_writers, 1);
  EXPECT_EQ(g.nodes[g.index("out1")].outputs, std::vector<std::string>{});  // a pure sink emits nothing
  EXPECT_EQ(g.nodes[g.index("mid")].outputs, std::vector<std::string>{""});
  std::vector<std::string> names;
  for (const auto& e : g.edges) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a->mid", "b->mid", "mid->out1", "mid->out2"}));
  EXPECT_THROW(g.index("nope"), std::logic_error);
}

TEST(Graph, StopAfterPointsAtTheStagesItWaitsFor) {
  auto p = checked(R"(
name: g
stages:
  - {id: producer, plugin: test.counter-source}
  - {id: sink1, plugin: test.collect-sink, input: producer, config: {path: /tmp/x}}
  - {id: consumer, plugin: test.counter-source, stop_after: [sink1]}
  - {id: sink2, plugin: test.collect-sink, input: consumer, config: {path: /tmp/y}}
)");
  const auto g = flow::runtime::plan_graph(p->spec, p->plugins);
  EXPECT_EQ(g.nodes[g.index("consumer")].stop_after, std::vector<std::size_t>{g.index("sink1")});
  EXPECT_TRUE(g.nodes[g.index("producer")].stop_after.empty());
}

}  // namespace
