// Delivery known before anything runs: which sinks each source's records reach, and why a source
// that asks for exactly-once delivery cannot have it (a sink on its way that keeps no durable
// record of the input positions it committed). `flowctl validate` prints these as warnings; the
// source checks the same at run time against what the sinks publish (flow/delivery.hpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "host/plugin_loader.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::spec {

struct SinkReached {
  std::string id, plugin;
  bool durable_positions = false;
};

// The first Sink stage on every path from each source, by source stage id.
std::map<std::string, std::vector<SinkReached>> sinks_reached(const PipelineSpec& spec,
                                                             const std::map<std::string, loader::PluginPtr>& plugins);

// For each source whose `delivery` option (set, or its plugin's default) is "exactly-once": one
// warning, at that option, naming the first sink that cannot honour it, or saying no sink is
// reached. Empty when every such source can have it.
std::vector<ConfigError> delivery_warnings(const PipelineSpec& spec, const std::map<std::string, loader::PluginPtr>& plugins);

}  // namespace flow::spec
