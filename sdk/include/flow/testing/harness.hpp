// StageHarness: one stage, no pipeline. Push batches in, read what it emitted, move a fake clock,
// count acknowledgements (after GStreamer's GstHarness). In flow::testing, which
// flow_add_plugin() links into a plugin's tests.
//
// The stage runs through the runtime's own StageDriver, its Context and Emitter, and real
// bounded channels behind each output, so it behaves as under `flowctl run` (see the Emitter
// contract in flow/stage.hpp). The harness plays the downstream stage: it holds emitted batches
// until the test reads them; set_capacity() bounds how many it holds (emit() then blocks, as
// under backpressure) until drain() or request_stop(), after which it accepts everything, as a
// draining pipeline does. The stage's id is kStageId.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow/flow.hpp"

namespace flow::testing {

// The stage id, pipeline name and run id the harness's Context reports (error messages that
// name the stage say 'stage-under-test').
inline constexpr const char* kStageId = "stage-under-test";
inline constexpr const char* kPipelineName = "harness";
inline constexpr const char* kRunId = "harness-run";

// Parses YAML text (as a pipeline file's `config:` would be) into a Value; throws on bad YAML.
Value yaml(const std::string& text);

// Raw-message batch (flow::raw_message_schema) with the given values; key = "k<i>".
Batch raw_batch(const std::vector<std::string>& values, Positions positions = {});

// Positions that record their acknowledgement, for checking what a stage acknowledged.
class AckLog {
 public:
  // One group covering offsets [begin, end) of `partition`.
  Positions track(int64_t begin, int64_t end, int32_t partition = 0, const std::string& source = "test");
  std::vector<PositionRange> acked() const;
  // Number of groups tracked and acknowledged (each group is acknowledged at most once).
  std::size_t tracked() const;
  std::size_t acked_groups() const;
  bool all_acked() const { return tracked() == acked_groups(); }

 private:
  struct State {
    std::mutex mu;
    std::vector<PositionRange> acked;
    std::size_t groups_acked = 0;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::size_t tracked_ = 0;
};

class StageHarness {
 public:

  // A plugin compiled into the test (its descriptor: flow_plugin_entry::descriptor()).
  StageHarness(const PluginDescriptor& descriptor, const std::string& yaml_config);
  StageHarness(const PluginDescriptor& descriptor, Value config);
  ~StageHarness();

  const PluginDescriptor& descriptor() const;
  // Problems the descriptor finds in the config (what `flowctl validate` would print).
  std::vector<ConfigError> check() const;

  // Creates the stage (throws std::runtime_error with the plugin's message) and opens it.
  void open();
  // Processors.
  void push(Batch batch);
  void tick();                 // on_timer() now
  void advance(Duration d);    // moves the fake clock; calls on_timer() each time an interval passes
  void finish();               // finish()
  // Sources: run() on a thread until it returns, or until `max_batches` batches were emitted
  // (then stop is requested and run() must return). Throws if run() is still running after
  // `timeout` past the stop request; rethrows what run() threw.
  // Throws std::runtime_error with the message of what run() threw.
  void run_source(std::size_t max_batches = SIZE_MAX, Duration timeout = std::chrono::seconds(30));
  void close();

  // Emitted batches by output ("" = main).
  std::vector<Batch>& output(const std::string& name = "");
  std::size_t output_rows(const std::string& name = "");
  // When set, emit() blocks while an output holds this many batches (until drain() or stop).
  void set_capacity(std::size_t batches);
  std::vector<Batch> drain(const std::string& name = "");

  uint64_t counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels = {}) const;
  std::vector<std::string> logs() const;

  std::chrono::system_clock::time_point now() const;
  void set_now(std::chrono::system_clock::time_point t);
  void request_stop();
  void set_cycle(int cycle);
  void set_outputs_connected(bool connected);  // connected() answers (default true)

  Stage& stage();
  Context& context();
  Emitter& emitter();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::testing
