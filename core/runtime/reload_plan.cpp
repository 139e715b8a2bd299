#include "runtime/reload_plan.hpp"

#include <algorithm>
#include <set>

namespace flow::runtime {
namespace {

using Ids = std::set<std::string>;

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::vector<std::string> inputs_of(const spec::StageSpec& s) {
  std::vector<std::string> v;
  for (const auto& in : s.inputs) v.push_back(in.str());
  return v;
}

// "output->consumer" for every edge leaving `id`.
std::set<std::string> consumers_of(const spec::PipelineSpec& spec, const std::string& id) {
  std::set<std::string> out;
  for (const auto& s : spec.stages)
    for (const auto& in : s.inputs)
      if (in.stage == id) out.insert(in.output + "->" + s.id);
  return out;
}

// The option keys whose values differ (top level of `config`).
std::vector<std::string> changed_keys(const Value& a, const Value& b) {
  if (same_value(a, b)) return {};
  static const Value none = Value::map();  // no `config` at all: no option given
  if (a.is_null() && b.is_map()) return changed_keys(none, b);
  if (a.is_map() && b.is_null()) return changed_keys(a, none);
  if (!a.is_map() || !b.is_map()) return {"config"};
  std::vector<std::string> keys;
  for (const auto& e : a.entries()) {
    const Value* other = b.find(e.key);
    if (!other || !same_value(e.value, *other)) keys.push_back(e.key);
  }
  for (const auto& e : b.entries())
    if (!a.find(e.key)) keys.push_back(e.key);
  return keys;
}

// Old stage ids, upstream first (Kahn's order, ties in file order).
std::vector<std::string> upstream_first(const spec::PipelineSpec& spec) {
  std::vector<std::string> order;
  Ids placed;
  while (order.size() < spec.stages.size()) {
    bool progressed = false;
    for (const auto& s : spec.stages) {
      if (placed.count(s.id)) continue;
      const bool ready = std::all_of(s.inputs.begin(), s.inputs.end(), [&](const spec::OutputRef& in) {
        return placed.count(in.stage) || !spec.stage(in.stage);
      });
      if (!ready) continue;
      placed.insert(s.id);
      order.push_back(s.id);
      progressed = true;
    }
    if (!progressed) break;  // a cycle: refused by check_pipeline, never here
  }
  return order;
}

}  // namespace

bool same_value(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Null: return true;
    case Value::Kind::Scalar: return a.text() == b.text() && a.quoted() == b.quoted();
    case Value::Kind::List:
      if (a.items().size() != b.items().size()) return false;
      for (std::size_t i = 0; i < a.items().size(); ++i)
        if (!same_value(a.items()[i], b.items()[i])) return false;
      return true;
    case Value::Kind::Map:
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& e : a.entries()) {
        const Value* other = b.find(e.key);
        if (!other || !same_value(e.value, *other)) return false;
      }
      return true;
  }
  return false;
}

ReloadPlan plan_reload(const spec::PipelineSpec& old_spec, const StageKinds& old_kinds, const spec::PipelineSpec& new_spec) {
  ReloadPlan plan;
  Ids restart;  // ids in both files that restart

  if (old_spec.name != new_spec.name)
    plan.refused.push_back("name: '" + old_spec.name + "' -> '" + new_spec.name +
                           "': a running pipeline keeps its name (it labels metrics and parts); restart the run");
  if (old_spec.run.cycles != new_spec.run.cycles)
    plan.refused.push_back("run.cycles: " + std::to_string(old_spec.run.cycles) + " -> " +
                           std::to_string(new_spec.run.cycles) + ": the number of cycles is fixed at start; restart the run");
  if (old_spec.run.duration != new_spec.run.duration)
    plan.notes.push_back("run.duration: applies from the next cycle (the current one keeps its deadline)");
  if (old_spec.dashboard_stage != new_spec.dashboard_stage)
    plan.notes.push_back("dashboard: applies at the next start of the run");

  for (const auto& n : new_spec.stages) {
    const spec::StageSpec* o = old_spec.stage(n.id);
    if (!o) {
      plan.added.push_back(n.id);
      continue;
    }
    std::vector<std::string> why;
    if (o->plugin != n.plugin) why.push_back("plugin: " + o->plugin + " -> " + n.plugin);
    else if (const auto keys = changed_keys(o->config, n.config); !keys.empty()) why.push_back("options: " + join(keys));
    if (inputs_of(*o) != inputs_of(n))
      why.push_back("inputs: [" + join(inputs_of(*o)) + "] -> [" + join(inputs_of(n)) + "]");
    if (!why.empty()) {
      plan.changed.push_back({n.id, join(why, "; ")});
      restart.insert(n.id);
    }
    if (o->buffer.batches != n.buffer.batches || o->buffer.bytes != n.buffer.bytes) plan.buffers.push_back(n.id);
  }
  for (const auto& o : old_spec.stages)
    if (!new_spec.stage(o.id)) plan.removed.push_back(o.id);

  // Re-wiring: a stage's outputs are connected when it starts.
  for (const auto& n : new_spec.stages) {
    if (restart.count(n.id) || !old_spec.stage(n.id)) continue;
    if (consumers_of(old_spec, n.id) != consumers_of(new_spec, n.id)) {
      plan.restarted.push_back({n.id, "its outputs are re-wired"});
      restart.insert(n.id);
    }
  }

  // A stopping source's records are committed before its old instance closes: the stages they
  // pass through, down to the first sink of each path, drain with it.
  auto kind = [&](const std::string& id) {
    auto it = old_kinds.find(id);
    return it == old_kinds.end() ? StageKind::Transform : it->second;
  };
  std::vector<std::string> stopping_sources;
  for (const auto& o : old_spec.stages)
    if (kind(o.id) == StageKind::Source && (restart.count(o.id) || !new_spec.stage(o.id)))
      stopping_sources.push_back(o.id);
  for (const auto& src : stopping_sources) {
    std::vector<std::string> todo{src};
    Ids seen{src};
    while (!todo.empty()) {
      const std::string id = todo.back();
      todo.pop_back();
      for (const auto& s : old_spec.stages) {
        const bool reads = std::any_of(s.inputs.begin(), s.inputs.end(), [&](const auto& in) { return in.stage == id; });
        if (!reads || !seen.insert(s.id).second) continue;
        if (new_spec.stage(s.id) && !restart.count(s.id)) {
          plan.restarted.push_back({s.id, "commits the records of source '" + src + "', which " +
                                              (new_spec.stage(src) ? "restarts" : "is removed")});
          restart.insert(s.id);
        }
        if (kind(s.id) != StageKind::Sink) todo.push_back(s.id);
      }
    }
  }

  const Ids removed(plan.removed.begin(), plan.removed.end());
  for (const auto& id : upstream_first(old_spec))
    if (restart.count(id) || removed.count(id)) plan.stop.push_back(id);
  for (const auto& n : new_spec.stages)
    if (restart.count(n.id) || !old_spec.stage(n.id)) plan.start.push_back(n.id);
  return plan;
}

}  // namespace flow::runtime
