#include "spec/delivery_check.hpp"

#include <set>

namespace flow::spec {

std::map<std::string, std::vector<SinkReached>> sinks_reached(const PipelineSpec& spec,
                                                             const std::map<std::string, loader::PluginPtr>& plugins) {
  std::map<std::string, std::vector<const StageSpec*>> consumers;
  for (const auto& s : spec.stages)
    for (const auto& in : s.inputs) consumers[in.stage].push_back(&s);
  auto info = [&](const std::string& id) -> const PluginInfo* {
    auto it = plugins.find(id);
    return it == plugins.end() || !it->second ? nullptr : &it->second->descriptor().info;
  };
  std::map<std::string, std::vector<SinkReached>> out;
  for (const auto& s : spec.stages) {
    const PluginInfo* si = info(s.id);
    if (!si || si->kind != StageKind::Source) continue;
    auto& sinks = out[s.id];
    std::set<std::string> seen;
    std::vector<std::string> todo{s.id};
    while (!todo.empty()) {
      const std::string id = todo.back();
      todo.pop_back();
      for (const auto* c : consumers[id]) {
        if (!seen.insert(c->id).second) continue;
        const PluginInfo* ci = info(c->id);
        if (!ci) continue;
        if (ci->kind == StageKind::Sink) sinks.push_back({c->id, c->plugin, ci->durable_positions});
        else todo.push_back(c->id);
      }
    }
  }
  return out;
}

std::vector<ConfigError> delivery_warnings(const PipelineSpec& spec, const std::map<std::string, loader::PluginPtr>& plugins) {
  std::vector<ConfigError> out;
  const auto reached = sinks_reached(spec, plugins);
  for (const auto& s : spec.stages) {
    auto sinks = reached.find(s.id);
    if (sinks == reached.end()) continue;  // not a source
    const auto& d = plugins.at(s.id)->descriptor();
    const OptionSpec* option = nullptr;
    for (const auto& o : d.options)
      if (o.name == "delivery") option = &o;
    if (!option) continue;  // the source offers no choice of delivery
    const Value* set = s.config.is_map() ? s.config.find("delivery") : nullptr;
    const std::string asked = set ? set->text() : option->default_text;
    if (asked != "exactly-once") continue;
    const Location where = set ? set->location() : s.plugin_where;
    const std::string head = "stage '" + s.id + "': delivery: exactly-once" + (set ? "" : " (the default)") + " cannot hold: ";
    const std::string tail = "; after a crash, records since the last commit are written again (set delivery: at-least-once to accept that)";
    if (sinks->second.empty()) {
      out.push_back({where, head + "its records reach no sink" + tail});
      continue;
    }
    for (const auto& sink : sinks->second)
      if (!sink.durable_positions) {
        out.push_back({where, head + "sink '" + sink.id + "' (plugin " + sink.plugin +
                                  ") keeps no durable record of the input positions it committed" + tail});
        break;
      }
  }
  return out;
}

}  // namespace flow::spec
