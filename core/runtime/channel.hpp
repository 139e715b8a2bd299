// A bounded edge between stages: limited in batches and in bytes, with any number of writers
// (fan-in). A full channel blocks its writers; end of stream is reached when every writer has
// called writer_done() and the queue is drained; cancel() wakes everyone for an abort.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "flow/batch.hpp"

namespace flow::runtime {

struct ChannelStats {
  std::size_t depth = 0;  // batches queued now
  uint64_t bytes = 0;     // bytes queued now
  std::size_t max_batches = 0;
  uint64_t max_bytes = 0;
  uint64_t batches_in = 0;
  uint64_t records_in = 0;
  uint64_t blocked_ns = 0;  // total time writers spent waiting for room
  std::size_t peak_depth = 0;
  uint64_t peak_bytes = 0;
};

class Channel {
 public:
  enum class Pop { Item, Timeout, End, Cancelled };
  using LogHook = std::function<void(const std::string&)>;

  // Throws std::invalid_argument for a zero limit or no writers.
  Channel(std::string name, std::size_t max_batches, uint64_t max_bytes, int writers, LogHook log = {});

  // Blocks while full. False when the channel was cancelled (the batch is dropped).
  // A batch larger than max_bytes is admitted alone into an empty channel, so it cannot wedge.
  bool push(Batch&& batch);
  // Never blocks: false when full or cancelled, leaving `batch` untouched.
  bool try_push(Batch& batch);
  // Waits up to `timeout` for room; true when a push would not block.
  bool wait_writable(std::chrono::milliseconds timeout);

  Pop pop(Batch& out, std::chrono::milliseconds timeout);

  void writer_done();
  void cancel();

  const std::string& name() const { return name_; }
  ChannelStats stats() const;

 private:
  bool has_room(uint64_t bytes) const;
  void admit(Batch&& batch, uint64_t bytes);

  const std::string name_;
  const std::size_t max_batches_;
  const uint64_t max_bytes_;
  LogHook log_;

  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<std::pair<Batch, uint64_t>> queue_;
  uint64_t bytes_ = 0;
  int writers_;
  bool cancelled_ = false;
  ChannelStats stats_;
  bool blocked_logged_ = false;
};

}  // namespace flow::runtime
