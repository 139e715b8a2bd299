// Taps: samples of the records passing a stage output, for `flowctl tap` and the dashboard.
// A tap never slows the pipeline or changes backpressure: the emitter pays one relaxed atomic
// load when nobody listens; with listeners it copies rows as JSON into each listener's small
// bounded queue and, when a queue is full, drops the sample and counts it (never the data).
#pragma once

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flow/batch.hpp"

namespace flow::runtime {

// One row as a JSON object ({"column": value, ...}), nulls as null.
std::string row_json(const Batch& b, std::size_t row);

class TapPoint;

// One listener's queue; the reader pops, the emitter pushes or drops.
class TapSubscription {
 public:
  TapSubscription(std::shared_ptr<TapPoint> point, std::size_t capacity);
  ~TapSubscription();  // unsubscribes
  TapSubscription(const TapSubscription&) = delete;
  TapSubscription& operator=(const TapSubscription&) = delete;

  // Waits up to `timeout` for rows; returns them (maybe none) and adds to `dropped` the samples
  // lost since the last call because this reader was slow.
  std::vector<std::string> pop(std::chrono::milliseconds timeout, uint64_t& dropped);
  // Called by the emitter; never blocks on the reader.
  void offer(const Batch& b);

 private:
  std::shared_ptr<TapPoint> point_;
  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> rows_;
  uint64_t dropped_ = 0;
};

// One stage output ("stage" or "stage.output").
class TapPoint {
 public:
  // The only cost on the hot path when nobody listens.
  bool active() const { return listeners_.load(std::memory_order_relaxed) != 0; }
  void offer(const Batch& b);

 private:
  friend class TapSubscription;
  friend class TapHub;
  std::atomic<int> listeners_{0};
  std::mutex mu_;
  std::vector<TapSubscription*> subs_;
};

// Every tap point of a run, by "stage" / "stage.output"; points live as long as the hub.
class TapHub {
 public:
  // The point for an edge, created on first use (by the driver when it is built, or by a reader).
  std::shared_ptr<TapPoint> point(const std::string& name);
  bool has(const std::string& name);
  std::unique_ptr<TapSubscription> subscribe(const std::string& name, std::size_t capacity = 1024);
  std::vector<std::string> names();

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<TapPoint>> points_;
};

}  // namespace flow::runtime
