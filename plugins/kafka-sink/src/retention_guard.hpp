// kafka-sink's retention guard (issue 15). librdkafka 2.0.2's mock cluster (`brokers: embedded`,
// `flowctl broker`) keeps at most 5 MiB and 100,000 message sets per partition and silently
// drops the oldest beyond that, so a consumer further behind loses records. The guard counts,
// per partition, what this producer wrote past the committed offsets of the consumer groups it
// watches, and the sink waits before a record would take a partition past the limit, until the
// groups commit more. Committed offsets are read on a thread of its own every ~200 ms (a consumer
// handle per group that never joins it, rd_kafka_committed), never per record.
#pragma once

#include <librdkafka/rdkafka.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "flow/stage.hpp"
#include "flow_kafka/common.hpp"
#include "flow_kafka/plugin_support.hpp"

namespace flow::kafka {

// Per partition, rdkafka_mock.c (2.0.2): beyond either, the oldest message set is dropped.
inline constexpr int64_t kMockMaxBytes = 5 * 1024 * 1024;
inline constexpr int64_t kMockMaxMessageSets = 100'000;
// A record's bytes in the log beyond key and value: its header varints and its share of a record
// batch's 61-byte header, rounded up (so the guard errs on the side of waiting).
inline constexpr int64_t kRecordOverhead = 24;
// kafka-source commits the offsets of partitions it gives up during a rebalance here when the
// group refuses them (see plugins/kafka-source): a group's offset is the higher of the two.
inline constexpr const char* kHandoverSuffix = ".flow-handover";

// What one partition holds past a committed offset, from this producer's delivery reports:
// consecutive offsets merged into spans of up to 64 KiB (about a hundred per partition).
class PartitionLedger {
 public:
  struct Usage {
    int64_t bytes = 0, records = 0;
  };

  void add(int64_t offset, int64_t bytes) {
    if (!spans_.empty() && spans_.back().end == offset && spans_.back().bytes < kSpanBytes) {
      spans_.back().end = offset + 1;
      spans_.back().bytes += bytes;
    } else {
      spans_.push_back({offset, offset + 1, bytes});
    }
    held_ += bytes;
    seen_bytes_ += bytes;
    ++seen_records_;
    // Twice what the log holds: older records are gone from the broker whatever a consumer does.
    while (spans_.size() > 1 && held_ - spans_.front().bytes >= 2 * kMockMaxBytes) drop_front();
  }

  // Everything below `offset` has been consumed (and committed).
  void consumed_to(int64_t offset) {
    while (!spans_.empty() && spans_.front().end <= offset) drop_front();
  }

  // From `from` (the next offset a group reads) to the last delivered. Offsets below the first
  // span (written before this producer started, or by another producer) count at this
  // producer's average record size; records of other producers interleaved later are not seen.
  Usage unconsumed(int64_t from) const {
    Usage u;
    if (spans_.empty()) return u;
    for (auto it = spans_.rbegin(); it != spans_.rend() && it->end > from; ++it) {
      const int64_t start = std::max(it->first, from);
      u.bytes += it->bytes * (it->end - start) / (it->end - it->first);
      u.records += it->end - start;
    }
    if (from < spans_.front().first) {
      const int64_t older = spans_.front().first - std::max<int64_t>(from, 0);
      u.records += older;
      u.bytes += older * (seen_records_ ? seen_bytes_ / seen_records_ : 0);
    }
    return u;
  }

  bool empty() const { return spans_.empty(); }

 private:
  static constexpr int64_t kSpanBytes = 64 * 1024;
  struct Span {
    int64_t first, end, bytes;  // offsets [first, end)
  };
  void drop_front() {
    held_ -= spans_.front().bytes;
    spans_.pop_front();
  }
  std::deque<Span> spans_;
  int64_t held_ = 0;
  int64_t seen_bytes_ = 0, seen_records_ = 0;
};

class RetentionGuard {
 public:
  struct Settings {
    std::string topic, bootstrap;
    int32_t partitions = 1;
    std::vector<std::string> groups;  // watch_groups: watched from the start
    bool discover = true;             // without watch_groups: this process's consumer groups
    int64_t max_bytes = kMockMaxBytes * 4 / 5, max_records = kMockMaxMessageSets * 4 / 5;
    std::chrono::milliseconds interval{200};
    std::map<std::string, std::string> client;  // connection properties for the offset readers
  };

  // How much more may be produced now, and the partition that limits it.
  struct Room {
    int64_t bytes = 0, records = 0;
    bool idle = true;  // nothing unconsumed nor in flight: even a record over the limit may go
    int32_t partition = -1;
    PartitionLedger::Usage usage;
    std::string group;
    bool fits(int64_t size) const { return idle || (bytes >= size && records >= 1); }
  };

  RetentionGuard(Settings s, Context& ctx) : s_(std::move(s)), ctx_(ctx), parts_(s_.partitions) {
    for (const auto& g : s_.groups) explicit_.insert(g);
    // Named groups hold from the first record, before their offsets are read.
    if (!s_.groups.empty())
      for (auto& part : parts_) {
        part.floor = 0;
        part.group = s_.groups.front();
      }
    for (int32_t p = 0; p < s_.partitions; ++p)
      parts_[p].gauge =
          &ctx.gauge("kafka_unconsumed_bytes", {{"topic", s_.topic}, {"partition", std::to_string(p)}});
    thread_ = std::thread([this] { loop(); });
  }
  ~RetentionGuard() { stop(); }
  RetentionGuard(const RetentionGuard&) = delete;
  RetentionGuard& operator=(const RetentionGuard&) = delete;

  // Waits for a read under way (at most its 1 s timeout).
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& [g, r] : readers_) {
      if (r.group) rd_kafka_destroy(r.group);  // never subscribed: nothing to leave
      if (r.handover) rd_kafka_destroy(r.handover);
    }
    readers_.clear();
  }

  // The sink's thread: a record handed to librdkafka, and its delivery report.
  void sent(int64_t bytes) {
    inflight_bytes_ += bytes;
    ++inflight_records_;
  }
  void delivered(int32_t partition, int64_t offset, int64_t bytes, bool ok) {
    inflight_bytes_ -= bytes;
    --inflight_records_;
    if (!ok || offset < 0 || partition < 0 || partition >= s_.partitions) return;
    std::lock_guard lock(mu_);
    parts_[partition].ledger.add(offset, bytes);
  }
  bool in_flight() const { return inflight_records_ > 0; }

  Room room() const {
    Room r;
    std::lock_guard lock(mu_);
    int64_t worst_bytes = -1, worst_records = 0;
    for (int32_t p = 0; p < s_.partitions; ++p) {
      const Part& part = parts_[p];
      if (!part.floor) continue;
      const auto u = part.ledger.unconsumed(*part.floor);
      worst_records = std::max(worst_records, u.records);
      if (u.bytes > worst_bytes) {
        worst_bytes = u.bytes;
        r.usage = u;
        r.partition = p;
        r.group = part.group;
      }
    }
    if (r.partition < 0) {  // nothing watched: no limit, but ask again (a group may come)
      r.bytes = s_.max_bytes;
      r.records = s_.max_records;
      return r;
    }
    r.bytes = s_.max_bytes - worst_bytes - inflight_bytes_;
    r.records = s_.max_records - worst_records - inflight_records_;
    r.idle = worst_bytes == 0 && worst_records == 0 && inflight_records_ == 0;
    return r;
  }

  // Waits for the next round of committed offsets (or `timeout`, or a stop).
  void wait_round(std::chrono::milliseconds timeout, std::stop_token stop) {
    std::unique_lock lock(mu_);
    const uint64_t seen = rounds_;
    cv_.wait_for(lock, stop, timeout, [&] { return rounds_ != seen || stopping_; });
  }

  // Waits for a round that started after this call: before the first record, so the groups of
  // consumers opened after this stage are watched from the start.
  void wait_fresh_round(std::chrono::milliseconds timeout, std::stop_token stop) {
    std::unique_lock lock(mu_);
    const uint64_t done = rounds_ + (in_round_ ? 2 : 1);
    want_round_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, stop, timeout, [&] { return rounds_ >= done || stopping_; });
  }

  // Grows whenever a watched group commits further on a watched partition.
  uint64_t progress() const {
    std::lock_guard lock(mu_);
    return progress_;
  }

  bool is_explicit(const std::string& group) const { return explicit_.count(group) != 0; }

  // A group found in this process that stopped committing (removed by a reload, or waiting for
  // data itself): no longer waited for.
  void ignore(const std::string& group) {
    std::lock_guard lock(mu_);
    ignored_.insert(group);
  }

  // The groups watched so far ("a, b"), for log lines.
  std::string groups_text() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& g : watched_) out += (out.empty() ? "'" : ", '") + g + "'";
    return out.empty() ? "none yet" : out;
  }

 private:
  struct Part {
    PartitionLedger ledger;
    std::optional<int64_t> floor;  // the slowest watched group's next offset; none: not watched
    std::string group;             // that group
    Gauge* gauge = nullptr;
  };
  struct Readers {
    rd_kafka_t* group = nullptr;
    rd_kafka_t* handover = nullptr;
  };

  rd_kafka_t* reader(const std::string& group_id) {
    Conf conf;
    conf.set_all(s_.client)
        .set("bootstrap.servers", s_.bootstrap)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .unlisted();
    conf.log_to(log_sink(ctx_.log()));
    return conf.create(RD_KAFKA_CONSUMER);
  }

  // A group's committed offsets (the higher of it and its handover group), per partition.
  std::vector<std::optional<int64_t>> committed(const std::string& group) {
    auto& r = readers_[group];
    std::vector<std::optional<int64_t>> out(s_.partitions);
    for (rd_kafka_t** h : {&r.group, &r.handover}) {
      if (!*h) *h = reader(h == &r.group ? group : group + kHandoverSuffix);
      TopicPartitionList list(rd_kafka_topic_partition_list_new(s_.partitions));
      for (int32_t p = 0; p < s_.partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), s_.topic.c_str(), p);
      if (rd_kafka_committed(*h, list.get(), 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      for (int i = 0; i < list->cnt; ++i) {
        const auto& e = list->elems[i];
        if (e.err || e.offset < 0 || e.partition < 0 || e.partition >= s_.partitions) continue;
        auto& o = out[e.partition];
        o = std::max(o.value_or(e.offset), e.offset);
      }
    }
    return out;
  }

  // The partitions' low watermarks (where a group without a commit starts reading), or 0.
  std::vector<int64_t> low_watermarks(rd_kafka_t* h) {
    std::vector<int64_t> out(s_.partitions, 0);
    TopicPartitionList list(rd_kafka_topic_partition_list_new(s_.partitions));
    for (int32_t p = 0; p < s_.partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), s_.topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_offsets_for_times(h, list.get(), 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < list->cnt; ++i)
        if (!list->elems[i].err && list->elems[i].offset >= 0 && list->elems[i].partition < s_.partitions)
          out[list->elems[i].partition] = list->elems[i].offset;
    return out;
  }

  void loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      std::set<std::string> groups = explicit_;
      if (s_.discover)
        for (const auto& g : LocalGroups::get().of(s_.bootstrap))
          if (!g.ends_with(kHandoverSuffix) && !ignored_.count(g)) groups.insert(g);
      for (const auto& g : ignored_) groups.erase(g);
      in_round_ = true;
      want_round_ = false;
      lock.unlock();
      round(groups);
      lock.lock();
      in_round_ = false;
      ++rounds_;
      cv_.notify_all();
      cv_.wait_for(lock, s_.interval, [&] { return stopping_ || want_round_; });
    }
  }

  // One round: every group's offsets, then each partition's floor (the slowest group's).
  void round(const std::set<std::string>& groups) {
    std::vector<std::optional<int64_t>> floor(s_.partitions);
    std::vector<std::string> who(s_.partitions);
    std::optional<std::vector<int64_t>> lows;
    std::vector<std::string> newly;
    for (const auto& g : groups) {
      const auto offsets = committed(g);
      bool any = false;
      for (int32_t p = 0; p < s_.partitions; ++p) {
        std::optional<int64_t> at = offsets[p];
        // A group that never committed here reads from the start when it comes: it is waited for.
        if (!at) {
          if (!lows) lows = low_watermarks(readers_[g].group);
          at = (*lows)[p];
        }
        any = true;
        if (!floor[p] || *at < *floor[p]) {
          floor[p] = *at;
          who[p] = g;
        }
      }
      if (any) newly.push_back(g);
    }
    std::lock_guard lock(mu_);
    for (int32_t p = 0; p < s_.partitions; ++p) {
      Part& part = parts_[p];
      if (floor[p] && part.floor && *floor[p] > *part.floor) ++progress_;
      if (floor[p]) part.ledger.consumed_to(*floor[p]);
      part.floor = floor[p];
      part.group = who[p];
      if (floor[p]) part.gauge->set(part.ledger.unconsumed(*floor[p]).bytes);
      else part.gauge->clear();
    }
    for (const auto& g : newly)
      if (watched_.insert(g).second && !explicit_.count(g))
        ctx_.log().info(fmt::format("retention guard: watching consumer group '{}' (a consumer in this process on "
                                    "the same brokers)",
                                    g));
  }

  Settings s_;
  Context& ctx_;
  std::set<std::string> explicit_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  bool stopping_ = false;
  bool in_round_ = false, want_round_ = false;
  uint64_t rounds_ = 0, progress_ = 0;
  std::vector<Part> parts_;
  std::set<std::string> ignored_, watched_;
  std::map<std::string, Readers> readers_;  // the watcher thread's only
  int64_t inflight_bytes_ = 0, inflight_records_ = 0;  // the sink's thread only
  std::thread thread_;
};

}  // namespace flow::kafka
