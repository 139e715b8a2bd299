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
    std::string kbuf, vbuf;
    for (std::size_t i = 0; i < rows; ++i) {
      std::optional<std::string_view> key;
      if (key_i) key = cell(batch.column(*key_i), i, kbuf);
      const auto value = cell(batch.column(*value_i), i, vbuf);
      const void* kptr = key ? key->data() : nullptr;
      const std::size_t klen = key ? key->size() : 0;
      void* vptr = value ? const_cast<char*>(value->data()) : nullptr;
      const std::size_t vlen = value ? value->size() : 0;
      for (;;) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_, RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(kptr, klen),
            RD_KAFKA_V_VALUE(vptr, vlen),
            RD_KAFKA_V_OPAQUE(flight), RD_KAFKA_V_END);
        if (!err) break;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {  // backpressure from librdkafka: serve deliveries
          rd_kafka_poll(rk_, 50);
          continue;
        }
        // Messages never handed to librdkafka will get no report: account for them here.
        flight->remaining -= rows - i;
        flight->failed = true;
        if (flight->remaining == 0) delete flight;
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
  }

  void finish(flow::Emitter&) override {
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
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
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
};

}  // namespace

FLOW_PLUGIN(KafkaSink)
