// The pipeline file: its shape (parse_pipeline) and its meaning against the plugins
// (check_pipeline). Both collect every error with its file:line:column.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flow/options.hpp"
#include "flow/value.hpp"
#include "host/plugin_loader.hpp"

namespace flow::spec {

// A reference to a stage output: "validate" (main output) or "validate.invalid".
struct OutputRef {
  std::string stage;
  std::string output;  // "" = main
  Location where;
  std::string str() const { return output.empty() ? stage : stage + "." + output; }
};

struct BufferLimits {
  std::size_t batches = 8;
  uint64_t bytes = 64ull << 20;
  uint64_t records = UINT64_MAX;  // UINT64_MAX: not limited in records
};

struct StageSpec {
  std::string id;
  Location where;  // of the stage's map
  std::string plugin;
  Location plugin_where;
  Value config;  // null when absent
  std::vector<OutputRef> inputs;
  BufferLimits buffer;  // of this stage's input channel
  // Sources only: on a stop (duration, signal), ask this source to stop only once these stages
  // have finished, e.g. a Kafka consumer after the producer stage of the same file has flushed.
  std::vector<OutputRef> stop_after;
  // False when the id is missing, malformed or a repeat: the stage's plugin, options and inputs
  // are still checked (one pass finds every error), but nothing is wired to it.
  bool usable_id = true;
};

// How the run's threads are scheduled (`run.scheduling`). Batch: Linux's SCHED_BATCH, under which
// a thread that wakes does not preempt a running one, so the busiest stage of a saturated pipeline
// is not switched out each time a neighbour gets a batch or room for one. Normal: SCHED_OTHER.
enum class Scheduling { Batch, Normal };

struct RunSettings {
  std::optional<Duration> duration;  // none: until the sources end or a signal
  int cycles = 1;                    // 0 = forever
  Scheduling scheduling = Scheduling::Batch;
};

struct PipelineSpec {
  std::string name;
  std::string file;
  std::vector<StageSpec> stages;
  RunSettings run;
  std::string dashboard_stage;  // `dashboard: {stage: ...}`: "validate" or "validate.invalid"; may be empty
  // `limits`: the most batches, bytes and records queued in all channels together (as written; each
  // stage's `buffer` already holds its share).
  std::optional<BufferLimits> limits;

  const StageSpec* stage(const std::string& id) const {
    for (const auto& s : stages)
      if (s.id == id) return &s;
    return nullptr;
  }
};

// Applies `--set key=value` overrides to the parsed file: "stage.option=value" sets a config
// option of a stage; "run.duration=30s" / "run.cycles=3" set run settings.
void apply_overrides(Value& root, const std::vector<std::string>& sets, std::vector<ConfigError>& errors);

// nullopt on any error; `partial`, when given, receives what could be read even then, so that
// check_pipeline can still report the plugin, option and wiring errors in the same pass.
std::optional<PipelineSpec> parse_pipeline(const Value& root, const std::string& file,
                                           std::vector<ConfigError>& errors, PipelineSpec* partial = nullptr);

// Loads each stage's plugin and checks configs, inputs, outputs and the graph's shape. Accepts a
// partial spec (see parse_pipeline) and reports no error that only follows from another.
// Returns the plugins by stage id (only when no error was found).
std::map<std::string, loader::PluginPtr> check_pipeline(const PipelineSpec& spec, loader::Registry& registry,
                                                        std::vector<ConfigError>& errors);

// Sorted by file position, then printed like a compiler's diagnostics.
std::string format_errors(std::vector<ConfigError> errors);

}  // namespace flow::spec
