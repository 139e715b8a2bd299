// kafka-sink: produces one Kafka message per record (key and value from two columns) and
// acknowledges a batch's positions once Kafka confirmed every one of its messages.
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "flow/flow.hpp"
#include "flow_kafka/common.hpp"
#include "flow_kafka/plugin_support.hpp"
#include "retention_guard.hpp"

namespace {

using namespace std::chrono_literals;

// One input batch in flight: its positions wait until all its messages are delivered.
struct InFlight {
  flow::Positions positions;
  std::size_t remaining = 0;
  bool failed = false;
};

// A column value as message text; strings pass through, other types are formatted.
std::optional<std::string_view> cell(const flow::Column& c, std::size_t i, std::string& buf) {
  if (c.is_null(i)) return std::nullopt;
  switch (c.type()) {
    case flow::Type::String: return c.string_at(i);
    case flow::Type::Int64:
    case flow::Type::Timestamp: buf = std::to_string(c.int64_at(i)); break;
    case flow::Type::Float64: buf = flow::format_double(c.double_at(i)); break;
    case flow::Type::Bool: buf = c.bool_at(i) ? "true" : "false"; break;
  }
  return std::string_view(buf);
}

class KafkaSink : public flow::Processor {
 public:
  struct Options {
    std::string brokers;
    std::string topic;
    std::string key_column = "key";
    std::string value_column = "value";
    std::string acks = "all";
    bool idempotence = true;
    std::string compression = "none";
    flow::Duration linger{5};
    flow::ByteSize batch_size{0};
    flow::Duration flush_timeout{10'000};
    std::map<std::string, std::string> librdkafka;
    int partitions = 4;
    std::string retention_guard = "auto";
    std::vector<std::string> watch_groups;
    flow::ByteSize max_unconsumed_bytes{flow::kafka::kMockMaxBytes * 4 / 5};
    int max_unconsumed_records = flow::kafka::kMockMaxMessageSets * 4 / 5;
    flow::Duration retention_stall_timeout{60'000};
  };

  static flow::PluginInfo info() {
    return {.name = "kafka-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Produces each record to a Kafka topic; acknowledges once Kafka confirmed delivery",
            .main_output = false};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "brokers: embedded   # an in-process mock cluster; a real one: host1:9092,host2:9092\ntopic: readings\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("brokers", &Options::brokers,
          "Bootstrap servers \"host:port,...\", or \"embedded\" for the in-process mock cluster")
        .required();
    t.add("topic", &Options::topic, "Topic to produce to (must exist; created when embedded)").required();
    t.add("key_column", &Options::key_column, "Column holding the message key (a null key lets Kafka pick the partition)");
    t.add("value_column", &Options::value_column, "Column holding the message value");
    t.add("acks", &Options::acks, "Broker acknowledgements required: all, 1 or 0").one_of({"all", "-1", "1", "0"});
    t.add("idempotence", &Options::idempotence, "Idempotent producer (no duplicates or reordering from retries)");
    t.add("compression", &Options::compression, "Compression codec").one_of({"none", "gzip", "snappy", "lz4", "zstd"});
    t.add("linger", &Options::linger, "How long to wait to fill a produce request (linger.ms)");
    t.add("batch_size", &Options::batch_size, "Largest produce request per partition (batch.size); 0 keeps librdkafka's default");
    t.add("flush_timeout", &Options::flush_timeout, "At the end, how long to wait for outstanding deliveries")
        .min(0.001);
    t.add("librdkafka", &Options::librdkafka, "Extra librdkafka properties, passed through verbatim");
    t.add("partitions", &Options::partitions, "With brokers: embedded, partitions of the topic it creates")
        .range(1, 10000);
    t.add("retention_guard", &Options::retention_guard,
          "Wait before a partition holds more than max_unconsumed_bytes/_records not yet committed by the watched "
          "consumer groups (librdkafka's mock cluster drops the oldest data past 5 MiB / 100,000 message sets per "
          "partition); auto: on with brokers: embedded or when the brokers are the mock cluster (flowctl broker)")
        .one_of({"auto", "on", "off"});
    t.add("watch_groups", &Options::watch_groups,
          "Consumer groups the retention guard waits for (a group that never committed counts from the partition's "
          "start); empty: the groups of this process's consumers on the same brokers (brokers: embedded)");
    t.add("max_unconsumed_bytes", &Options::max_unconsumed_bytes,
          "Retention guard: most bytes per partition past the slowest watched group's committed offset (80% of the "
          "mock cluster's 5 MiB)")
        .min(1);
    t.add("max_unconsumed_records", &Options::max_unconsumed_records,
          "Retention guard: most records per partition past it (80% of the mock cluster's 100,000 message sets)")
        .range(1, 100'000'000);
    t.add("retention_stall_timeout", &Options::retention_stall_timeout,
          "Retention guard: fail when a watch_groups group has not committed further for this long while the sink "
          "waits for it (a group found in this process is no longer waited for instead); 0 waits forever");
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    if (o.retention_guard == "on" && o.acks == "0") {
      const flow::Value* v = config.find("retention_guard");
      errors.push_back({v ? v->location() : config.location(),
                        "option 'retention_guard': 'on' needs acks 1 or all (with acks: 0 delivery reports carry no "
                        "offsets to count from)"});
    }
  }

  explicit KafkaSink(Options o) : o_(std::move(o)) {}
  ~KafkaSink() override { destroy(); }

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    bootstrap_ = flow::kafka::resolve_brokers(ctx, o_.brokers, {o_.topic}, o_.partitions, broker_);
    flow::kafka::Conf conf;
    conf.set("bootstrap.servers", bootstrap_)
        .set("acks", o_.acks)
        .set("enable.idempotence", o_.idempotence ? "true" : "false")
        .set("compression.type", o_.compression)
        .set("linger.ms", std::to_string(o_.linger.count()));
    if (o_.batch_size.bytes > 0) conf.set("batch.size", std::to_string(o_.batch_size.bytes));
    conf.set_all(o_.librdkafka);
    rd_kafka_conf_set_opaque(conf.get(), this);
    conf.log_to(flow::kafka::log_sink(ctx.log()));  // librdkafka's lines through the stage's logger
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSink::on_delivery);
    outage_ = std::make_unique<flow::kafka::Outage>(brokers_text(), [this](bool warn, const std::string& m) {
      if (warn) ctx_->log().warn(m);
      else ctx_->log().info(m);
    });
    outage_->install(conf);
    rk_ = conf.create(RD_KAFKA_PRODUCER);
    outage_->attach(rk_);
    // Before any topic handle exists: a handle's metadata request may auto-create the topic.
    if (auto problem = flow::kafka::check_metadata(rk_, brokers_text(), {o_.topic}, 10s, outage_.get()))
      throw std::runtime_error(*problem);
    rkt_ = rd_kafka_topic_new(rk_, o_.topic.c_str(), nullptr);
    if (!rkt_) throw std::runtime_error(fmt::format("cannot create topic handle '{}'", o_.topic));
    delivered_ = &ctx.counter("delivered");
    ctx.log().info(fmt::format("producing to topic '{}' on {}", o_.topic, brokers_text()));
    start_guard(ctx);
  }

  void process(flow::Batch batch, flow::Emitter&) override {
    throw_if_failed();
    const auto key_i = batch.schema()->index_of(o_.key_column);
    const auto value_i = batch.schema()->index_of(o_.value_column);
    if (!value_i) throw std::runtime_error(missing_column("value_column", o_.value_column, batch));
    if (!key_i && o_.key_column != "key") throw std::runtime_error(missing_column("key_column", o_.key_column, batch));
    const std::size_t rows = batch.num_rows();
    if (rows == 0) {
      batch.positions().ack();
      return;
    }
    auto* flight = new InFlight{std::move(batch.positions()), rows, false};
    // Messages never handed to librdkafka get no report: account for them here.
    auto abandon = [&](std::size_t i) {
      flight->remaining -= rows - i;
      flight->failed = true;
      if (flight->remaining == 0) delete flight;
    };
    std::string kbuf, vbuf;
    for (std::size_t i = 0; i < rows; ++i) {
      std::optional<std::string_view> key;
      if (key_i) key = cell(batch.column(*key_i), i, kbuf);
      const auto value = cell(batch.column(*value_i), i, vbuf);
      const void* kptr = key ? key->data() : nullptr;
      const std::size_t klen = key ? key->size() : 0;
      void* vptr = value ? const_cast<char*>(value->data()) : nullptr;
      const std::size_t vlen = value ? value->size() : 0;
      const int64_t size = static_cast<int64_t>(klen + vlen) + flow::kafka::kRecordOverhead;
      if (guard_ && (size > room_bytes_ || room_records_ < 1)) {
        bool go = false;
        try {
          go = make_room(size);
        } catch (...) {
          abandon(i);
          throw;
        }
        if (!go) {  // aborting: the rest is not produced, and the batch not acknowledged
          ctx_->log().info(fmt::format("stopped while waiting for the consumer groups: {} record(s) of the batch not "
                                       "produced (not acknowledged)", rows - i));
          abandon(i);
          return;
        }
      }
      for (;;) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_, RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(kptr, klen),
            RD_KAFKA_V_VALUE(vptr, vlen),
            RD_KAFKA_V_OPAQUE(flight), RD_KAFKA_V_END);
        if (!err) {
          if (guard_) {
            guard_->sent(size);
            room_bytes_ -= size;
            --room_records_;
          }
          break;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {  // backpressure from librdkafka: serve deliveries
          rd_kafka_poll(rk_, 50);
          continue;
        }
        abandon(i);
        throw std::runtime_error(fmt::format("cannot produce to topic '{}': {}", o_.topic, rd_kafka_err2str(err)));
      }
    }
    rd_kafka_poll(rk_, 0);
    throw_if_failed();
  }

  std::chrono::milliseconds timer_interval() const override { return 100ms; }
  void on_timer(flow::Emitter&) override {
    if (rk_) rd_kafka_poll(rk_, 0);
    throw_if_failed();
    release_check(false);
  }

  void finish(flow::Emitter&) override {
    release_check(true);
    rd_kafka_flush(rk_, static_cast<int>(o_.flush_timeout.count()));
    rd_kafka_poll(rk_, 0);
    throw_if_failed();
    if (const int left = rd_kafka_outq_len(rk_); left > 0)
      throw std::runtime_error(fmt::format("{} message(s) not delivered to topic '{}' on {} within flush_timeout {}",
                                           left, o_.topic, brokers_text(), flow::format_duration(o_.flush_timeout)));
  }

  void close() override { destroy(); }

 private:
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    auto* flight = static_cast<InFlight*>(m->_private);
    if (self->guard_)
      self->guard_->delivered(m->partition, m->offset,
                              static_cast<int64_t>(m->key_len + m->len) + flow::kafka::kRecordOverhead, !m->err);
    if (m->err) {
      flight->failed = true;
      if (self->error_.empty())
        self->error_ = fmt::format("delivery to topic '{}' partition {} failed: {}", self->o_.topic, m->partition,
                                   rd_kafka_err2str(m->err));
    } else if (self->delivered_) {
      self->delivered_->add();
    }
    if (--flight->remaining == 0) {
      if (!flight->failed) flight->positions.ack();  // failed: forgotten, delivered again after restart
      delete flight;
    }
  }

  // The retention guard (retention_guard.hpp): on for the mock cluster unless turned off.
  void start_guard(flow::Context& ctx) {
    if (o_.retention_guard == "off") return;
    std::string why;
    if (o_.brokers == flow::kafka::kEmbedded) {
      why = "the embedded broker";
    } else if (char* id = rd_kafka_clusterid(rk_, 5000)) {
      if (std::string_view(id).starts_with("mockCluster")) why = "the brokers are librdkafka's mock cluster";
      rd_kafka_mem_free(rk_, id);
    }
    if (o_.retention_guard == "auto" && why.empty()) return;  // a real cluster: its retention is its own setting
    if (o_.acks == "0") {
      ctx.log().info("retention guard off: acks: 0 gives no offsets to count from");
      return;
    }
    if (why.empty()) why = "retention_guard: on";
    const rd_kafka_metadata_t* md = nullptr;
    int32_t partitions = 0;
    // All topics, as check_metadata() asks: a request for the topic handle alone keeps
    // rd_kafka_destroy() waiting a second more.
    if (rd_kafka_metadata(rk_, 1, nullptr, &md, 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < md->topic_cnt; ++i)
        if (o_.topic == md->topics[i].topic) partitions = md->topics[i].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (partitions <= 0) throw std::runtime_error(fmt::format("retention guard: cannot read the partitions of topic '{}' "
                                                              "on {}", o_.topic, brokers_text()));
    flow::kafka::RetentionGuard::Settings s;
    s.topic = o_.topic;
    s.bootstrap = bootstrap_;
    s.partitions = partitions;
    s.groups = o_.watch_groups;
    s.discover = o_.watch_groups.empty();
    s.max_bytes = static_cast<int64_t>(o_.max_unconsumed_bytes.bytes);
    s.max_records = o_.max_unconsumed_records;
    for (const auto& [k, v] : o_.librdkafka)  // how to connect, not how to produce
      if (k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") || k.starts_with("socket.") ||
          k.starts_with("broker.") || k == "client.id")
        s.client[k] = v;
    waits_ = &ctx.counter("retention_waits");
    wait_ms_ = &ctx.counter("retention_wait_ms");
    guard_ = std::make_unique<flow::kafka::RetentionGuard>(std::move(s), ctx);
    std::string named;
    for (const auto& g : o_.watch_groups) named += (named.empty() ? "'" : ", '") + g + "'";
    ctx.log().info(fmt::format(
        "retention guard on ({}): producing waits before a partition of '{}' holds more than {} / {} records not "
        "committed by {}",
        why, o_.topic, mib(max_bytes()), o_.max_unconsumed_records,
        named.empty() ? "the consumer groups of this process's consumers on the same brokers (watch_groups names "
                        "others)"
                      : "consumer group(s) " + named));
  }

  // Waits until a record of `size` bytes fits under the guard's limits. False when the stage is
  // told to stop meanwhile (an abort, or its own failure).
  bool make_room(int64_t size) {
    using Clock = std::chrono::steady_clock;
    bool waiting = false;
    Clock::time_point since, moved;
    uint64_t progress = 0;
    flow::kafka::RetentionGuard::Room r;
    if (!guard_started_) {  // every stage is open now: see which consumers there are
      guard_started_ = true;
      guard_->wait_fresh_round(std::chrono::seconds(5), ctx_->stop_token());
    }
    for (;;) {
      rd_kafka_poll(rk_, 0);  // delivery reports: what is in the log now
      throw_if_failed();
      r = guard_->room();
      if (r.fits(size)) break;
      if (ctx_->stop_requested()) {
        held_ = false;  // "stopped while waiting" says the rest
        return false;
      }
      if (guard_->in_flight()) {  // first the broker's acknowledgements, then the consumer
        rd_kafka_poll(rk_, 10);
        continue;
      }
      const auto now = Clock::now();
      if (!waiting) {
        waiting = true;
        since = moved = now;
        progress = guard_->progress();
        waits_->add();
        if (!held_) {  // said once per stretch of waits, and its end once (release_check)
          held_ = true;
          held_since_ = now;
          held_waits_ = 0;
          held_ms_ = 0;
          held_group_ = r.group;
          ctx_->log().warn(fmt::format(
              "{}[{}] holds {} ({} records) not yet committed by consumer group '{}' (limit {} / {} records): "
              "producing waits for the group to catch up, since the mock cluster drops the oldest data past 5 MiB "
              "per partition",
              o_.topic, r.partition, mib(r.usage.bytes), r.usage.records, r.group, mib(max_bytes()),
              o_.max_unconsumed_records));
        }
        ++held_waits_;
      }
      if (const auto p = guard_->progress(); p != progress) {
        progress = p;
        moved = now;
      }
      if (o_.retention_stall_timeout.count() > 0 && now - moved >= o_.retention_stall_timeout) {
        const auto stalled = flow::format_duration(o_.retention_stall_timeout);
        if (guard_->is_explicit(r.group))
          throw std::runtime_error(fmt::format(
              "consumer group '{}' committed nothing further for {} while {}[{}] holds {} it has not committed; "
              "stopping rather than letting the mock cluster drop records (is the consumer running? one that "
              "commits only once newer data arrives, such as a long window, needs a larger max_unconsumed_bytes "
              "or more partitions; retention_stall_timeout: 0 waits forever)",
              r.group, stalled, o_.topic, r.partition, mib(r.usage.bytes)));
        ctx_->log().warn(fmt::format("consumer group '{}' committed nothing further for {}: no longer waiting for it "
                                     "(name it in watch_groups to wait for it)",
                                     r.group, stalled));
        guard_->ignore(r.group);
        moved = now;
      }
      guard_->wait_round(std::chrono::milliseconds(250), ctx_->stop_token());
    }
    room_bytes_ = r.idle ? std::max(r.bytes, size) : r.bytes;
    room_records_ = std::max<int64_t>(r.records, 1);
    if (waiting) {
      last_wait_ = Clock::now();
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(last_wait_ - since).count();
      wait_ms_->add(static_cast<uint64_t>(ms));
      held_ms_ += ms;
    }
    return true;
  }

  // The end of a stretch of waits: none for a while, or the end of input.
  void release_check(bool end) {
    if (!held_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!end && now - last_wait_ < kQuiet) return;
    held_ = false;
    ctx_->log().info(fmt::format(
        "consumer group '{}' keeps up again{}: producing waited {:.1f}s in {} wait(s) over the last {:.1f}s",
        held_group_, end ? " (end of input)" : "", held_ms_ / 1000.0, held_waits_,
        std::chrono::duration<double>(last_wait_ - held_since_).count()));
  }

  int64_t max_bytes() const { return static_cast<int64_t>(o_.max_unconsumed_bytes.bytes); }
  static std::string mib(int64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20)); }

  void throw_if_failed() const {
    if (!error_.empty()) throw std::runtime_error(error_ + " (" + brokers_text() + ")");
  }

  std::string brokers_text() const {
    return o_.brokers == flow::kafka::kEmbedded ? "embedded broker " + bootstrap_ : "brokers " + bootstrap_;
  }

  static std::string missing_column(const char* option, const std::string& name, const flow::Batch& b) {
    std::string cols;
    for (const auto& f : b.schema()->fields()) cols += (cols.empty() ? "" : ", ") + f.name;
    return fmt::format("option '{}': input has no column '{}' (columns: {})", option, name, cols);
  }

  void destroy() {
    if (!rk_) return;
    // Undelivered messages: purge, and let their reports free what they hold (unacknowledged).
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    if (rkt_) rd_kafka_topic_destroy(rkt_);
    rkt_ = nullptr;
    if (outage_) outage_->stop();
    if (guard_) guard_->stop();
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    guard_.reset();  // after the last delivery report
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  std::shared_ptr<flow::kafka::EmbeddedBroker> broker_;
  std::string bootstrap_;
  std::unique_ptr<flow::kafka::Outage> outage_;  // stopped before rk_ is destroyed
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
  flow::Counter* delivered_ = nullptr;
  std::string error_;
  std::unique_ptr<flow::kafka::RetentionGuard> guard_;  // see start_guard()
  int64_t room_bytes_ = 0, room_records_ = 0;          // what may go before the guard is asked again
  bool guard_started_ = false;
  static constexpr std::chrono::seconds kQuiet{2};     // no wait for this long ends a stretch of waits
  bool held_ = false;                                  // in a stretch of waits (logged at its start and end)
  std::chrono::steady_clock::time_point held_since_, last_wait_;
  int64_t held_waits_ = 0, held_ms_ = 0;
  std::string held_group_;
  flow::Counter* waits_ = nullptr;
  flow::Counter* wait_ms_ = nullptr;
};

}  // namespace

FLOW_PLUGIN(KafkaSink)
