// Exactly-once delivery: what the runtime, sources and sinks share through
// Context::shared<DeliveryRegistry>(kDeliveryKey, ...). The runtime creates it before the first
// cycle and says which sinks each source's records reach; a sink that keeps its input positions
// durably (csv-window-sink's manifests) publishes what it committed; a replaying source
// (kafka-source) resumes from there and cuts its batches so that a sink can skip, whole, the
// batches it already committed. See docs/architecture.md, "Exactly-once".
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/positions.hpp"

namespace flow {

inline constexpr const char* kDeliveryKey = "flow.delivery";

class DeliveryRegistry {
 public:
  using Key = std::pair<std::string, int32_t>;  // source (topic), partition
  using Ends = std::map<Key, int64_t>;          // end offset of what is committed

  struct SinkRef {
    std::string id, plugin;
  };

  // Which sinks each source's records reach: set by the runtime before any stage opens, and for
  // the sources a reload starts while others run (so read and written under the lock).
  std::vector<SinkRef> sinks_of(const std::string& source) const {
    std::lock_guard lock(mu_);
    auto it = sinks_of_.find(source);
    return it == sinks_of_.end() ? std::vector<SinkRef>{} : it->second;
  }
  std::map<std::string, std::vector<SinkRef>> all_sinks() const {
    std::lock_guard lock(mu_);
    return sinks_of_;
  }
  void set_sinks_of(const std::string& source, std::vector<SinkRef> sinks) {
    std::lock_guard lock(mu_);
    sinks_of_[source] = std::move(sinks);
  }
  void set_all_sinks(std::map<std::string, std::vector<SinkRef>> all) {
    std::lock_guard lock(mu_);
    sinks_of_ = std::move(all);
  }

 private:
  std::map<std::string, std::vector<SinkRef>> sinks_of_;  // source stage id -> sinks (first member: the layout of ABI 3)

 public:
  int cycles = 1;  // run.cycles; 0 = forever

  // A sink's committed ends, read from its durable state at open() and advanced with each
  // commit. Every record of a listed partition below its end that is meant for this sink is in
  // its committed output, and none at or after it.
  void publish(const std::string& sink, const Ends& ends) {
    std::lock_guard lock(mu_);
    auto& s = sinks_[sink];
    for (const auto& [k, e] : ends) {
      auto [it, inserted] = s.emplace(k, e);
      if (!inserted && it->second < e) it->second = e;
    }
    published_[sink] = true;
  }
  void advance(const std::string& sink, const std::vector<PositionRange>& ranges) {
    std::lock_guard lock(mu_);
    auto& s = sinks_[sink];
    for (const auto& r : ranges) {
      auto [it, inserted] = s.emplace(Key{r.source, r.partition}, r.end);
      if (!inserted && it->second < r.end) it->second = r.end;
    }
  }
  // nullopt when the sink never published (it keeps no durable positions).
  std::optional<Ends> committed(const std::string& sink) const {
    std::lock_guard lock(mu_);
    if (!published_.count(sink)) return std::nullopt;
    auto it = sinks_.find(sink);
    return it == sinks_.end() ? Ends{} : it->second;
  }

  // A source that resumes from the sinks' committed ends says so for each position source it
  // emits (a topic); sinks skip committed replays of those only (another source may restart its
  // numbering, and its "replays" are new records).
  void mark_replayable(const std::string& source) {
    std::lock_guard lock(mu_);
    replayable_[source] = true;
  }
  bool replayable(const std::string& source) const {
    std::lock_guard lock(mu_);
    return replayable_.count(source) != 0;
  }

  // A source losing partitions asks the sinks to commit what they hold now (a graceful
  // rebalance): while flush_active() is true, sinks commit after every batch and on every timer.
  void begin_flush() { flushing_.fetch_add(1, std::memory_order_acq_rel); }
  void end_flush() { flushing_.fetch_sub(1, std::memory_order_acq_rel); }
  bool flush_active() const { return flushing_.load(std::memory_order_acquire) > 0; }

  // Replayed records a sink wrote although they may be in its output already (counted, not hidden).
  void add_rewritten(uint64_t n) { rewritten_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t rewritten() const { return rewritten_.load(std::memory_order_relaxed); }

  // Lines printed at the end of `flowctl run` (what the run guaranteed), by key.
  void note(const std::string& key, std::string line) {
    std::lock_guard lock(mu_);
    notes_[key] = std::move(line);
  }
  std::vector<std::string> notes() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [k, v] : notes_) out.push_back(v);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Ends> sinks_;
  std::map<std::string, bool> published_;
  std::map<std::string, bool> replayable_;
  std::map<std::string, std::string> notes_;
  std::atomic<int> flushing_{0};
  std::atomic<uint64_t> rewritten_{0};
};

}  // namespace flow
