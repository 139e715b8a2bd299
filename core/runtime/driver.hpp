// The stage driver: what runs one stage, the same under `flowctl run` (the supervisor starts a
// thread per driver) and in flow::testing::StageHarness (which calls the steps itself). It owns
// the stage's Context and Emitter and the per-stage loop: a source's run(), a processor's
// pop -> process -> on_timer -> finish.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "flow/plugin.hpp"
#include "runtime/channel.hpp"
#include "runtime/clock.hpp"
#include "runtime/tap.hpp"

namespace flow::runtime {

// Counters of one stage, kept for the whole run (all cycles).
struct StageCounters {
  std::atomic<uint64_t> batches_in{0}, records_in{0}, batches_out{0}, records_out{0};
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Counter>> named;  // stable addresses
  std::map<std::string, std::unique_ptr<Gauge>> gauges;   // stable addresses

  Counter& get(const std::string& key);
  std::vector<std::pair<std::string, uint64_t>> named_values();
  Gauge& gauge(const std::string& key);
  std::vector<std::pair<std::string, int64_t>> gauge_values();  // the set ones
};

// "name" or "name{label=\"value\",...}", as the summary and the metrics print a counter.
std::string counter_key(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels);

// Objects shared by every stage of the process (an embedded broker), by key.
struct SharedResources {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<void>> objects;
  std::shared_ptr<void> get(const std::string& key, const std::function<std::shared_ptr<void>()>& make);
};

// What a driver needs from whoever runs it.
struct DriverEnv {
  std::string pipeline;
  std::string run_id;
  std::function<int()> cycle = [] { return 0; };
  SharedResources* shared = nullptr;
  Clock* clock = &system_clock();
  // Every log line of the stage, with its id as the scope.
  std::function<void(LogLevel, std::string_view scope, std::string_view message)> log;
  // The stage threw: the runner stops the pipeline. Called on the stage's own thread.
  std::function<void(const std::string& stage_id, const std::string& message)> fail;
  // The stage's run()/loop returned (after its outputs were closed).
  std::function<void(const std::string& stage_id)> done;
  // Where `flowctl tap` and the dashboard sample each output; none in the test harness.
  TapHub* taps = nullptr;
};

class StageDriver {
 public:
  // `stage` may be null and given later by set_stage() (the harness hands out its Context first).
  StageDriver(const DriverEnv& env, std::string id, const PluginInfo& info, std::unique_ptr<Stage> stage,
              StageCounters& counters);
  ~StageDriver();
  StageDriver(const StageDriver&) = delete;
  StageDriver& operator=(const StageDriver&) = delete;

  const std::string& id() const { return id_; }
  const PluginInfo& info() const { return info_; }
  bool is_source() const { return info_.kind == StageKind::Source; }
  // Throws when the stage object's class does not match the plugin's declared kind.
  void set_stage(std::unique_ptr<Stage> stage);
  bool has_stage() const { return stage_ != nullptr; }
  Stage& stage() { return *stage_; }
  Context& context();
  Emitter& emitter();
  StageCounters& counters() { return counters_; }

  // Wiring, before open(): the input channel (processors) and the channels behind each output.
  void set_input(Channel* input) { input_ = input; }
  Channel* input() const { return input_; }
  void connect(const std::string& output, Channel* channel);  // throws for an undeclared output

  void open();   // stage->open(ctx); throws what the stage throws
  void close();  // stage->close(), once, after open was tried; logs (never throws) a failure

  // The whole stage on the calling thread: run() for a source, the loop for a processor; then
  // closes its outputs and reports done. Exceptions go to env.fail.
  void run();

  // The processor loop's steps, for a runner that drives them itself (the test harness).
  void deliver(Batch batch);  // counts it, then process()
  void timer();               // on_timer()
  void finish();              // finish(): end of input

  // Hot reload: when its run ends, this instance leaves the channels behind its outputs open for
  // its successor (no writer_done). False when too late: its run already ended them. Call it
  // before stopping a source or cutting a processor's input. release_outputs(), once done():
  // the hand-over was abandoned, end them now. skip(): a stage that will never run (its open
  // failed after a reload) ends its outputs and counts as done.
  bool hand_over();
  bool handed_over() const { return outputs_state_ == kHandedOver; }
  void release_outputs();
  void skip();

  void request_stop() { stop_.request_stop(); }
  bool stop_requested() const { return stop_.stop_requested(); }
  bool done() const { return done_.load(); }

 private:
  class StageContext;
  class StageEmitter;
  void run_processor();
  void close_outputs();

  DriverEnv env_;
  std::string id_;
  PluginInfo info_;
  std::unique_ptr<Stage> stage_;
  StageCounters& counters_;
  std::unique_ptr<StageContext> ctx_;
  std::unique_ptr<StageEmitter> emitter_;
  Channel* input_ = nullptr;
  std::map<std::string, std::vector<Channel*>> outputs_;  // every declared output present
  std::map<std::string, std::shared_ptr<TapPoint>> taps_;  // per output, when env.taps
  std::stop_source stop_;
  std::atomic<bool> done_{false};
  enum OutputsState { kOpen, kHandedOver, kClosed };
  std::atomic<int> outputs_state_{kOpen};
  bool opened_ = false;
  bool closed_ = false;
};

}  // namespace flow::runtime
