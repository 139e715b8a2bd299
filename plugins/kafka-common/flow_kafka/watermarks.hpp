// The low and high watermarks of a consumer's partitions, for its lag. librdkafka caches the high
// watermark of each fetch response (rd_kafka_get_watermark_offsets), but a paused partition (the
// pipeline is full) or a full prefetch queue fetches nothing, so that value stops moving while
// the topic grows, which is exactly when the lag matters. This asks the brokers instead: every
// `interval`, on a thread of its own so the consumer's poll loop never waits for it, one
// ListOffsets request per leader for the latest and one for the earliest offsets
// (rd_kafka_offsets_for_times with RD_KAFKA_OFFSET_END / _BEGINNING as the timestamps).
// librdkafka's statistics (statistics.interval.ms) have the same stale hi_offset while paused,
// and their consumer_lag counts from the committed offset, not from what was consumed.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace flow::kafka {

class WatermarkWatcher {
 public:
  using Key = std::pair<std::string, int32_t>;  // topic, partition
  struct Marks {
    int64_t low = -1, high = -1;  // -1: not known yet
  };

  // `rk` must outlive the watcher (stop() it before rd_kafka_destroy).
  WatermarkWatcher(rd_kafka_t* rk, std::chrono::milliseconds interval) : rk_(rk), interval_(interval) {
    thread_ = std::thread([this] { loop(); });
  }
  ~WatermarkWatcher() { stop(); }
  WatermarkWatcher(const WatermarkWatcher&) = delete;
  WatermarkWatcher& operator=(const WatermarkWatcher&) = delete;

  // Waits for a query under way (at most its timeout, about a second).
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // The partitions to watch: added on assignment, removed on revocation (their marks go too).
  void add(const Key& k) {
    {
      std::lock_guard lock(mu_);
      if (!parts_.insert(k).second) return;
    }
    cv_.notify_all();  // query a new partition now, not an interval later
  }
  void remove(const Key& k) {
    std::lock_guard lock(mu_);
    parts_.erase(k);
    marks_.erase(k);
  }

  // The latest marks, each the higher of the last query's and librdkafka's cached one (newer
  // while the partition is fetched).
  Marks marks(const Key& k) const {
    Marks m;
    {
      std::lock_guard lock(mu_);
      if (auto it = marks_.find(k); it != marks_.end()) m = it->second;
    }
    int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
    if (!rd_kafka_get_watermark_offsets(rk_, k.first.c_str(), k.second, &lo, &hi)) {
      if (hi >= 0) m.high = std::max(m.high, hi);
      if (lo >= 0 && m.low < 0) m.low = lo;
    }
    return m;
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    std::set<Key> queried;  // wait only once every partition has been asked for
    while (!stop_) {
      if (queried == parts_) cv_.wait_for(lock, interval_, [&] { return stop_ || queried != parts_; });
      if (stop_) break;
      const std::set<Key> parts = parts_;
      lock.unlock();
      std::map<Key, Marks> got;
      if (!parts.empty()) {
        query(parts, RD_KAFKA_OFFSET_END, got, &Marks::high);
        query(parts, RD_KAFKA_OFFSET_BEGINNING, got, &Marks::low);
      }
      lock.lock();
      for (const auto& [k, m] : got)
        if (parts_.count(k)) {  // not revoked meanwhile
          auto& cur = marks_[k];
          if (m.high >= 0) cur.high = m.high;
          if (m.low >= 0) cur.low = m.low;
        }
      queried = parts;
    }
  }

  // Errors (a broker away, a leader moving) leave the previous marks: the next round retries.
  void query(const std::set<Key>& parts, int64_t which, std::map<Key, Marks>& got, int64_t Marks::*field) {
    std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> list(
        rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())), rd_kafka_topic_partition_list_destroy);
    for (const auto& [topic, partition] : parts)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = which;
    if (rd_kafka_offsets_for_times(rk_, list.get(), 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      if (!e.err && e.offset >= 0) got[{e.topic, e.partition}].*field = e.offset;
    }
  }

  rd_kafka_t* rk_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<Key> parts_;
  std::map<Key, Marks> marks_;
  std::thread thread_;
};

}  // namespace flow::kafka
