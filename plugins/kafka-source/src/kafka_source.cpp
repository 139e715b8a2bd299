// kafka-source: consumes topics (as a group member, or from an explicit assignment) into raw
// message batches. Offsets are committed only up to what sinks acknowledged contiguously, so a
// crash never loses a record (at-least-once); under backpressure the partitions are paused while
// the consumer keeps polling, so librdkafka's bounded prefetch is all the memory it holds.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "flow/delivery.hpp"
#include "flow/flow.hpp"
#include "flow_kafka/common.hpp"
#include "flow_kafka/plugin_support.hpp"
#include "flow_kafka/watermarks.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using flow::kafka::OffsetTracker;
using Key = OffsetTracker::Key;

// Fault-test hook: FLOW_KAFKA_SOURCE_CRASH_AT=before-commit|after-commit kills the process there.
void crash_point(std::string_view point) {
  if (const char* at = std::getenv("FLOW_KAFKA_SOURCE_CRASH_AT"); at && point == at) std::raise(SIGKILL);
}

bool retriable_commit_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD: return true;
    default: return false;
  }
}

// The group moved on (another member joined or left): a commit can succeed again only after
// this member served the rebalance, which a closing consumer no longer does.
bool rebalance_commit_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR__STATE: return true;
    default: return false;
  }
}

// Logs to stderr when no stage context is bound (between cycles, at teardown).
class StderrLogger : public flow::Logger {
 public:
  void log(flow::LogLevel, std::string_view m) override { std::fprintf(stderr, "kafka-source: %.*s\n", int(m.size()), m.data()); }
};

// librdkafka 2.0.2 stops fetching every partition once the consumer queue they all feed holds
// queued.min.messages or queued.max.messages.kbytes, and decides again only when the leader's
// broker thread next wakes up: on a request or a response, else after up to a second (2.1 added
// fetch.queue.backoff.ms for this). With small limits the consumer sat idle most of the time; with
// large ones the prefetch cost ~100 MiB. Any request to a leader wakes its thread, so once the queue
// has drained to half its limit this sends one from a thread of its own (ListOffsets for the
// assigned partitions, answered from the broker's memory): a small prefetch keeps flowing.
class FetchWaker {
 public:
  explicit FetchWaker(rd_kafka_t* rk) : rk_(rk), thread_([this] { loop(); }) {}
  ~FetchWaker() { stop(); }
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

  // Waits for a request under way (at most 50 ms).
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void add(const Key& k) {
    std::lock_guard lock(mu_);
    parts_.insert(k);
  }
  void remove(const Key& k) {
    std::lock_guard lock(mu_);
    parts_.erase(k);
  }
  // Asks for a request; requests asked for while one is under way are one.
  void wake() {
    {
      std::lock_guard lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || pending_; });
      if (stop_) return;
      pending_ = false;
      if (parts_.empty()) continue;
      flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(parts_.size())));
      for (const auto& k : parts_) rd_kafka_topic_partition_list_add(list.get(), k.topic.c_str(), k.partition)->offset = RD_KAFKA_OFFSET_END;
      lock.unlock();
      // Only the request matters: the broker thread wakes when it is queued. The answer can wait
      // behind a fetch the broker holds (fetch.wait.max.ms at the end of the topic), so do not.
      rd_kafka_offsets_for_times(rk_, list.get(), 50);
      lock.lock();
    }
  }

  rd_kafka_t* rk_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, pending_ = false;
  std::set<Key> parts_;
  std::thread thread_;  // last: started once the members above exist
};

// The consumer and everything it tracks. One per stage; kept across the cycles of a
// `run: {cycles: N}` pipeline so the group membership (and its partitions) survive them.
class KafkaSource {
 public:
  struct Options {
    std::string brokers;
    std::vector<std::string> topics;
    std::string group = "flow";
    std::string start = "earliest";
    std::vector<std::string> partitions;
    int batch_size = 1000;
    flow::Duration batch_timeout{100};
    flow::Duration commit_interval{1000};
    std::map<std::string, std::string> librdkafka;
    flow::Duration max_poll_interval{0};
    int embedded_partitions = 4;
    bool exit_at_end = false;
    std::string on_stop = "immediate";
    flow::Duration drain_timeout{10'000};
    std::string delivery = "exactly-once";
  };

  static flow::PluginInfo info() {
    return {"kafka-source", "1.0.0", flow::StageKind::Source,
            "Consumes Kafka topics into raw message batches; commits only acknowledged offsets"};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "brokers: embedded   # an in-process mock cluster; a real one: host1:9092,host2:9092\ntopics: [readings]\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("brokers", &Options::brokers,
          "Bootstrap servers \"host:port,...\", or \"embedded\" for the in-process mock cluster")
        .required();
    t.add("topics", &Options::topics, "Topics to consume (must exist; created when embedded)").required();
    t.add("group", &Options::group, "Consumer group id (processes sharing it split the partitions)");
    t.add("start", &Options::start, "Where to start when the group has no committed offset").one_of({"earliest", "latest"});
    t.add("partitions", &Options::partitions,
          "Explicit assignment instead of the group's: \"N\" (partition N of every topic) or \"topic:N\"");
    t.add("batch_size", &Options::batch_size, "Most messages per emitted batch").range(1, 1'000'000);
    t.add("batch_timeout", &Options::batch_timeout, "Emit a partial batch after this long");
    t.add("commit_interval", &Options::commit_interval, "How often acknowledged offsets are committed").min(0.001);
    t.add("librdkafka", &Options::librdkafka, "Extra librdkafka properties, passed through verbatim");
    t.add("max_poll_interval", &Options::max_poll_interval,
          "max.poll.interval.ms (0: librdkafka's default); below 45s it also lowers session.timeout.ms");
    t.add("embedded_partitions", &Options::embedded_partitions,
          "With brokers: embedded, partitions of topics this stage creates").range(1, 10000);
    t.add("exit_at_end", &Options::exit_at_end,
          "Return once every assigned partition is read to its end (for batch jobs and benchmarks)");
    t.add("on_stop", &Options::on_stop,
          "At stop: 'immediate', or 'drain' (first emit everything below the high watermarks of that moment)")
        .one_of({"immediate", "drain"});
    t.add("drain_timeout", &Options::drain_timeout, "With on_stop: drain, give up draining after this long")
        .min(0.001);
    t.add("delivery", &Options::delivery,
          "exactly-once: resume from what the sinks committed and let them skip what they hold (falls back, "
          "saying why, when a sink keeps no positions); at-least-once: resume from the group's committed offsets")
        .one_of({"exactly-once", "at-least-once"});
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    const flow::Value* p = config.find("partitions");
    for (const auto& s : o.partitions)
      if (!parse_partition(s, o.topics))
        errors.push_back({p ? p->location() : config.location(),
                          fmt::format("option 'partitions': '{}' is neither N nor topic:N of a listed topic", s)});
    if (o.topics.empty()) errors.push_back({config.location(), "option 'topics': list at least one topic"});
  }

  explicit KafkaSource(Options o) : o_(std::move(o)) {}
  ~KafkaSource() {
    ctx_ = nullptr;
    if (rk_ && o_.partitions.empty()) leave_group();
    destroy();
  }

  // Binds this cycle's context; the consumer is made by the first cycle only.
  void open(flow::Context& ctx) {
    ctx_ = &ctx;
    registry_ = ctx.shared<flow::DeliveryRegistry>(flow::kDeliveryKey, [] { return std::make_shared<flow::DeliveryRegistry>(); });
    records_ = &ctx.counter("records");
    // Run-wide like `records`: a stage restarted by a hot reload goes on counting.
    durable_ = ctx.shared<std::atomic<uint64_t>>("kafka-source.durable." + ctx.stage_id(),
                                                 [] { return std::make_shared<std::atomic<uint64_t>>(0); });
    if (rk_) {  // a later cycle: same membership, same partitions, same positions
      drain_.reset();
      first_record_logged_ = false;
      cycle_records_ = 0;
      ctx.log().info(fmt::format("consuming {} (group membership kept from the previous cycle)", topics_text()));
      return;
    }
    bootstrap_ = flow::kafka::resolve_brokers(ctx, o_.brokers, o_.topics, o_.embedded_partitions, broker_);
    flow::kafka::Conf conf;
    conf.set("bootstrap.servers", bootstrap_)
        .set("group.id", o_.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", o_.start)
        .set("enable.partition.eof", "true")
        // Bounded prefetch: what librdkafka may hold (the consumer queue all partitions feed, plus
        // about one fetch response), whatever the partition count. Kept small: FetchWaker
        // restarts fetching once the queue has drained to half of it, where librdkafka 2.0.2
        // would wait up to a second (see FetchWaker, and bench/kafka for the measurements).
        .set("queued.max.messages.kbytes", std::to_string(kQueuedKbytes))
        .set("queued.min.messages", std::to_string(kQueuedMessages))
        .set("fetch.max.bytes", std::to_string(kFetchMaxBytes))
        // How long a broker may hold a fetch that finds nothing new (500 ms by default). Other
        // requests on that connection wait behind it (the lag queries, FetchWaker's, those of
        // close). On the mock cluster: 250k 1 KiB messages on 64 partitions took 1.6 s after the
        // group join with 500 ms, 0.8 s with 100 ms (bench/kafka).
        .set("fetch.wait.max.ms", "100");
    if (o_.max_poll_interval.count() > 0) {
      const auto ms = o_.max_poll_interval.count();
      conf.set("max.poll.interval.ms", std::to_string(ms));
      // librdkafka requires max.poll.interval.ms >= session.timeout.ms (45s by default).
      if (ms < 45'000 && !o_.librdkafka.count("session.timeout.ms")) {
        conf.set("session.timeout.ms", std::to_string(std::max<int64_t>(ms, 1000)));
        if (!o_.librdkafka.count("heartbeat.interval.ms"))
          conf.set("heartbeat.interval.ms", std::to_string(std::max<int64_t>(ms / 4, 100)));
      }
    }
    conf.set_all(o_.librdkafka);
    queued_messages_ = conf_int(conf, "queued.min.messages", kQueuedMessages);
    queued_bytes_ = conf_int(conf, "queued.max.messages.kbytes", kQueuedKbytes) * 1024;
    rd_kafka_conf_set_opaque(conf.get(), this);
    conf.log_to(flow::kafka::log_sink(ctx.log()));  // librdkafka's lines through the stage's logger
    if (o_.partitions.empty()) rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSource::on_rebalance);
    outage_ = std::make_unique<flow::kafka::Outage>(brokers_text(), [this](bool warn, const std::string& m) {
      if (warn) log().warn(m);
      else log().info(m);
    });
    outage_->install(conf);
    rk_ = conf.create(RD_KAFKA_CONSUMER);
    outage_->attach(rk_);
    marks_ = std::make_unique<flow::kafka::WatermarkWatcher>(rk_, kLagInterval);
    rd_kafka_poll_set_consumer(rk_);
    queue_ = rd_kafka_queue_get_consumer(rk_);
    waker_ = std::make_unique<FetchWaker>(rk_);
    if (o_.max_poll_interval.count() > 0)
      pause_after_ = std::min<Clock::duration>(pause_after_, o_.max_poll_interval / 4);
    if (auto problem = flow::kafka::check_metadata(rk_, brokers_text(), o_.topics, 10s, outage_.get()))
      throw std::runtime_error(*problem);
    // The mock cluster (embedded, or `flowctl broker`: its cluster id says so) starts every log
    // at offset 0 in its own process, so a group that committed nothing and starts at the
    // earliest offset should see offset 0 first: anything later means the broker dropped records
    // (its 5 MiB per partition) before this group read them. On a real cluster the earliest
    // offset is where retention left the log before the group existed: nothing of the group's.
    log_starts_at_zero_ = o_.start == "earliest" && o_.brokers == flow::kafka::kEmbedded;
    if (o_.start == "earliest" && !log_starts_at_zero_)
      if (char* id = rd_kafka_clusterid(rk_, 2000)) {
        log_starts_at_zero_ = std::string_view(id).starts_with("mockCluster");
        rd_kafka_mem_free(rk_, id);
      }

    gaps_ = &ctx.counter("offset_gaps");
    lost_ = &ctx.counter("offsets_skipped");
    commits_ = &ctx.counter("commits");
    commit_errors_ = &ctx.counter("commit_errors");
    wakes_ = &ctx.counter("fetch_wakeups");

    if (o_.partitions.empty()) {
      flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(o_.topics.size())));
      for (const auto& t : o_.topics)
        rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
      if (auto err = rd_kafka_subscribe(rk_, list.get()))
        throw std::runtime_error(fmt::format("cannot subscribe to {}: {}", topics_text(), rd_kafka_err2str(err)));
    }
    ctx.log().info(fmt::format("consuming {} on {} as group '{}'", topics_text(), brokers_text(), o_.group));
  }

  // Every stage is open: the sinks said what they committed. Explicit partitions are assigned
  // here, group partitions in on_rebalance().
  void start() {
    delivery_check();
    if (!o_.partitions.empty() && !assigned_any_) {
      flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(8));
      for (const auto& s : o_.partitions) {
        const auto parsed = parse_partition(s, o_.topics);
        if (!parsed) throw std::runtime_error(fmt::format("option 'partitions': bad entry '{}'", s));
        for (const auto& [topic, part] : *parsed) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), part);
      }
      on_assigned(list.get());
      if (auto err = rd_kafka_assign(rk_, list.get()))
        throw std::runtime_error(fmt::format("cannot assign partitions: {}", rd_kafka_err2str(err)));
    }
  }

  void run(flow::Context& ctx, flow::Emitter& out) {
    start();
    start_batch();
    const auto started = Clock::now();
    auto batch_deadline = started + o_.batch_timeout;
    auto next_commit = started + o_.commit_interval;
    auto next_lag = started;
    while (true) {
      if (ctx.stop_requested()) {
        if (o_.on_stop != "drain") break;
        if (!drain_) begin_drain();
        if (!drain_->targets) record_drain_targets();
        if (drain_->targets && drained()) {
          ctx.log().info(fmt::format("drained: every record below the stop-time high watermarks emitted ({} record(s) "
                                     "since the stop)",
                                     drain_->records));
          break;
        }
        if (Clock::now() >= drain_->deadline) {
          const std::string left = drain_left();
          // Records wait and this cycle consumed none: a stalled cycle must not pass for done.
          if (cycle_records_ == 0 && (!drain_->targets || !drained()))
            throw std::runtime_error(left + "; this cycle consumed nothing (is another member holding the partitions?)");
          ctx.log().warn(left);
          break;
        }
      }
      const bool ready = cur_.num_rows() >= static_cast<std::size_t>(o_.batch_size) ||
                         (cur_.num_rows() > 0 && (Clock::now() >= batch_deadline || drain_ || seal_now_));
      if (ready) {
        // try_emit would need the batch sealed (its offsets registered) first; asking for room
        // first keeps a refused batch unregistered. This stage is the channel's only writer
        // unless the YAML fans in, so room now is room for emit().
        if (out.wait_writable(0ms)) {
          if (!out.emit(seal_batch())) break;  // aborting
          set_paused(false);
          blocked_since_.reset();
          start_batch();
          batch_deadline = Clock::now() + o_.batch_timeout;
        } else if (!paused_ && !blocked_since_) {
          blocked_since_ = Clock::now();
        } else if (!paused_ && Clock::now() - *blocked_since_ < pause_after_) {
          // A short stall: wait without polling (the prefetch queue is bounded anyway);
          // pausing at once would throw away librdkafka's prefetch at every hiccup.
          if (!wait_for_room(out, std::chrono::duration_cast<std::chrono::milliseconds>(pause_after_ / 4))) break;
        } else {
          // A long stall: pause fetching but keep polling, so the group membership survives
          // max.poll.interval.ms and rebalances are served. Messages fetched before the pause
          // still arrive; they join the batch waiting to go out.
          set_paused(true);
          poll(0, 1);  // one message at most: the waiting batch should not outgrow batch_size much
          if (!wait_for_room(out, 50ms)) break;
        }
      } else {
        // Up to the rest of the batch in one call: librdkafka waits until it has that many or
        // the time is up, so a busy topic fills batches without a wake-up per message.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(batch_deadline - Clock::now());
        const int wait = cur_.num_rows() == 0 ? 100 : static_cast<int>(std::clamp<int64_t>(left.count(), 0, 100));
        const std::size_t room = static_cast<std::size_t>(o_.batch_size) - cur_.num_rows();
        poll(drain_ ? std::min(wait, 10) : wait, room);
        if (cur_.num_rows() == 0) batch_deadline = Clock::now() + o_.batch_timeout;
        if (!first_record_logged_ && cur_.num_rows() > 0) {
          first_record_logged_ = true;
          ctx.log().info(fmt::format("first record {:.2f}s after start (group join and first fetch)",
                                     std::chrono::duration<double>(Clock::now() - started).count()));
        }
      }
      if (Clock::now() >= next_commit) {
        commit(false);
        next_commit = Clock::now() + o_.commit_interval;
      }
      if (Clock::now() >= next_lag) {
        update_lag();
        next_lag = Clock::now() + kLagInterval;
      }
      if (o_.exit_at_end && at_end()) {
        ctx.log().info("every assigned partition read to its end (exit_at_end)");
        break;
      }
    }
    if (cur_.num_rows() > 0) out.emit(seal_batch());  // false when aborting: positions forgotten
    set_paused(false);
  }

  // Every stage finished: sinks acknowledged what they made durable. Commit it; leave the group
  // unless another cycle follows (`last` false).
  void close(bool last) {
    if (!rk_) return;
    commit(true);
    note();
    if (last) {
      if (o_.partitions.empty()) leave_group();
      destroy();
    }
    ctx_ = nullptr;
  }

  // Test access.
  const OffsetTracker& tracker() const { return *tracker_; }

  static std::optional<std::vector<std::pair<std::string, int32_t>>> parse_partition(
      const std::string& s, const std::vector<std::string>& topics) {
    std::vector<std::pair<std::string, int32_t>> out;
    const auto colon = s.rfind(':');
    const auto n = flow::parse_int(colon == std::string::npos ? s : s.substr(colon + 1));
    if (!n || *n < 0 || *n > INT32_MAX) return std::nullopt;
    if (colon == std::string::npos) {
      for (const auto& t : topics) out.emplace_back(t, static_cast<int32_t>(*n));
    } else {
      const std::string topic = s.substr(0, colon);
      if (std::find(topics.begin(), topics.end(), topic) == topics.end()) return std::nullopt;
      out.emplace_back(topic, static_cast<int32_t>(*n));
    }
    return out;
  }

 private:
  static constexpr std::size_t kPollMax = 1000;  // messages per rd_kafka_consume_batch_queue call
  // librdkafka's prefetch limits (overridable through `librdkafka:`), for all partitions together.
  static constexpr int64_t kQueuedMessages = 50'000;
  static constexpr int64_t kQueuedKbytes = 8192;
  static constexpr int64_t kFetchMaxBytes = 4 << 20;
  static constexpr std::chrono::milliseconds kLagInterval{1000};  // kafka_partition_lag's refresh

  struct PartState {
    std::optional<int64_t> expected;  // next offset we expect to see (gap detection)
    bool eof = false;
    std::optional<int64_t> eof_at;  // where the last end-of-partition event was
    // Offsets [begin, end) of this partition in the batch being built.
    bool in_batch = false;
    int64_t begin = 0;
    int64_t end = 0;
    // on_stop: drain: the high watermark (and low one) when the stop came.
    std::optional<int64_t> drain_to;
    int64_t drain_from = 0;
    // Exactly-once: the sinks' committed ends above the resume offset (sorted), the highest one.
    std::vector<int64_t> cuts;
    std::optional<int64_t> replay_end;
    std::optional<int64_t> resumed_from;
    std::optional<int64_t> group_offset;  // the group's committed offset at assignment
    flow::Gauge* lag = nullptr;           // kafka_partition_lag{topic,partition}
  };
  struct Drain {
    Clock::time_point deadline;
    bool targets = false;  // watermarks recorded (needs an assignment first)
    uint64_t records = 0;
  };

  flow::Logger& log() {
    static StderrLogger fallback;
    return ctx_ ? ctx_->log() : fallback;
  }

  void start_batch() {
    cur_ = flow::Batch(flow::raw_message_schema());
    for (auto& [k, ps] : parts_) ps.in_batch = false;
    seal_now_ = false;
    cur_part_ = nullptr;
  }

  // Consumes up to `max` messages (waiting up to `timeout_ms` for them) into the current batch.
  // A message that cannot join the batch being built (a replayed range must go out alone, see
  // fits()) waits in the backlog, with those after it, and the batch is sealed first.
  void poll(int timeout_ms, std::size_t max) {
    max = std::clamp<std::size_t>(max, 1, kPollMax);
    while (!backlog_.empty() && max > 0) {
      if (!handle(backlog_.front())) {
        seal_now_ = true;
        return;
      }
      backlog_.pop_front();
      --max;
    }
    if (!backlog_.empty() || max == 0) return;
    const ssize_t n = rd_kafka_consume_batch_queue(queue_, timeout_ms, msgs_.data(), max);
    if (n < 0) {
      log().warn(fmt::format("consumer: {}", rd_kafka_err2str(rd_kafka_last_error())));
      return;
    }
    wake_fetcher(n, max);
    for (ssize_t i = 0; i < n; ++i) {
      bool taken = false;
      try {
        taken = handle(msgs_[static_cast<std::size_t>(i)]);
      } catch (...) {
        for (ssize_t j = i + 1; j < n; ++j) rd_kafka_message_destroy(msgs_[static_cast<std::size_t>(j)]);
        throw;
      }
      if (!taken) {
        seal_now_ = true;
        for (ssize_t j = i; j < n; ++j) backlog_.push_back(msgs_[static_cast<std::size_t>(j)]);
        return;
      }
    }
  }

  // Wakes librdkafka's fetcher (see FetchWaker) when the consumer queue drops to half its limit,
  // in messages or (at the average payload size seen) in bytes. Waking a fetcher that is busy
  // costs one small request, so this fires once per crossing, not while the queue stays low; and,
  // in case the byte estimate missed the fetcher's stop, when the queue ran dry after holding a
  // quarter of the limit since the last wake-up, while a partition has more to read and none is
  // paused (a consumer keeping up with a live topic never sees its queue that full).
  void wake_fetcher(ssize_t got, std::size_t asked) {
    for (ssize_t i = 0; i < got; ++i) seen_bytes_ += msgs_[static_cast<std::size_t>(i)]->len;
    seen_msgs_ += static_cast<uint64_t>(got);
    int64_t limit = queued_messages_;
    if (seen_msgs_ > 0) limit = std::min<int64_t>(limit, queued_bytes_ / std::max<int64_t>(int64_t(seen_bytes_ / seen_msgs_), 1));
    const int64_t q = rd_kafka_queue_length(queue_);
    peak_queued_ = std::max(peak_queued_, q + got);
    bool wake = q <= limit / 2 && last_queued_ > limit / 2;
    if (!wake && q == 0 && static_cast<std::size_t>(got) < asked && !paused_ && peak_queued_ >= limit / 4 &&
        Clock::now() - last_wake_ >= 50ms)
      wake = std::any_of(parts_.begin(), parts_.end(), [](const auto& p) { return !p.second.eof; });
    if (wake) {
      waker_->wake();
      wakes_->add();
      last_wake_ = Clock::now();
      peak_queued_ = 0;
    }
    last_queued_ = q;
  }

  // Waits for room downstream; false when the pipeline aborts (a cancelled channel answers
  // at once instead of after the timeout).
  static bool wait_for_room(flow::Emitter& out, std::chrono::milliseconds timeout) {
    const auto t0 = Clock::now();
    if (out.wait_writable(timeout)) return true;
    return Clock::now() - t0 >= timeout / 2;
  }

  void begin_drain() {
    drain_.emplace();
    drain_->deadline = Clock::now() + o_.drain_timeout;
    log().info(fmt::format("stop requested: draining up to the current high watermarks (at most {}s)",
                                 std::chrono::duration<double>(o_.drain_timeout).count()));
  }

  // Records each assigned partition's high watermark: "everything produced before the stop".
  // A group member that has no assignment yet waits for it (within drain_timeout).
  void record_drain_targets() {
    if (!assigned_any_) return;
    for (auto& [k, ps] : parts_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_->deadline - Clock::now());
      int64_t lo = 0, hi = 0;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_, k.topic.c_str(), k.partition, &lo, &hi,
                                                                 static_cast<int>(std::clamp<int64_t>(left.count(), 1, 5000)));
      if (err) err = rd_kafka_get_watermark_offsets(rk_, k.topic.c_str(), k.partition, &lo, &hi);  // last fetch's
      if (err || hi < 0) {
        log().warn(fmt::format("drain: no high watermark for {}[{}] ({}); not waiting for it", k.topic,
                                     k.partition, rd_kafka_err2str(err)));
        continue;
      }
      ps.drain_to = hi;
      ps.drain_from = std::max<int64_t>(lo, 0);
    }
    drain_->targets = true;
  }

  // Offsets below the stop-time high watermark not yet consumed, per partition.
  int64_t drain_missing(const PartState& ps) const {
    if (!ps.drain_to) return 0;
    int64_t at = std::max(ps.expected.value_or(ps.drain_from), ps.eof_at.value_or(ps.drain_from));
    return std::max<int64_t>(*ps.drain_to - at, 0);
  }

  bool drained() const {
    for (const auto& [k, ps] : parts_)
      if (drain_missing(ps) > 0) return false;
    return true;
  }

  std::string drain_left() const {
    int64_t missing = 0;
    int partitions = 0;
    for (const auto& [k, ps] : parts_)
      if (const int64_t n = drain_missing(ps); n > 0) {
        missing += n;
        ++partitions;
      }
    if (!drain_->targets)
      return fmt::format("drain_timeout ({}s) passed before any partition was assigned: nothing drained",
                         std::chrono::duration<double>(o_.drain_timeout).count());
    return fmt::format(
        "drain_timeout ({}s) passed: {} record(s) of {} partition(s) below the stop-time high watermarks left "
        "unconsumed (uncommitted: the next run reads them)",
        std::chrono::duration<double>(o_.drain_timeout).count(), missing, partitions);
  }

  // Turns the batch under construction into an emittable one: registers its ranges with the
  // tracker and attaches positions whose acknowledgement feeds the tracker.
  flow::Batch seal_batch() {
    std::vector<flow::PositionRange> ranges;
    std::vector<uint64_t> gens;
    for (auto& [k, ps] : parts_) {
      if (!ps.in_batch) continue;
      ps.in_batch = false;
      if (!tracker_->emitted(k, ps.begin, ps.end)) continue;
      ranges.push_back({k.topic, k.partition, ps.begin, ps.end});
      gens.push_back(tracker_->generation(k));
    }
    flow::Batch b = std::move(cur_);
    auto tracker = tracker_;
    auto durable = durable_;
    b.positions() = flow::Positions::track(ranges, [tracker, gens, durable](const std::vector<flow::PositionRange>& acked) {
      for (std::size_t i = 0; i < acked.size() && i < gens.size(); ++i) {
        tracker->acked({acked[i].source, acked[i].partition}, acked[i].begin, acked[i].end, gens[i]);
        durable->fetch_add(static_cast<uint64_t>(acked[i].end - acked[i].begin), std::memory_order_relaxed);
      }
    });
    return b;
  }

  // Takes `m` into the batch being built (true), or leaves it untouched (false) when it must
  // start a new batch.
  bool handle(rd_kafka_message_t* m) {
    if (!m->err) {
      if (PartState* ps = find_part(m); ps && !fits(*ps, m->offset)) return false;
    }
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> guard(m, rd_kafka_message_destroy);
    const char* topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (PartState* ps = find_part(m)) {
          ps->eof = true;
          ps->eof_at = m->offset;
        }
        return true;
      }
      char fatal[256];
      if (rd_kafka_fatal_error(rk_, fatal, sizeof fatal))
        throw std::runtime_error(fmt::format("fatal Kafka error on {}: {}", brokers_text(), fatal));
      if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        throw std::runtime_error(fmt::format("topic '{}' on {}: {}", topic, brokers_text(), rd_kafka_message_errstr(m)));
      log().warn(fmt::format("consumer: {} ({})", rd_kafka_message_errstr(m), rd_kafka_err2name(m->err)));
      return true;
    }
    PartState* found = find_part(m);
    if (!found) return true;  // a revoked partition's leftover
    PartState& ps = *found;
    ps.eof = false;
    if (ps.expected && m->offset > *ps.expected) {
      const int64_t missing = m->offset - *ps.expected;
      gaps_->add();
      lost_->add(static_cast<uint64_t>(missing));
      if (exactly_once_) {
        // Records gone from the broker before they were read: exactly-once cannot hold; stop
        // rather than go on as if nothing happened (issue 15). Nothing past the gap is emitted.
        log().error(fmt::format("{}[{}]: {} record(s) lost before this stage read them: offsets {} to {} are no longer "
                                "on the broker (retention; the embedded broker keeps at most 5 MiB per partition)",
                                topic, m->partition, missing, *ps.expected, m->offset - 1));
        throw std::runtime_error(fmt::format(
            "{} record(s) of {}[{}] were dropped by the broker before they were consumed, so delivery: exactly-once "
            "cannot hold; use more partitions or a longer retention, and to go on accepting the loss run once with "
            "delivery: at-least-once",
            missing, topic, m->partition));
      }
      log().warn(fmt::format("offset gap on {}[{}]: expected offset {}, got {} ({} record(s) skipped: retention, "
                                   "compaction or an offset reset)",
                                   topic, m->partition, *ps.expected, m->offset, missing));
    }
    if (ps.resumed_from && m->offset < *ps.resumed_from) {
      // The log restarted below what the sinks committed (the topic was deleted and created
      // again, or the offset reset): the sinks' positions belong to the old log.
      reset_below_++;
      log().error(fmt::format("{}[{}]: offset {} is below the sinks' committed end {} (the topic was recreated?); "
                              "the sinks skip what they believe committed: clear their checkpoint for a new topic",
                              topic, m->partition, m->offset, *ps.resumed_from));
      ps.resumed_from.reset();
    }
    ps.expected = m->offset + 1;
    if (!ps.in_batch) {
      ps.in_batch = true;
      ps.begin = m->offset;
    }
    ps.end = m->offset + 1;
    if (drain_) ++drain_->records;
    if (m->key) cur_.column(0).append_string({static_cast<const char*>(m->key), m->key_len});
    else cur_.column(0).append_null();
    if (m->payload) cur_.column(1).append_string({static_cast<const char*>(m->payload), m->len});
    else cur_.column(1).append_null();
    cur_.column(2).append_string(topic);
    cur_.column(3).append_int64(m->partition);
    cur_.column(4).append_int64(m->offset);
    rd_kafka_timestamp_type_t tstype;
    const int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    if (ts >= 0) cur_.column(5).append_timestamp(ts * 1000);
    else cur_.column(5).append_null();
    ++cycle_records_;
    records_->add();
    if (ps.replay_end && m->offset < *ps.replay_end) ++replayed_;
    return true;
  }

  // Exactly-once holds when every sink this stage's records reach keeps its committed input
  // positions durably (and published them when it opened).
  void delivery_check() {
    exactly_once_ = false;
    delivery_reason_.clear();
    if (o_.delivery != "exactly-once") {
      delivery_reason_ = "delivery: at-least-once was asked for";
      return;
    }
    const auto sinks = registry_->sinks_of(ctx_->stage_id());
    if (sinks.empty()) {
      delivery_reason_ = "no sink is known to receive this stage's records";
    } else {
      for (const auto& sink : sinks)
        if (!registry_->committed(sink.id)) {
          delivery_reason_ = fmt::format("sink '{}' (plugin {}) keeps no durable record of the input positions it "
                                         "committed",
                                         sink.id, sink.plugin);
          break;
        }
      exactly_once_ = delivery_reason_.empty();
      // The embedded broker's log dies with the process: what sinks committed from an earlier
      // process's broker says nothing about this one, so nothing resumes from it or is skipped.
      resume_ = exactly_once_ && o_.brokers != flow::kafka::kEmbedded;
      if (resume_)
        for (const auto& t : o_.topics) registry_->mark_replayable(t);
    }
    if (!exactly_once_)
      log().warn(fmt::format("at-least-once delivery: {}; after a crash, records consumed since the last offset commit "
                             "are written again",
                             delivery_reason_));
  }

  // Where partition `k` resumes: the lowest of the sinks' committed ends, each at least the
  // group's committed offset (committed only once every sink acknowledged, so below it every
  // sink holds what it should). nullopt when a sink knows nothing of it: from the group's
  // offset or `start`, with the sinks that know more skipping what they hold.
  std::optional<int64_t> resume_from(const Key& k, std::optional<int64_t> kafka, PartState& ps) {
    std::optional<int64_t> from;
    bool unknown = false;
    const auto sinks = registry_->sinks_of(ctx_->stage_id());
    for (const auto& sink : sinks) {
      std::optional<int64_t> end = kafka;
      if (const auto c = registry_->committed(sink.id))
        if (auto it = c->find({k.topic, k.partition}); it != c->end()) end = std::max(end.value_or(it->second), it->second);
      if (!end) {
        unknown = true;
        continue;
      }
      from = std::min(from.value_or(*end), *end);
      ps.cuts.push_back(*end);
    }
    // Every sink behind the group's offset: another member (or an earlier run with other
    // directories) committed past what these sinks hold.
    bool behind = kafka.has_value();
    for (const auto& sink : sinks)
      if (const auto c = behind ? registry_->committed(sink.id) : std::nullopt)
        if (auto it = c->find({k.topic, k.partition}); it != c->end() && it->second >= *kafka) behind = false;
    if (behind && kafka && *kafka > 0) taken_over_.push_back(fmt::format("{}[{}]@{}", k.topic, k.partition, *kafka));
    std::sort(ps.cuts.begin(), ps.cuts.end());
    ps.cuts.erase(std::unique(ps.cuts.begin(), ps.cuts.end()), ps.cuts.end());
    if (unknown) from.reset();
    if (from) ps.cuts.erase(ps.cuts.begin(), std::upper_bound(ps.cuts.begin(), ps.cuts.end(), *from));
    if (!ps.cuts.empty()) ps.replay_end = ps.cuts.back();
    return from;
  }

  // The end-of-run line: what this run guaranteed.
  void note() {
    std::string line;
    if (exactly_once_ && reset_below_ > 0) {
      line = fmt::format("delivery '{}': NOT exactly-once: {} partition(s) restarted below the sinks' committed end "
                         "(topic recreated?); see the errors above",
                         ctx_->stage_id(), reset_below_);
    } else if (exactly_once_) {
      line = fmt::format("delivery '{}': exactly-once: {} records committed, {} replayed records written twice "
                         "({} consumed; {} replayed after a restart, each skipped by the sinks that held it)",
                         ctx_->stage_id(), durable_->load(), registry_->rewritten(), records_->value(), replayed_);
      if (rebalance_dups_ > 0)
        line += fmt::format("; {} record(s) possibly written twice across members: handed over on a rebalance "
                            "whose offset commit the broker refused",
                            rebalance_dups_);
    } else {
      line = fmt::format("delivery '{}': at-least-once ({}): {} records committed; after a crash, records since the last "
                         "offset commit are written again",
                         ctx_->stage_id(), delivery_reason_, durable_->load());
    }
    registry_->note(ctx_->stage_id(), line);
  }

  // Exactly-once replay: below the highest committed end of its sinks, a partition's records go
  // out in batches of that partition alone that never cross one sink's committed end, so each
  // sink finds a replayed batch either wholly committed (skipped) or wholly new.
  bool fits(PartState& ps, int64_t offset) {
    const bool replay = ps.replay_end && offset < *ps.replay_end;
    const int64_t seg = replay ? std::upper_bound(ps.cuts.begin(), ps.cuts.end(), offset) - ps.cuts.begin() : -1;
    if (cur_.num_rows() == 0) {
      cur_part_ = replay ? &ps : nullptr;
      cur_seg_ = seg;
      cur_replay_ = replay;
      return true;
    }
    if (!replay && !cur_replay_) return true;
    return replay && cur_replay_ && cur_part_ == &ps && cur_seg_ == seg;
  }

  // The tracked partition a message belongs to, or nullptr (revoked, never assigned). Messages
  // arrive in runs per partition, so the last answer is usually the next one too.
  PartState* find_part(const rd_kafka_message_t* m) {
    if (!m->rkt) return nullptr;
    if (last_part_ && m->rkt == last_rkt_ && m->partition == last_partition_) return last_part_;
    auto it = parts_.find(Key{rd_kafka_topic_name(m->rkt), m->partition});
    if (it == parts_.end()) return nullptr;
    last_rkt_ = m->rkt;
    last_partition_ = m->partition;
    last_part_ = &it->second;
    return last_part_;
  }

  bool at_end() {
    if (parts_.empty() || !assigned_any_ || !backlog_.empty()) return false;
    for (const auto& [k, p] : parts_)
      if (!p.eof) return false;
    return cur_.num_rows() == 0;
  }

  void set_paused(bool pause) {
    if (pause == paused_ || !rk_) return;
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_, &list) == RD_KAFKA_RESP_ERR_NO_ERROR && list) {
      flow::kafka::TopicPartitionList guard(list);
      if (pause) rd_kafka_pause_partitions(rk_, list);
      else rd_kafka_resume_partitions(rk_, list);
    }
    paused_ = pause;
    log().debug(pause ? "downstream full: partitions paused" : "partitions resumed");
  }

  // Commits acknowledged offsets (all, or only `only` partitions). Final: retry transient errors.
  void commit(bool final, const std::set<Key>* only = nullptr) {
    const auto deadline = Clock::now() + 10s;
    for (int attempt = 0;; ++attempt) {
      auto points = tracker_->uncommitted();
      if (only)
        for (auto it = points.begin(); it != points.end();) it = only->count(it->first) ? std::next(it) : points.erase(it);
      if (points.empty()) return;
      flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(points.size())));
      for (const auto& [k, off] : points)
        rd_kafka_topic_partition_list_add(list.get(), k.topic.c_str(), k.partition)->offset = off;
      crash_point("before-commit");
      rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list.get(), 0);
      crash_point("after-commit");
      if (!err) {
        for (int i = 0; i < list->cnt; ++i) {
          const auto& tp = list->elems[i];
          if (tp.err) err = tp.err;
          else tracker_->mark_committed({tp.topic, tp.partition}, tp.offset);
        }
      }
      if (!err) {
        commits_->add();
        return;
      }
      commit_errors_->add();
      if ((only || final) && rebalance_commit_error(err) && handover_commit(list.get(), err)) return;
      if (final && rebalance_commit_error(err)) {
        log().warn(fmt::format(
            "final offset commit refused while the group rebalances ({}): the records of {} partition(s) after their "
            "last commit go again to the next owner (at-least-once)",
            rd_kafka_err2str(err), points.size()));
        return;
      }
      if (!final || !retriable_commit_error(err) || Clock::now() >= deadline) {
        const char* what = final ? "" : only ? " (revoked partitions: the next owner reads their records again)"
                                             : " (retried at the next interval)";
        const auto msg = fmt::format("offset commit failed{}: {}", what, rd_kafka_err2str(err));
        if (final) log().error(msg);
        else log().warn(msg);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * std::min(attempt + 1, 5)));
    }
  }

  void on_assigned(rd_kafka_topic_partition_list_t* parts) {
    // Gap detection starts from the committed offset (an offset reset past it is a gap).
    flow::kafka::TopicPartitionList committed(rd_kafka_topic_partition_list_copy(parts));
    const bool have_committed = rd_kafka_committed(rk_, committed.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    flow::kafka::TopicPartitionList handed(rd_kafka_topic_partition_list_copy(parts));
    const bool have_handed = exactly_once_ && rd_kafka_committed(handover(), handed.get(), 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    std::string names;
    last_part_ = nullptr;
    for (int i = 0; i < parts->cnt; ++i) {
      const Key k{parts->elems[i].topic, parts->elems[i].partition};
      tracker_->assign(k);
      PartState ps;
      if (ctx_) ps.lag = &ctx_->gauge("kafka_partition_lag", {{"topic", k.topic}, {"partition", std::to_string(k.partition)}});
      marks_->add({k.topic, k.partition});
      waker_->add(k);
      std::optional<int64_t> kafka;
      if (have_committed && committed->elems[i].offset >= 0 && !committed->elems[i].err)
        kafka = committed->elems[i].offset;
      if (have_handed && handed->elems[i].offset >= 0 && !handed->elems[i].err && handed->elems[i].offset > kafka.value_or(-1)) {
        kafka = handed->elems[i].offset;  // handed over by the previous owner (see handover())
        log().info(fmt::format("{}[{}]: starting at offset {}, handed over by the previous owner", k.topic, k.partition, *kafka));
      }
      ps.expected = kafka;
      if (!kafka && log_starts_at_zero_) ps.expected = 0;  // see open()
      ps.group_offset = kafka;
      if (resume_) {
        if (const auto from = resume_from(k, kafka, ps)) {
          ps.resumed_from = *from;
          parts->elems[i].offset = *from;  // rd_kafka_assign starts here
          ps.expected = *from;
          names += fmt::format("{}{}[{}]@{}", names.empty() ? "" : " ", k.topic, k.partition, *from);
          parts_[k] = ps;
          continue;
        }
      }
      parts_[k] = ps;
      names += fmt::format("{}{}[{}]", names.empty() ? "" : " ", k.topic, k.partition);
    }
    assigned_any_ = true;
    log().info(fmt::format("assigned {} partition(s): {}", parts->cnt, names));
    if (!taken_over_.empty()) {
      std::string list;
      for (const auto& t : taken_over_) list += (list.empty() ? "" : " ") + t;
      log().info(fmt::format(
          "resumed {} at the group's committed offset, which is past what this member's sinks hold: exactly-once "
          "across members needs the previous owner to have stopped gracefully; one killed with kill -9 may have "
          "written records past that offset into its own directories (not visible, so not counted, here)",
          list));
      taken_over_.clear();
    }
  }

  void on_revoked(rd_kafka_topic_partition_list_t* parts) {
    std::set<Key> lost;
    for (int i = 0; i < parts->cnt; ++i) lost.insert({parts->elems[i].topic, parts->elems[i].partition});
    drop_rows(lost);
    if (exactly_once_ && !closing_) {
      // Before another member reads them: everything emitted of these partitions made durable
      // by the sinks (they commit their open parts now), and its offsets committed.
      registry_->begin_flush();
      const auto deadline = Clock::now() + 10s;
      while (tracker_->pending_ranges(lost) > 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
      registry_->end_flush();
      if (const auto left = tracker_->pending_ranges(lost)) {
        rebalance_dups_ += static_cast<uint64_t>(tracker_->pending_offsets(lost));
        log().warn(fmt::format("rebalance: {} emitted range(s) of the revoked partitions were not durable within 10s; "
                               "the next owner reads them again (possible duplicates)", left));
      }
    }
    commit(false, &lost);  // what sinks already made durable
    if (exactly_once_ && !closing_) {
      // Durable here but not committed (the broker refused the commit: librdkafka's mock cluster
      // refuses every commit once a rebalance started): the next owner reads these again.
      uint64_t open = 0;
      for (const auto& [k, point] : tracker_->uncommitted())
        if (lost.count(k)) {
          const auto ps = parts_.find(k);
          const int64_t base = tracker_->committed(k).value_or(ps == parts_.end() ? 0 : ps->second.group_offset.value_or(0));
          open += static_cast<uint64_t>(std::max<int64_t>(point - base, 0));
        }
      if (open > 0) {
        rebalance_dups_ += open;
        log().warn(fmt::format("rebalance: {} record(s) of the revoked partitions are durable here but their offsets "
                               "could not be committed; the next owner may write them again (counted as possible "
                               "duplicates)",
                               open));
      }
    }
    last_part_ = nullptr;
    for (const auto& k : lost) {
      tracker_->revoke(k);
      forget_lag(k);
      parts_.erase(k);
    }
    drop_rows(lost);
    log().info(fmt::format("{} {} partition(s)", closing_ ? "released" : "revoked", parts->cnt));
  }

  // A companion group that no member joins, "<group>.flow-handover", for the offsets of
  // partitions this member gives up when the group itself refuses the commit. librdkafka's mock
  // cluster (the embedded broker, `flowctl broker`) refuses every commit once a rebalance has
  // started, and a real broker one that comes after the generation moved on; a group without
  // members takes a commit at any time (as from a standalone consumer). The next owner reads
  // both groups when it is assigned a partition and starts at the higher offset: below either,
  // every record is durable in some member's output. Created on first use, one connection.
  rd_kafka_t* handover() {
    if (!handover_) {
      flow::kafka::Conf conf;
      conf.set_all(o_.librdkafka)  // security settings, timeouts
          .set("bootstrap.servers", bootstrap_)
          .set("group.id", o_.group + ".flow-handover")
          .set("enable.auto.commit", "false");
      conf.log_to(flow::kafka::log_sink(log()));
      handover_ = conf.create(RD_KAFKA_CONSUMER);
    }
    return handover_;
  }

  // Commits `list` (revoked partitions) to the handover group after the group refused it with
  // `refused`. True when it took them.
  bool handover_commit(rd_kafka_topic_partition_list_t* list, rd_kafka_resp_err_t refused) {
    if (!exactly_once_) return false;
    rd_kafka_resp_err_t err = rd_kafka_commit(handover(), list, 0);
    for (int i = 0; !err && i < list->cnt; ++i) err = list->elems[i].err;
    if (err) {
      log().warn(fmt::format("rebalance: the handover commit failed too ({}); the next owner may read {} partition(s) "
                             "again", rd_kafka_err2str(err), list->cnt));
      return false;
    }
    for (int i = 0; i < list->cnt; ++i) tracker_->mark_committed({list->elems[i].topic, list->elems[i].partition}, list->elems[i].offset);
    commits_->add();
    log().info(fmt::format("rebalance: the group refused the commit of {} revoked partition(s) ({}); committed them to "
                           "'{}.flow-handover' for the next owner",
                           list->cnt, rd_kafka_err2str(refused), o_.group));
    return true;
  }

  // Sets each partition's kafka_partition_lag: its high watermark minus the next offset this
  // stage reads (records on the broker that it has not taken yet).
  void update_lag() {
    for (auto& [k, ps] : parts_) {
      if (!ps.lag) continue;
      const auto m = marks_->marks({k.topic, k.partition});
      std::optional<int64_t> at = ps.expected ? ps.expected : ps.eof_at;
      if (!at) at = o_.start == "latest" ? m.high : m.low;  // nothing read and no committed offset yet
      if (m.high < 0 || *at < 0) continue;
      ps.lag->set(std::max<int64_t>(m.high - *at, 0));
    }
  }

  // A revoked partition's lag leaves the metrics (the next owner reports it).
  void forget_lag(const Key& k) {
    if (auto it = parts_.find(k); it != parts_.end() && it->second.lag) it->second.lag->clear();
    marks_->remove({k.topic, k.partition});
    waker_->remove(k);
  }

  // Removes the batch under construction's rows (and waiting messages) of revoked partitions.
  void drop_rows(const std::set<Key>& lost) {
    for (auto it = backlog_.begin(); it != backlog_.end();) {
      const rd_kafka_message_t* m = *it;
      if (m->rkt && lost.count(Key{rd_kafka_topic_name(m->rkt), m->partition})) {
        rd_kafka_message_destroy(*it);
        it = backlog_.erase(it);
      } else {
        ++it;
      }
    }
    if (cur_.num_rows() == 0) return;
    flow::Batch kept(flow::raw_message_schema());
    for (std::size_t i = 0; i < cur_.num_rows(); ++i) {
      const Key k{std::string(cur_.column(2).string_at(i)), static_cast<int32_t>(cur_.column(3).int64_at(i))};
      if (lost.count(k)) continue;
      for (std::size_t c = 0; c < cur_.num_columns(); ++c) kept.column(c).append_from(cur_.column(c), i);
    }
    cur_ = std::move(kept);
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<KafkaSource*>(opaque);
    const bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->on_assigned(parts);
      if (cooperative) rd_kafka_incremental_assign(rk, parts);
      else rd_kafka_assign(rk, parts);
      if (self->paused_) rd_kafka_pause_partitions(rk, parts);
    } else {
      self->on_revoked(parts);
      if (cooperative) rd_kafka_incremental_unassign(rk, parts);
      else rd_kafka_assign(rk, nullptr);
    }
  }

  // An integer property as librdkafka holds it (after `librdkafka:` overrides), or `fallback`.
  static int64_t conf_int(flow::kafka::Conf& conf, const char* key, int64_t fallback) {
    char buf[64];
    size_t size = sizeof buf;
    if (rd_kafka_conf_get(conf.get(), key, buf, &size) != RD_KAFKA_CONF_OK) return fallback;
    return flow::parse_int(buf).value_or(fallback);
  }

  std::string brokers_text() const {
    return o_.brokers == flow::kafka::kEmbedded ? "embedded broker " + bootstrap_ : "brokers " + bootstrap_;
  }
  std::string topics_text() const {
    std::string s;
    for (const auto& t : o_.topics) s += (s.empty() ? "'" : ", '") + t + "'";
    return s;
  }

  // Unsubscribes and serves the queue until the revocation went through, so that
  // rd_kafka_consumer_close() finds nothing left to revoke. librdkafka 2.0.2's close can hang for
  // good in its internal rd_kafka_assign() when a rebalance (another member leaving) is under
  // way as it starts (librdkafka issues #4527, #4884; the workaround given there is this one).
  void leave_group() {
    closing_ = true;
    if (auto err = rd_kafka_unsubscribe(rk_)) {
      log().warn(fmt::format("unsubscribe failed: {}", rd_kafka_err2str(err)));
      return;
    }
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      // Messages fetched after the stop are not emitted: uncommitted, the next owner reads them.
      if (rd_kafka_message_t* m = rd_kafka_consume_queue(queue_, 50)) rd_kafka_message_destroy(m);
      rd_kafka_topic_partition_list_t* held = nullptr;
      if (rd_kafka_assignment(rk_, &held) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
      const int n = held->cnt;
      rd_kafka_topic_partition_list_destroy(held);
      if (n == 0) return;
    }
    log().warn("leaving the group: partitions still assigned after 10s; closing anyway");
  }

  void destroy() {
    if (!rk_) return;
    closing_ = true;
    if (marks_) marks_->stop();  // before the handle it queries goes
    if (waker_) waker_->stop();
    for (const auto& [k, ps] : parts_)
      if (ps.lag) ps.lag->clear();
    for (auto* m : backlog_) rd_kafka_message_destroy(m);
    backlog_.clear();
    if (queue_) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    rd_kafka_consumer_close(rk_);
    if (outage_) outage_->stop();
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    if (handover_) rd_kafka_destroy(handover_);  // never subscribed: nothing to leave
    handover_ = nullptr;
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  std::shared_ptr<flow::kafka::EmbeddedBroker> broker_;
  std::string bootstrap_;
  std::unique_ptr<flow::kafka::Outage> outage_;  // before rk_: stopped before it is destroyed
  rd_kafka_t* handover_ = nullptr;  // see handover()
  rd_kafka_t* rk_ = nullptr;
  std::unique_ptr<flow::kafka::WatermarkWatcher> marks_;  // stopped in destroy(), before rk_ goes
  std::unique_ptr<FetchWaker> waker_;                      // the same
  int64_t queued_messages_ = kQueuedMessages, queued_bytes_ = kQueuedKbytes * 1024;
  int64_t last_queued_ = 0;                                // the consumer queue's length at the last poll
  int64_t peak_queued_ = 0;                                // its most since the last wake-up
  uint64_t seen_msgs_ = 0, seen_bytes_ = 0;                // payload sizes, for the byte limit in messages
  Clock::time_point last_wake_{};
  flow::Counter* wakes_ = nullptr;                         // fetch_wakeups: FetchWaker requests asked for
  std::shared_ptr<OffsetTracker> tracker_ = std::make_shared<OffsetTracker>();
  std::map<Key, PartState> parts_;
  rd_kafka_queue_t* queue_ = nullptr;
  std::vector<rd_kafka_message_t*> msgs_ = std::vector<rd_kafka_message_t*>(kPollMax);
  const rd_kafka_topic_t* last_rkt_ = nullptr;
  int32_t last_partition_ = -1;
  PartState* last_part_ = nullptr;
  std::optional<Drain> drain_;
  bool first_record_logged_ = false;
  flow::Batch cur_;
  bool paused_ = false;
  std::optional<Clock::time_point> blocked_since_;
  Clock::duration pause_after_ = 500ms;  // blocked this long: pause and keep polling
  bool assigned_any_ = false;
  bool closing_ = false;
  flow::Counter* gaps_ = nullptr;
  flow::Counter* lost_ = nullptr;
  flow::Counter* commits_ = nullptr;
  flow::Counter* commit_errors_ = nullptr;
  flow::Counter* records_ = nullptr;
  std::shared_ptr<flow::DeliveryRegistry> registry_;
  bool exactly_once_ = false;
  bool resume_ = false;  // resume from the sinks' committed ends (not with the embedded broker)
  bool log_starts_at_zero_ = false;  // the mock cluster, read from the earliest offset (see open())
  uint64_t reset_below_ = 0;
  std::vector<std::string> taken_over_;  // partitions resumed at another member's commit
  // Offsets every sink acknowledged (made durable or skipped as already held), for the end line.
  std::shared_ptr<std::atomic<uint64_t>> durable_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::string delivery_reason_;                // why not exactly-once
  std::deque<rd_kafka_message_t*> backlog_;    // consumed, waiting for the next batch
  bool seal_now_ = false;                      // the next message needs a batch of its own
  bool cur_replay_ = false;
  const PartState* cur_part_ = nullptr;
  int64_t cur_seg_ = -1;
  uint64_t cycle_records_ = 0, replayed_ = 0, rebalance_dups_ = 0;
};

// The stage: binds a KafkaSource to each cycle. With more than one cycle the consumer is a
// shared object of the run, so the next cycle keeps the group membership instead of rejoining
// (librdkafka's mock cluster keeps a closed member until its session times out, and the next
// cycle would wait that long for partitions).
class KafkaSourceStage : public flow::Source {
 public:
  using Options = KafkaSource::Options;
  static flow::PluginInfo info() { return KafkaSource::info(); }
  static const char* example() { return KafkaSource::example(); }
  static std::optional<flow::Schema> output_schema(const Options&) { return *flow::raw_message_schema(); }
  static void declare(flow::OptionTable<Options>& t) { KafkaSource::declare(t); }
  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    KafkaSource::check(o, config, errors);
  }
  explicit KafkaSourceStage(Options o) : o_(std::move(o)) {}

  void open(flow::Context& ctx) override {
    auto reg = ctx.shared<flow::DeliveryRegistry>(flow::kDeliveryKey, [] { return std::make_shared<flow::DeliveryRegistry>(); });
    last_ = reg->cycles == 1 || (reg->cycles > 0 && ctx.cycle() + 1 >= reg->cycles);
    if (reg->cycles != 1)
      c_ = ctx.shared<KafkaSource>("kafka-source.consumer." + ctx.stage_id(), [&] { return std::make_shared<KafkaSource>(o_); });
    else
      c_ = std::make_shared<KafkaSource>(o_);
    c_->open(ctx);
  }
  void run(flow::Context& ctx, flow::Emitter& out) override { c_->run(ctx, out); }
  void close() override {
    if (c_) c_->close(last_);
    c_.reset();
  }

 private:
  Options o_;
  std::shared_ptr<KafkaSource> c_;
  bool last_ = true;
};

}  // namespace

FLOW_PLUGIN(KafkaSourceStage)
