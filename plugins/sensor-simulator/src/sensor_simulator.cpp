// sensor-simulator: a source of reproducible IoT sensor readings as raw JSON messages.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "flow/flow.hpp"
#include "reading_generator.hpp"

namespace {

using SteadyClock = std::chrono::steady_clock;
// When paced, a partial batch leaves at most this long after its first record: records do not
// wait for a full batch (at 10k records/s a batch of 1000 took 100 ms, most of a 1 s window's
// latency beyond the window), and a batch per 20 ms costs nothing at such rates.
constexpr auto kMaxBatchDelay = std::chrono::milliseconds(20);

class SensorSimulator : public flow::Source {
 public:
  struct Options {
    int64_t sensors = 10;
    double rate = 1;
    int64_t max_records = 0;
    int64_t seed = 42;
    std::string start_time;
    std::string timestamp_format = "%Y-%m-%d %H:%M:%S";
    double invalid_ratio = 0;
    int64_t batch_size = 1000;
  };

  // Raw messages, as kafka-source emits them: `flowctl validate` checks what reads them.
  static std::optional<flow::Schema> output_schema(const Options&) { return *flow::raw_message_schema(); }

  static flow::PluginInfo info() {
    return {"sensor-simulator", "1.0.0", flow::StageKind::Source,
            "Generates reproducible IoT sensor readings (JSON raw messages), optionally with invalid ones"};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "sensors: 4\nrate: 10\nseed: 42\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("sensors", &Options::sensors, "Number of sensors (ids 1..sensors); each round has one reading per sensor")
        .range(1, 1'000'000);
    t.add("rate", &Options::rate,
          "Readings per second per sensor, paced in real time; 0 = as fast as possible (benchmarks). "
          "Simulated time advances 1/rate s per round (1 s when 0)")
        .range(0, 1'000'000);
    t.add("max_records", &Options::max_records, "Stop after this many records (per cycle); 0 = unlimited").min(0);
    t.add("seed", &Options::seed, "Random seed: the same seed gives the same stream (mixed with the cycle number)");
    t.add("start_time", &Options::start_time,
          "Reading time of the first round, UTC, like \"2025-06-15 09:12:01\"; \"\" = now");
    t.add("timestamp_format", &Options::timestamp_format,
          "Format of the JSON timestamp: %Y %m %d %H %M %S %f (microseconds) %F %T %s %z %%");
    t.add("invalid_ratio", &Options::invalid_ratio,
          "Share of deliberately invalid messages (truncated, missing field, wrong type, out of range, NaN, "
          "garbage bytes)")
        .range(0, 1);
    t.add("batch_size", &Options::batch_size,
          "Records per emitted batch (when paced, a partial batch still leaves 20ms after its first record)")
        .range(1, 10'000'000);
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    auto where = [&](const char* key) {
      const flow::Value* v = config.find(key);
      return v ? v->location() : config.location();
    };
    if (!o.start_time.empty() && !flow_sim::parse_start_time(o.start_time))
      errors.push_back({where("start_time"), "option 'start_time': '" + o.start_time +
                                                 "' is not a UTC time like \"2025-06-15 09:12:01\""});
    if (auto bad = flow_sim::unsupported_directive(o.timestamp_format))
      errors.push_back({where("timestamp_format"),
                        "option 'timestamp_format': unsupported directive '" + *bad +
                            "' (supported: %Y %m %d %H %M %S %f %F %T %s %z %%)"});
  }

  explicit SensorSimulator(Options o) : o_(std::move(o)) {
    std::vector<flow::ConfigError> errors;
    check(o_, flow::Value(), errors);
    if (!errors.empty()) throw flow::ConfigException(errors.front().where, errors.front().message);
  }

  void open(flow::Context& ctx) override {
    acked_ = &ctx.counter("acked_records");
    state_ = ctx.shared<flow_sim::StreamState>(flow_sim::stream_state_key(ctx.stage_id()),
                                               [] { return std::make_shared<flow_sim::StreamState>(); });

    flow_sim::GeneratorSettings g;
    g.sensors = o_.sensors;
    g.seed = static_cast<uint64_t>(o_.seed);
    g.cycle = ctx.cycle();
    g.interval_micros = interval_micros();
    g.timestamp_format = o_.timestamp_format;
    g.invalid_ratio = o_.invalid_ratio;
    if (!o_.start_time.empty()) {
      g.start_micros = *flow_sim::parse_start_time(o_.start_time);
    } else {
      const auto now = std::chrono::time_point_cast<std::chrono::seconds>(ctx.now());
      g.start_micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    }
    std::lock_guard lock(state_->mu);
    if (state_->valid && state_->cycle < ctx.cycle()) {
      g.first_seq = state_->next_seq;
      g.start_micros = std::max(g.start_micros, state_->next_time_micros);
    } else if (ctx.cycle() > 0 && o_.max_records > 0) {
      // No record of the earlier cycles in this process: assume they ran to max_records.
      const int64_t rounds = (o_.max_records + o_.sensors - 1) / o_.sensors;
      g.first_seq = ctx.cycle() * o_.max_records;
      g.start_micros += ctx.cycle() * rounds * g.interval_micros;
    }
    gen_.emplace(std::move(g));
  }

  void run(flow::Context& ctx, flow::Emitter& out) override {
    const std::stop_token stop = ctx.stop_token();
    const std::string& stage = ctx.stage_id();
    flow_sim::ReadingGenerator& gen = *gen_;
    const bool paced = o_.rate > 0;
    const auto period = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(paced ? 1.0 / o_.rate : 0.0));
    const auto wall_start = SteadyClock::now();
    const int64_t first_round = gen.rounds_done();

    int64_t produced = 0;
    flow::Batch batch = new_batch(0);
    // The batch's six columns (contiguous), looked up once per batch, not per record.
    flow::Column* columns = &batch.column(0);
    int64_t batch_first_seq = gen.next_seq();
    auto batch_started = SteadyClock::now();
    bool aborted = false;

    auto flush = [&]() -> bool {
      if (batch.empty()) return true;
      Counter* acked = acked_;
      batch.positions() = flow::Positions::track(
          {flow::PositionRange{stage, 0, batch_first_seq, gen.next_seq()}},
          [acked](const std::vector<flow::PositionRange>& ranges) {
            for (const auto& r : ranges) acked->add(static_cast<uint64_t>(r.end - r.begin));
          });
      const bool ok = out.emit(std::move(batch));
      batch = new_batch(produced);
      columns = &batch.column(0);
      batch_first_seq = gen.next_seq();
      return ok;
    };

    while (!stop.stop_requested()) {
      if (o_.max_records > 0 && produced >= o_.max_records) break;
      if (paced && gen.at_round_start()) {
        const auto due = wall_start + period * (gen.rounds_done() - first_round);
        if (SteadyClock::now() < due) {
          if (!batch.empty() && batch_started + kMaxBatchDelay <= due) {
            if (!wait_until(stop, batch_started + kMaxBatchDelay)) break;
            if (!flush()) {
              aborted = true;
              break;
            }
          }
          if (!wait_until(stop, due)) break;
        }
      }
      if (batch.empty()) batch_started = SteadyClock::now();  // the 20ms count from the first record
      flow_sim::Reading r;
      flow::Column* c = columns;
      c[1].append_string_with([&](std::string& chars) { gen.append_next(r, chars); });
      char key[24];
      auto [kend, ec] = std::to_chars(key, key + sizeof key, r.sensor_id);
      (void)ec;
      c[0].append_string(std::string_view(key, static_cast<std::size_t>(kend - key)));
      c[2].append_string({});
      c[3].append_int64(0);
      c[4].append_int64(r.seq);
      c[5].append_timestamp(r.time_micros);
      if (r.invalid != flow_sim::InvalidKind::None) count_invalid(ctx, r.invalid);
      ++produced;
      if (batch.num_rows() >= static_cast<std::size_t>(o_.batch_size) && !flush()) {
        aborted = true;
        break;
      }
    }
    if (!aborted) flush();  // what was generated before a stop still goes out

    std::lock_guard lock(state_->mu);
    state_->valid = true;
    state_->cycle = ctx.cycle();
    state_->next_seq = gen.next_seq();
    state_->next_time_micros = gen.next_time_micros() + (gen.at_round_start() ? 0 : interval_micros());
  }

 private:
  using Counter = flow::Counter;

  // Counters are made on first use, so the run summary lists only the kinds that occurred.
  void count_invalid(flow::Context& ctx, flow_sim::InvalidKind kind) {
    Counter*& c = invalid_counters_[static_cast<std::size_t>(kind) - 1];
    if (!c) c = &ctx.counter("invalid_generated", {{"kind", std::string(flow_sim::invalid_kind_name(kind))}});
    c->add();
  }

  int64_t interval_micros() const {
    return o_.rate > 0 ? std::max<int64_t>(1, std::llround(1e6 / o_.rate)) : 1'000'000;
  }

  flow::Batch new_batch(int64_t produced) const {
    flow::Batch b(flow::raw_message_schema());
    int64_t rows = o_.batch_size;
    if (o_.max_records > 0) rows = std::min(rows, std::max<int64_t>(0, o_.max_records - produced));
    rows = std::min<int64_t>(rows, 1 << 20);
    const auto n = static_cast<std::size_t>(rows);
    b.column(0).reserve(n, n * 4);
    b.column(1).reserve(n, n * 96);
    b.column(2).reserve(n, 0);
    for (std::size_t c = 3; c < 6; ++c) b.column(c).reserve(n);
    return b;
  }

  // Sleeps until `t`; false when stop was requested first.
  static bool wait_until(const std::stop_token& stop, SteadyClock::time_point t) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    return !cv.wait_until(lock, stop, t, [] { return false; }) && !stop.stop_requested();
  }

  Options o_;
  std::optional<flow_sim::ReadingGenerator> gen_;
  std::shared_ptr<flow_sim::StreamState> state_;
  std::array<Counter*, flow_sim::kInvalidKinds> invalid_counters_{};
  Counter* acked_ = nullptr;
};

}  // namespace

FLOW_PLUGIN(SensorSimulator)
