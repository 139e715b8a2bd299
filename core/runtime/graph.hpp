// The pipeline's wiring, planned from a checked spec before any stage exists or any thread
// starts: which outputs each stage has, which edges feed which input channel, and which stages a
// source's stop waits for. Pure data, so it is tested without threads.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "host/plugin_loader.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::runtime {

struct GraphNode {
  const spec::StageSpec* spec = nullptr;
  loader::PluginPtr plugin;
  std::vector<std::string> outputs;     // declared outputs: "" (main, when it has one), then extras
  int input_writers = 0;                // edges into this stage's input channel; 0 for sources
  std::vector<std::size_t> stop_after;  // nodes whose end releases this source's stop
  const std::string& id() const { return spec->id; }
  bool is_source() const { return plugin->info().kind == StageKind::Source; }
};

struct GraphEdge {
  std::size_t from = 0;
  std::string output;  // of `from`; "" = main
  std::size_t to = 0;
  std::string name;    // "validate.invalid->dead", as the summary and metrics show it
};

struct Graph {
  std::vector<GraphNode> nodes;  // in the file's order
  std::vector<GraphEdge> edges;
  std::size_t index(const std::string& id) const;  // throws std::logic_error when unknown
};

// The spec must have passed check_pipeline; throws std::logic_error when it references an
// unknown stage or an output its plugin does not declare.
Graph plan_graph(const spec::PipelineSpec& spec, const std::map<std::string, loader::PluginPtr>& plugins);

}  // namespace flow::runtime
