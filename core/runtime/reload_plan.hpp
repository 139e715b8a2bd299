// Hot reload's plan: the diff of the running pipeline and the re-read file, as the stages to
// drain and stop and the stages to start. Pure data, tested without threads; the supervisor
// carries it out (supervisor.cpp, Runtime::reload).
//
// A stage restarts when its plugin, options or inputs changed. Unchanged stages keep running,
// except:
// - a stage whose consumers changed (an edge from it added or removed): its outputs are wired
//   when it starts, so it restarts to be re-wired;
// - the stages downstream of a source that stops (changed, re-wired or removed), down to the
//   first sink on each path: they are drained and committed with it, so that the source's old
//   instance is closed (a Kafka source commits its offsets) only once everything it emitted is
//   durable, and its new instance resumes exactly there (no record written twice).
// A `buffer` change is applied to the stage's input channel in place (no restart).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "flow/plugin.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::runtime {

struct StageChange {
  std::string id;
  std::string why;  // "options: window", "plugin: a -> b", "inputs: sim -> gen", ...
};

struct ReloadPlan {
  std::vector<StageChange> changed;    // in both files; restarted with the new configuration
  std::vector<std::string> added;      // started
  std::vector<std::string> removed;    // drained and stopped
  std::vector<StageChange> restarted;  // unchanged, restarted anyway (re-wiring, a stopping source's records)
  std::vector<std::string> stop;       // old stages to drain and stop, upstream first
  std::vector<std::string> start;      // new stages to create, in the new file's order
  std::vector<std::string> buffers;    // stages whose input channel limits change in place
  std::vector<std::string> refused;    // changes a running pipeline cannot take: the reload is refused
  std::vector<std::string> notes;      // changes that apply later (run.duration: the next cycle)

  bool no_stage_change() const { return stop.empty() && start.empty(); }
};

// The plugin kind of each stage of the running pipeline.
using StageKinds = std::map<std::string, StageKind>;

// Both specs must have passed check_pipeline.
ReloadPlan plan_reload(const spec::PipelineSpec& old_spec, const StageKinds& old_kinds, const spec::PipelineSpec& new_spec);

// Structural equality of two configuration values, ignoring positions and map key order.
bool same_value(const Value& a, const Value& b);

}  // namespace flow::runtime
