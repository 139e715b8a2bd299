// A bounded edge between stages: limited in batches, bytes and records, with any number of writers
// (fan-in). A full channel blocks its writers; end of stream is reached when every writer has
// called writer_done() and the queue is drained; cancel() wakes everyone for an abort. A hot
// reload hands a channel over from a stage's old instance to its new one with cut().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "flow/batch.hpp"
#include "runtime/clock.hpp"

namespace flow::runtime {

struct ChannelStats {
  std::size_t depth = 0;  // batches queued now
  uint64_t bytes = 0;     // bytes queued now
  uint64_t records = 0;   // records queued now
  std::size_t max_batches = 0;
  uint64_t max_bytes = 0;
  uint64_t max_records = UINT64_MAX;  // UINT64_MAX: no record limit
  uint64_t batches_in = 0;
  uint64_t records_in = 0;
  uint64_t blocked_ns = 0;  // total time writers spent waiting for room
  std::size_t blocked_writers = 0;  // writers waiting for room now
  std::size_t peak_depth = 0;
  uint64_t peak_bytes = 0;
  uint64_t peak_records = 0;
};

class Channel {
 public:
  enum class Pop { Item, Timeout, End, Cancelled, Cut };
  using LogHook = std::function<void(const std::string&)>;

  // Throws std::invalid_argument for a zero limit or no writers.
  // `clock` times pop_until(); a ManualClock in tests.
  Channel(std::string name, std::size_t max_batches, uint64_t max_bytes, int writers, LogHook log = {},
          Clock& clock = system_clock());

  // Blocks while full. False when the channel was cancelled (the batch is dropped).
  // A batch larger than max_bytes (or max_records) is admitted alone into an empty channel, so it
  // cannot wedge.
  bool push(Batch&& batch);
  // Never blocks: false when full or cancelled, leaving `batch` untouched.
  bool try_push(Batch& batch);
  // Whether a batch of unknown size would be admitted now.
  enum class Room { Free, Full, Cancelled };
  Room room() const;
  // Waits up to `timeout` for room; true when a push would not block.
  bool wait_writable(std::chrono::milliseconds timeout);

  Pop pop(Batch& out, std::chrono::milliseconds timeout);
  // Waits until an item, the end, a cancel, or `deadline` by the channel's clock (Clock::never()).
  Pop pop_until(Batch& out, Clock::time_point deadline);

  void writer_done();
  void cancel();
  // Hot reload. cut(): the reader gets Pop::Cut once it has taken every batch queued now, while
  // writers go on (what they push after it is for the reader's successor); one cut at a time.
  // add_writers(): the edges into the channel changed (negative: writers gone for good).
  void cut();
  void clear_cut();  // a cut its reader never reached (it had ended): not for the successor
  void add_writers(int delta);
  void set_limits(std::size_t max_batches, uint64_t max_bytes);
  // Changes the batch limit, waking blocked writers when it grows (the test harness's
  // downstream: bounded while a test holds batches back, unbounded once it drains).
  void set_max_batches(std::size_t max_batches);
  // The most records queued (a pipeline's `buffer.records` / `limits.records`); default none.
  void set_max_records(uint64_t max_records);

  const std::string& name() const { return name_; }
  ChannelStats stats() const;

 private:
  bool has_room(uint64_t bytes, uint64_t records) const;
  bool has_some_room() const;  // for a batch of unknown size
  void admit(Batch&& batch, uint64_t bytes);
  Pop take(Batch& out, std::unique_lock<std::mutex>& lock);

  const std::string name_;
  std::size_t max_batches_;
  uint64_t max_bytes_;
  LogHook log_;
  Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<std::pair<Batch, uint64_t>> queue_;
  uint64_t bytes_ = 0, records_ = 0;
  uint64_t max_records_ = UINT64_MAX;
  int writers_;
  bool cancelled_ = false;
  std::optional<std::size_t> cut_after_;  // batches still to take before Pop::Cut
  ChannelStats stats_;
  bool blocked_logged_ = false;
};

}  // namespace flow::runtime
