// Code shared by kafka-source, kafka-sink and `flowctl broker`: librdkafka configuration helpers,
// the embedded broker (librdkafka's mock cluster) and the contiguous-ack offset tracker.
// Header-only so that each plugin library carries its own copy and needs no extra .so.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <stdexcept>
#include <string>
#include <utility>
#include <functional>
#include <vector>

namespace flow::kafka {

inline constexpr const char* kEmbedded = "embedded";
inline constexpr const char* kEmbeddedKey = "kafka.embedded";

// Per-partition limits of librdkafka 2.0.2's mock cluster (rdkafka_mock.c): older data is
// dropped silently beyond them.
inline constexpr const char* kMockRetentionNote =
    "librdkafka's mock cluster keeps at most 5 MiB and 100,000 message sets per partition and "
    "silently drops older data; spread large preloads over enough partitions (about 50k sensor "
    "messages each). It also stores a retried produce request twice and writes no transaction "
    "markers.";

// librdkafka's own log lines go through the stage's logger (with its stage id) instead of
// straight to stderr: handles are mapped to loggers here, because the conf's opaque is taken.
// A sink gets librdkafka's syslog level (0-7) and "facility: message" (plugin_support.hpp's
// log_sink() maps them onto the stage's logger).
using LogSink = std::function<void(int level, const std::string& line)>;

struct LogRoutes {
  std::mutex mu;
  std::map<const rd_kafka_t*, std::shared_ptr<LogSink>> by_handle;
  std::shared_ptr<LogSink> creating;  // lines logged inside rd_kafka_new(), before it returns
  // Never destroyed: as an inline function's static it is one object for every plugin library
  // in the process (GNU unique symbol), and its entries hold code of whichever library made them,
  // which may be gone at exit.
  static LogRoutes& get() {
    static auto* r = new LogRoutes;
    return *r;
  }
  static void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto& r = get();
    std::lock_guard lock(r.mu);
    auto it = r.by_handle.find(rk);
    const auto sink = it != r.by_handle.end() ? it->second : r.creating;
    if (sink) (*sink)(level, std::string(fac) + ": " + buf);
    else std::fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac, rk ? rd_kafka_name(rk) : "", buf);  // no stage to name
  }
};

// The consumer groups of this process's consumers, by bootstrap servers, filled as Conf creates
// them: kafka-sink's retention guard watches the groups that consume in the same process
// (`brokers: embedded`) without being told their names. Process-wide and never destroyed, like
// LogRoutes.
class LocalGroups {
 public:
  static LocalGroups& get() {
    static auto* g = new LocalGroups;
    return *g;
  }
  void add(const std::string& bootstrap, const std::string& group) {
    std::lock_guard lock(mu_);
    by_bootstrap_[bootstrap].insert(group);
  }
  std::set<std::string> of(const std::string& bootstrap) const {
    std::lock_guard lock(mu_);
    auto it = by_bootstrap_.find(bootstrap);
    return it == by_bootstrap_.end() ? std::set<std::string>{} : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::set<std::string>> by_bootstrap_;
};

// Owns an rd_kafka_conf_t until handed to rd_kafka_new().
class Conf {
 public:
  Conf() : conf_(rd_kafka_conf_new()) {}
  ~Conf() {
    if (conf_) rd_kafka_conf_destroy(conf_);
  }
  Conf(const Conf&) = delete;
  Conf& operator=(const Conf&) = delete;

  // Throws std::runtime_error naming the property and the value when librdkafka refuses it.
  Conf& set(const std::string& key, const std::string& value) {
    char err[512];
    if (rd_kafka_conf_set(conf_, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error("librdkafka property '" + key + "' = '" + value + "': " + err);
    if (key == "group.id") group_ = value;
    if (key == "bootstrap.servers") bootstrap_ = value;
    return *this;
  }
  Conf& set_all(const std::map<std::string, std::string>& props) {
    for (const auto& [k, v] : props) set(k, v);
    return *this;
  }
  rd_kafka_conf_t* get() { return conf_; }
  // Routes the client's log lines to `sink`, which must outlive the client.
  Conf& log_to(LogSink sink) {
    log_ = std::make_shared<LogSink>(std::move(sink));
    rd_kafka_conf_set_log_cb(conf_, &LogRoutes::log_cb);
    return *this;
  }
  // A consumer that only reads a group's offsets (the retention guard's) is not one of its members.
  Conf& unlisted() {
    listed_ = false;
    return *this;
  }
  // rd_kafka_new() takes ownership on success only.
  rd_kafka_t* create(rd_kafka_type_t type) {
    char err[512];
    auto& routes = LogRoutes::get();
    if (log_) {
      std::lock_guard lock(routes.mu);
      routes.creating = log_;
    }
    rd_kafka_t* rk = rd_kafka_new(type, conf_, err, sizeof err);
    if (log_) {
      std::lock_guard lock(routes.mu);
      routes.creating = nullptr;
      if (rk) routes.by_handle[rk] = log_;
    }
    if (!rk) throw std::runtime_error(std::string("cannot create Kafka client: ") + err);
    conf_ = nullptr;
    if (type == RD_KAFKA_CONSUMER && listed_ && !group_.empty()) LocalGroups::get().add(bootstrap_, group_);
    return rk;
  }

 private:
  rd_kafka_conf_t* conf_;
  std::shared_ptr<LogSink> log_;
  std::string group_, bootstrap_;
  bool listed_ = true;
};

struct TopicPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    if (l) rd_kafka_topic_partition_list_destroy(l);
  }
};
using TopicPartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, TopicPartitionListDeleter>;

// librdkafka's mock cluster in this process. One per process (ctx.shared<EmbeddedBroker>), or
// the standalone one behind `flowctl broker`.
class EmbeddedBroker {
 public:
  explicit EmbeddedBroker(int default_partitions = 4, int broker_count = 1)
      : default_partitions_(default_partitions) {
    Conf conf;
    conf.set("log_level", "3");  // the mock's own handle is noisy at info level
    rk_ = conf.create(RD_KAFKA_PRODUCER);
    cluster_ = rd_kafka_mock_cluster_new(rk_, broker_count);
    if (!cluster_) {
      rd_kafka_destroy(rk_);
      throw std::runtime_error("cannot start the embedded Kafka broker (librdkafka mock cluster)");
    }
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~EmbeddedBroker() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  int default_partitions() const { return default_partitions_; }

  // Creates `topic` unless this broker already made it; partitions <= 0 means the default.
  void ensure_topic(const std::string& topic, int partitions = 0) {
    std::lock_guard lock(mu_);
    if (topics_.count(topic)) return;
    const int n = partitions > 0 ? partitions : default_partitions_;
    const rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), n, 1);
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
      throw std::runtime_error("embedded broker: cannot create topic '" + topic + "': " + rd_kafka_err2str(err));
    topics_.insert(topic);
  }

  rd_kafka_mock_cluster_t* cluster() { return cluster_; }

 private:
  int default_partitions_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
  std::mutex mu_;
  std::set<std::string> topics_;
};

// Says once when the brokers stop answering and once when they answer again, instead of
// librdkafka's line per failed reconnect (issue 15). install() sets the client's error and log
// callbacks (before rd_kafka_new); attach() ties it to the client; stop() before rd_kafka_destroy.
// While an outage lasts, a thread asks the brokers for metadata every second to see it end.
class Outage {
 public:
  using Log = std::function<void(bool warn, const std::string&)>;  // warn, or info
  Outage(std::string where, Log log) : where_(std::move(where)), log_(std::move(log)) {}
  ~Outage() { stop(); }
  Outage(const Outage&) = delete;
  Outage& operator=(const Outage&) = delete;

  void install(Conf& conf) {
    rd_kafka_conf_set_error_cb(conf.get(), &Outage::on_error);
    rd_kafka_conf_set_log_cb(conf.get(), &Outage::on_log);
  }
  void attach(rd_kafka_t* rk) {
    rk_ = rk;
    std::lock_guard lock(registry_mu());
    registry()[rk] = this;
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    if (rk_) {
      std::lock_guard lock(registry_mu());
      registry().erase(rk_);
      rk_ = nullptr;
    }
  }
  bool down() const { return down_.load(); }
  // The last connection failure librdkafka reported ("Connect to ipv4#127.0.0.1:9 failed:
  // Connection refused"), for error messages.
  std::string last_failure() const {
    std::lock_guard lock(mu_);
    return last_failure_;
  }

 private:
  static std::mutex& registry_mu() {
    static std::mutex m;
    return m;
  }
  static std::map<const rd_kafka_t*, Outage*>& registry() {
    static std::map<const rd_kafka_t*, Outage*> r;
    return r;
  }
  static Outage* find(const rd_kafka_t* rk) {
    std::lock_guard lock(registry_mu());
    auto it = registry().find(rk);
    return it == registry().end() ? nullptr : it->second;
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void*) {
    Outage* o = find(rk);
    if (!o) return;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) o->begin(reason);
    else if (err != RD_KAFKA_RESP_ERR__TRANSPORT)  // per broker, per attempt: the outage says it
      o->log_(true, std::string("Kafka: ") + reason);
  }
  static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    Outage* o = find(rk);
    if (o && std::string_view(fac) == "FAIL") {  // a failed connection: the outage line says it
      std::lock_guard lock(o->mu_);
      o->last_failure_ = buf;
      if (const char* at = std::strstr(buf, ": Connect to ")) o->last_failure_ = at + 2;
      if (const auto cut = o->last_failure_.find(" (after "); cut != std::string::npos) o->last_failure_.resize(cut);
      return;
    }
    LogRoutes::log_cb(rk, level, fac, buf);  // every other line through the stage's logger
  }

  void begin(const char* reason) {
    if (down_.exchange(true)) return;
    since_ = std::chrono::steady_clock::now();
    std::string why = last_failure();
    log_(true, "cannot reach Kafka " + where_ + " (" + (why.empty() ? std::string(reason) : why) +
                   "); retrying until they answer (said once; the end is logged too)");
    std::lock_guard lock(mu_);
    if (watcher_.joinable()) return;
    watcher_ = std::thread([this] { watch(); });
  }

  void watch() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_ || !down_.load()) continue;
      lock.unlock();
      const rd_kafka_metadata_t* md = nullptr;
      const bool up = rd_kafka_metadata(rk_, 0, nullptr, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR;
      if (md) rd_kafka_metadata_destroy(md);
      if (up && down_.exchange(false)) {
        const auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.1f", s);
        log_(false, "Kafka " + where_ + " answer again after " + secs + "s without contact");
      }
      lock.lock();
    }
  }

  std::string where_;
  Log log_;
  rd_kafka_t* rk_ = nullptr;
  std::atomic<bool> down_{false};
  std::chrono::steady_clock::time_point since_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string last_failure_;
  std::thread watcher_;
};

// Checks, within `timeout`, that the brokers answer and that every topic exists. Returns a
// message for the first problem, or nullopt. Asks for all topics so that the check itself never
// auto-creates one. `where` names the brokers as the stage says it ("brokers localhost:9092",
// "embedded broker 127.0.0.1:4021").
inline std::optional<std::string> check_metadata(rd_kafka_t* rk, const std::string& where,
                                                 const std::vector<std::string>& topics,
                                                 std::chrono::milliseconds timeout, const Outage* outage = nullptr) {
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err) {
    const std::string why = outage ? outage->last_failure() : std::string();
    return "cannot reach Kafka " + where + " within " + std::to_string(timeout.count() / 1000) + "s (" +
           (why.empty() ? std::string(rd_kafka_err2str(err)) : why) + ")";
  }
  std::optional<std::string> problem;
  for (const auto& t : topics) {
    bool found = false;
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (t != md->topics[i].topic) continue;
      found = md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[i].partition_cnt > 0;
      if (!found && !problem)
        problem = "topic '" + t + "' on " + where + ": " + rd_kafka_err2str(md->topics[i].err);
      break;
    }
    if (!found && !problem) problem = "topic '" + t + "' does not exist on " + where + " (create it, or check the name)";
  }
  rd_kafka_metadata_destroy(md);
  return problem;
}

// Which offsets of each partition may be committed: the source records every emitted batch's
// range per partition, sinks acknowledge ranges in any order, and the commit point is the start
// of the oldest range not yet acknowledged (or the end of the last range once all are). Offsets
// between two emitted ranges (retention, compaction, control records) need no acknowledgement.
// A partition's ranges carry the generation of its assignment: after a revoke, acknowledgements
// of the old generation are ignored. Thread-safe.
class OffsetTracker {
 public:
  struct Key {
    std::string topic;
    int32_t partition = 0;
    auto operator<=>(const Key&) const = default;
  };

  // Starts (or restarts) tracking a partition; returns its new generation.
  uint64_t assign(const Key& k) {
    std::lock_guard lock(mu_);
    auto& p = parts_[k];
    p = Part{};
    p.generation = ++next_generation_;
    return p.generation;
  }

  // Forgets a partition: pending ranges are dropped, later acknowledgements ignored.
  void revoke(const Key& k) {
    std::lock_guard lock(mu_);
    parts_.erase(k);
  }

  bool tracked(const Key& k) const {
    std::lock_guard lock(mu_);
    return parts_.count(k) != 0;
  }

  uint64_t generation(const Key& k) const {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    return it == parts_.end() ? 0 : it->second.generation;
  }

  // Offsets [begin, end) were emitted, in increasing order per partition. Returns false when
  // the partition is not tracked (or `begin` is not after the last range).
  bool emitted(const Key& k, int64_t begin, int64_t end) {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    if (it == parts_.end() || end <= begin) return false;
    Part& p = it->second;
    if (p.end && begin < *p.end) return false;
    p.pending.emplace(begin, Range{end, false});
    p.end = end;
    return true;
  }

  // Sinks acknowledged [begin, end) of generation `gen`. Unknown ranges are ignored.
  void acked(const Key& k, int64_t begin, int64_t end, uint64_t gen) {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    if (it == parts_.end() || it->second.generation != gen) return;
    Part& p = it->second;
    auto r = p.pending.find(begin);
    if (r == p.pending.end() || r->second.end != end) return;
    r->second.acked = true;
    while (!p.pending.empty() && p.pending.begin()->second.acked) {
      p.committable = p.pending.begin()->second.end;
      p.pending.erase(p.pending.begin());
    }
  }

  // The next offset to read that may be committed (everything before it is durable), if any.
  std::optional<int64_t> committable(const Key& k) const {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    if (it == parts_.end()) return std::nullopt;
    return it->second.committable;
  }

  // Commit points that moved since the last mark_committed().
  std::map<Key, int64_t> uncommitted() const {
    std::lock_guard lock(mu_);
    std::map<Key, int64_t> out;
    for (const auto& [k, p] : parts_)
      if (p.committable && (!p.committed || *p.committed < *p.committable)) out[k] = *p.committable;
    return out;
  }

  // The last offset committed for this partition in this assignment, if any.
  std::optional<int64_t> committed(const Key& k) const {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    return it == parts_.end() ? std::nullopt : it->second.committed;
  }

  void mark_committed(const Key& k, int64_t offset) {
    std::lock_guard lock(mu_);
    auto it = parts_.find(k);
    if (it == parts_.end()) return;
    if (!it->second.committed || *it->second.committed < offset) it->second.committed = offset;
  }

  // Emitted ranges of these partitions not yet acknowledged.
  std::size_t pending_ranges(const std::set<Key>& keys) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& k : keys)
      if (auto it = parts_.find(k); it != parts_.end()) n += it->second.pending.size();
    return n;
  }

  // Offsets of these partitions emitted and not yet acknowledged.
  int64_t pending_offsets(const std::set<Key>& keys) const {
    std::lock_guard lock(mu_);
    int64_t n = 0;
    for (const auto& k : keys)
      if (auto it = parts_.find(k); it != parts_.end())
        for (const auto& [begin, r] : it->second.pending) n += r.acked ? 0 : r.end - begin;
    return n;
  }

  // Emitted records not yet acknowledged (ranges), over all partitions.
  std::size_t pending_ranges() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [k, p] : parts_) n += p.pending.size();
    return n;
  }

 private:
  struct Range {
    int64_t end;
    bool acked;
  };
  struct Part {
    uint64_t generation = 0;
    std::map<int64_t, Range> pending;  // by begin offset
    std::optional<int64_t> end;        // end of the last emitted range
    std::optional<int64_t> committable;
    std::optional<int64_t> committed;
  };
  mutable std::mutex mu_;
  std::map<Key, Part> parts_;
  uint64_t next_generation_ = 0;
};

}  // namespace flow::kafka
