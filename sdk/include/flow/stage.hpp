// What a plugin implements (Source or Processor) and what the runtime gives it (Context,
// Emitter). Plugins include only headers under flow/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "flow/batch.hpp"

namespace flow {

enum class LogLevel { Debug, Info, Warn, Error };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view m) { log(LogLevel::Debug, m); }
  void info(std::string_view m) { log(LogLevel::Info, m); }
  void warn(std::string_view m) { log(LogLevel::Warn, m); }
  void error(std::string_view m) { log(LogLevel::Error, m); }
};

// A monotonically increasing count, exported per stage in the summary and metrics.
class Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (a consumer's lag, a queue's length), exported per stage like a
// counter but as a Prometheus gauge. Unset until the first set(); clear() unsets it again, so a
// series that no longer applies (a revoked partition) leaves the metrics instead of reading 0.
class Gauge {
 public:
  void set(int64_t v) {
    value_.store(v, std::memory_order_relaxed);
    set_.store(true, std::memory_order_release);
  }
  void clear() { set_.store(false, std::memory_order_release); }
  bool is_set() const { return set_.load(std::memory_order_acquire); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
  std::atomic<bool> set_{false};
};

class Context {
 public:
  virtual ~Context() = default;

  virtual const std::string& stage_id() const = 0;
  virtual const std::string& pipeline_name() const = 0;
  // Unique per `flowctl run` process start; plugins use it to name files so runs never clash.
  virtual const std::string& run_id() const = 0;
  // 0 for the first cycle of a `run: {cycles: N}` pipeline, then 1, 2, ...
  virtual int cycle() const = 0;

  virtual Logger& log() = 0;
  // A named counter of this stage ("invalid_records", labels such as {{"reason","nan"}}).
  // The reference stays valid for the whole run.
  virtual Counter& counter(const std::string& name,
                           const std::vector<std::pair<std::string, std::string>>& labels = {}) = 0;
  // A named gauge of this stage ("kafka_partition_lag", {{"topic","t"},{"partition","0"}}), the
  // same way. Its value survives the cycles of a run; a stage clears it when it no longer applies.
  virtual Gauge& gauge(const std::string& name,
                       const std::vector<std::pair<std::string, std::string>>& labels = {}) = 0;

  // Set when the stage should finish: sources return from run(); processors are told by end
  // of input instead and rarely need this.
  virtual std::stop_token stop_token() const = 0;
  bool stop_requested() const { return stop_token().stop_requested(); }

  // Wall-clock time; a fake clock in tests (flow::testing::StageHarness).
  virtual std::chrono::system_clock::time_point now() const = 0;

  // An object shared by every stage of the process under `key` (for example an embedded
  // broker). `make` runs once; the runtime keeps the object until every stage is closed and
  // destroys it before unloading plugins. Stages must agree on the type behind a key.
  virtual std::shared_ptr<void> shared_resource(const std::string& key,
                                                const std::function<std::shared_ptr<void>()>& make) = 0;
  template <class T>
  std::shared_ptr<T> shared(const std::string& key, const std::function<std::shared_ptr<T>()>& make) {
    return std::static_pointer_cast<T>(
        shared_resource(key, [&]() -> std::shared_ptr<void> { return make(); }));
  }
};

// What try_emit() did with the batch.
enum class EmitStatus {
  Sent,    // the batch went downstream
  Full,    // no room now; the batch is left untouched, try again later
  Closed,  // the pipeline is aborting; the batch is left untouched and should be dropped
};
struct TryEmit {
  EmitStatus status;
  explicit operator bool() const { return status == EmitStatus::Sent; }
};

// Sends batches downstream. Outputs are named: "" is the main output, others are declared by
// the plugin (json-validator's "invalid") and addressed in YAML as "<stage>.<output>".
//
// The contract, the same under `flowctl run` and flow::testing::StageHarness (which drives a
// stage through the runtime's own driver and channels):
// - emit() blocks while the output's channel is full (backpressure) and returns true once the
//   batch is queued downstream.
// - A stop request (duration reached, SIGINT, the test's request_stop()) does NOT make emit()
//   fail: the pipeline drains, so what a stage emits while stopping still arrives. A source
//   checks ctx.stop_requested() between batches and returns from run().
// - emit() returns false only when the pipeline is aborting (a second signal, or a stage
//   failed downstream): the batch is dropped and its positions are never acknowledged, so
//   they are delivered again after a restart. The stage should return promptly.
// - Emitting to an output nobody consumes acknowledges the batch's positions and drops it.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual bool emit(Batch batch, std::string_view output = {}) = 0;
  // Never blocks: Sent, or Full / Closed leaving `batch` untouched.
  virtual TryEmit try_emit(Batch& batch, std::string_view output = {}) = 0;
  // Waits up to `timeout` for room on the output; true when there is room.
  virtual bool wait_writable(std::chrono::milliseconds timeout, std::string_view output = {}) = 0;
  // Whether some stage consumes this output.
  virtual bool connected(std::string_view output = {}) const = 0;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Acquire resources (files, connections). Throwing fails the pipeline start with the message.
  virtual void open(Context& ctx) { (void)ctx; }
  // Release resources. Called once after the stage finished or failed, even if open threw.
  virtual void close() {}
};

// Produces batches until exhausted or until ctx.stop_requested(); returning ends its output.
class Source : public Stage {
 public:
  virtual void run(Context& ctx, Emitter& out) = 0;
};

// Transforms and sinks: batches in, optionally batches out.
class Processor : public Stage {
 public:
  virtual void process(Batch batch, Emitter& out) = 0;
  // Called about every timer_interval() (if non-zero) while running, between batches.
  virtual std::chrono::milliseconds timer_interval() const { return std::chrono::milliseconds(0); }
  virtual void on_timer(Emitter& out) { (void)out; }
  // End of input: flush, make output durable, acknowledge, emit what remains.
  virtual void finish(Emitter& out) { (void)out; }
};

}  // namespace flow
