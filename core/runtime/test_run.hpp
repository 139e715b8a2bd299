// Runs a checked pipeline for `flowctl test`: deterministically, on one thread, with a manual
// clock. Some stages are replaced by given batches (sources included, so no Kafka is needed);
// the rest are the real plugins, wired by the graph plan and run through the same StageDriver
// as `flowctl run` (its deliver/timer steps, as the stage harness does). Chosen stage outputs
// are captured losslessly: a capture is one more consumer channel on that output (fan-out).
//
// Timeline: the clock starts at 0; for each distinct time of the given batches, in order, the
// clock moves there, due timers fire (in graph order), then the batches of that time are
// emitted, and every stage processes what reached it until nothing moves. After `end_at`,
// inputs end: stages finish in graph order (sinks flush and commit), as when sources end.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flow/batch.hpp"
#include "host/plugin_loader.hpp"
#include "runtime/clock.hpp"
#include "runtime/runtime.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::runtime {

struct TestInput {
  std::string stage;   // the replaced stage
  std::string output;  // "" = main
  Clock::duration at{0};
  Batch batch;  // positions are given by the runner (one group per batch)
};

struct TestRunConfig {
  std::vector<TestInput> inputs;
  std::set<std::string> replaced;  // stage ids; every stage with inputs is in it too
  // Stages not run at all (a producer half with its own Kafka sink); whatever reads them must be
  // replaced or skipped too (the caller checks).
  std::set<std::string> skipped;
  // What to capture: "stage" / "stage.output" (an output), or "->stage" (everything reaching
  // that stage's input, in arrival order).
  std::set<std::string> captures;
  Clock::duration end_at{0};  // inputs end at max(end_at, last input's time)
  std::chrono::system_clock::time_point wall_start =
      std::chrono::sys_days{std::chrono::year{2025} / 6 / 15} + std::chrono::hours(9);
  std::string run_id = "test";
  // Stage log lines.
  std::function<void(LogLevel, std::string_view scope, std::string_view message)> log;
  // How long a source that is not replaced may take to end by itself (it runs first, to its
  // end); a source that never ends (kafka-source) must be replaced.
  std::chrono::seconds source_timeout{60};
  // The most batches such a source may queue in any channel before the other stages run.
  std::size_t source_max_batches = 10000;
};

struct TestRunResult {
  bool ok = true;
  std::string failed_stage, error;
  std::map<std::string, std::vector<Batch>> captured;  // by capture name; positions acknowledged
  std::vector<StageReport> stages;                     // counters of the stages that ran
  std::vector<std::string> pruned;  // stages not run: everything they fed was replaced
};

TestRunResult run_pipeline_test(const spec::PipelineSpec& spec, const std::map<std::string, loader::PluginPtr>& plugins,
                                TestRunConfig config);

}  // namespace flow::runtime
