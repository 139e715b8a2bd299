#include "runtime/graph.hpp"

#include <algorithm>
#include <stdexcept>

namespace flow::runtime {

std::size_t Graph::index(const std::string& id) const {
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].id() == id) return i;
  throw std::logic_error("unknown stage '" + id + "'");
}

Graph plan_graph(const spec::PipelineSpec& spec, const std::map<std::string, loader::PluginPtr>& plugins) {
  Graph g;
  for (const auto& s : spec.stages) {
    GraphNode n;
    n.spec = &s;
    auto it = plugins.find(s.id);
    if (it == plugins.end()) throw std::logic_error("no plugin loaded for stage '" + s.id + "'");
    n.plugin = it->second;
    if (n.plugin->info().main_output) n.outputs.emplace_back();
    for (const auto& o : n.plugin->info().extra_outputs) n.outputs.push_back(o);
    g.nodes.push_back(std::move(n));
  }
  for (std::size_t to = 0; to < g.nodes.size(); ++to) {
    auto& node = g.nodes[to];
    for (const auto& in : node.spec->inputs) {
      const std::size_t from = g.index(in.stage);
      const auto& outs = g.nodes[from].outputs;
      if (std::find(outs.begin(), outs.end(), in.output) == outs.end())
        throw std::logic_error("stage '" + in.stage + "' has no output '" + in.output + "'");
      g.edges.push_back({from, in.output, to, in.str() + "->" + node.id()});
      node.input_writers += 1;
    }
    for (const auto& ref : node.spec->stop_after) node.stop_after.push_back(g.index(ref.stage));
  }
  return g;
}

}  // namespace flow::runtime
