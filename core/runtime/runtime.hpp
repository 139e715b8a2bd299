// The supervisor: runs a checked pipeline, cycle after cycle. Per cycle it plans the graph
// (graph.hpp), makes a driver per stage (driver.hpp) and a bounded channel in front of every
// stage with inputs, starts a thread per stage, and applies the stop policy: duration reached,
// request_stop() (SIGINT/SIGTERM), abort() (a second signal), a failed stage. It sleeps until
// one of those events; it never polls. Time comes from an injectable Clock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/plugin_loader.hpp"
#include "runtime/channel.hpp"
#include "runtime/clock.hpp"
#include "runtime/tap.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::runtime {

struct StageReport {
  std::string id;
  std::string plugin;
  StageKind kind = StageKind::Transform;
  uint64_t batches_in = 0, records_in = 0, batches_out = 0, records_out = 0;
  std::vector<std::pair<std::string, uint64_t>> counters;  // the plugin's own, "name{label=value}"
  std::vector<std::pair<std::string, int64_t>> gauges;     // the plugin's own, those set
};

struct RunReport {
  bool ok = true;
  std::string failed_stage;  // empty when the failure is not a stage's
  std::string error;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM
  bool aborted = false;      // a second signal skipped the drain
  int cycles_completed = 0;
  double seconds = 0;
  std::vector<StageReport> stages;
  std::vector<std::pair<std::string, ChannelStats>> channels;  // "producer->consumer"
  std::vector<std::string> notes;  // what the run guaranteed (flow::DeliveryRegistry::note)
};

// A live view of a running pipeline, safe to take from another thread (the metrics server).
struct Snapshot {
  std::string pipeline;
  int cycle = 0;
  double uptime_seconds = 0;
  std::vector<StageReport> stages;
  std::vector<std::pair<std::string, ChannelStats>> channels;  // input channels: "->stage"
  int cycles = 1;                          // run.cycles; 0: until stopped
  std::optional<double> duration_seconds;  // run.duration, counted per cycle
  double cycle_seconds = 0;                // into this cycle's duration; 0 until its stages run
};

// What a hot reload did (Runtime::reload).
struct ReloadResult {
  bool ok = false;      // applied, or nothing to apply; false: refused, and the pipeline goes on as it was
  std::string message;  // one line: the summary, or why not
};

struct RunOptions {
  std::string run_id;             // generated when empty
  Clock* clock = &system_clock();  // a ManualClock in tests
  TapHub* taps = nullptr;          // flowctl's taps (tap.hpp); outlives the Runtime
};

class Runtime {
 public:
  Runtime(spec::PipelineSpec spec, std::map<std::string, loader::PluginPtr> plugins, RunOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  RunReport run();
  Snapshot snapshot() const;
  // From any thread (flowctl's signal thread): stop the sources and drain (first signal), or
  // abort without draining (second signal).
  void request_stop();
  void abort();
  // From any thread: run the pipeline with this configuration from now on (a re-read file,
  // checked, with its plugins). Blocks until the supervisor applied it (reload_plan.hpp: the
  // changed stages are drained, committed and restarted, the rest keeps running), refused it,
  // or the run ended. Between cycles, or while a cycle drains, it applies to the next cycle.
  ReloadResult reload(spec::PipelineSpec spec, std::map<std::string, loader::PluginPtr> plugins);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string make_run_id();

}  // namespace flow::runtime
