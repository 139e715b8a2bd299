#include "runtime/driver.hpp"

#include <pthread.h>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace flow::runtime {

Counter& StageCounters::get(const std::string& key) {
  std::lock_guard lock(mu);
  auto& c = named[key];
  if (!c) c = std::make_unique<Counter>();
  return *c;
}

std::vector<std::pair<std::string, uint64_t>> StageCounters::named_values() {
  std::lock_guard lock(mu);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto& [k, v] : named) out.emplace_back(k, v->value());
  return out;
}

Gauge& StageCounters::gauge(const std::string& key) {
  std::lock_guard lock(mu);
  auto& g = gauges[key];
  if (!g) g = std::make_unique<Gauge>();
  return *g;
}

std::vector<std::pair<std::string, int64_t>> StageCounters::gauge_values() {
  std::lock_guard lock(mu);
  std::vector<std::pair<std::string, int64_t>> out;
  for (auto& [k, g] : gauges)
    if (g->is_set()) out.emplace_back(k, g->value());
  return out;
}

std::string counter_key(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string key = name;
  if (!labels.empty()) {
    key += "{";
    for (std::size_t i = 0; i < labels.size(); ++i)
      key += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, labels[i].second);
    key += "}";
  }
  return key;
}

std::shared_ptr<void> SharedResources::get(const std::string& key, const std::function<std::shared_ptr<void>()>& make) {
  std::lock_guard lock(mu);
  auto& obj = objects[key];
  if (!obj) obj = make();
  return obj;
}

class StageDriver::StageContext : public Context, public Logger {
 public:
  explicit StageContext(StageDriver& d) : d_(d) {}
  const std::string& stage_id() const override { return d_.id_; }
  const std::string& pipeline_name() const override { return d_.env_.pipeline; }
  const std::string& run_id() const override { return d_.env_.run_id; }
  int cycle() const override { return d_.env_.cycle(); }
  Logger& log() override { return *this; }
  void log(LogLevel level, std::string_view message) override {
    if (d_.env_.log) d_.env_.log(level, d_.id_, message);
  }
  Counter& counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) override {
    return d_.counters_.get(counter_key(name, labels));
  }
  Gauge& gauge(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) override {
    return d_.counters_.gauge(counter_key(name, labels));
  }
  std::stop_token stop_token() const override { return d_.stop_.get_token(); }
  std::chrono::system_clock::time_point now() const override { return d_.env_.clock->wall(); }
  std::shared_ptr<void> shared_resource(const std::string& key, const std::function<std::shared_ptr<void>()>& make) override {
    if (!d_.env_.shared) throw std::logic_error("no shared resources in this runner");
    return d_.env_.shared->get(key, make);
  }

 private:
  StageDriver& d_;
};

class StageDriver::StageEmitter : public Emitter {
 public:
  explicit StageEmitter(StageDriver& d) : d_(d) {}

  // Once the driver's outputs are declared: each emit then finds its channels and tap without
  // building a std::string or searching a map (main output first).
  void resolve() {
    outs_.clear();
    for (auto& [name, chans] : d_.outputs_) {
      auto tap = d_.taps_.find(name);
      outs_.push_back({name, &chans, tap == d_.taps_.end() ? nullptr : tap->second.get()});
    }
  }

  bool emit(Batch batch, std::string_view output) override {
    const Out& o = find(output);
    auto& chans = *o.chans;
    count(batch);
    // A tap's whole cost when nobody listens: one relaxed load.
    if (o.tap && o.tap->active()) o.tap->offer(batch);
    if (chans.empty()) {  // nobody reads this output: the records are done with
      batch.positions().ack();
      return true;
    }
    bool ok = true;
    for (std::size_t i = 1; i < chans.size(); ++i) ok = chans[i]->push(batch.clone()) && ok;
    return chans[0]->push(std::move(batch)) && ok;
  }

  TryEmit try_emit(Batch& batch, std::string_view output) override {
    auto& chans = *find(output).chans;
    if (chans.empty()) {
      emit(std::move(batch), output);
      return {EmitStatus::Sent};
    }
    // Fan-out sends to every channel or to none: first make sure each has room.
    for (auto* c : chans) {
      const auto room = c->room();
      if (room == Channel::Room::Cancelled) return {EmitStatus::Closed};
      if (room == Channel::Room::Full) return {EmitStatus::Full};
    }
    return {emit(std::move(batch), output) ? EmitStatus::Sent : EmitStatus::Closed};
  }

  bool wait_writable(std::chrono::milliseconds timeout, std::string_view output) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto* c : *find(output).chans) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (!c->wait_writable(std::max(left, std::chrono::milliseconds(0)))) return false;
    }
    return true;
  }

  bool connected(std::string_view output) const override {
    for (const auto& o : outs_)
      if (o.name == output) return !o.chans->empty();
    return false;
  }

 private:
  struct Out {
    std::string_view name;  // a key of d_.outputs_ (map keys do not move)
    std::vector<Channel*>* chans;
    TapPoint* tap;
  };
  const Out& find(std::string_view output) const {
    for (const auto& o : outs_)
      if (o.name == output) return o;
    throw std::logic_error(fmt::format("emitted to output '{}', which the plugin '{}' does not declare", output,
                                       d_.info_.name));
  }
  void count(const Batch& b) {
    d_.counters_.batches_out.fetch_add(1, std::memory_order_relaxed);
    d_.counters_.records_out.fetch_add(b.num_rows(), std::memory_order_relaxed);
  }
  StageDriver& d_;
  std::vector<Out> outs_;
};

StageDriver::StageDriver(const DriverEnv& env, std::string id, const PluginInfo& info, std::unique_ptr<Stage> stage,
                         StageCounters& counters)
    : env_(env),
      id_(std::move(id)),
      info_(info),
      counters_(counters),
      ctx_(std::make_unique<StageContext>(*this)),
      emitter_(std::make_unique<StageEmitter>(*this)) {
  if (info_.main_output) outputs_[""];
  for (const auto& o : info_.extra_outputs) outputs_[o];
  if (env_.taps)
    for (const auto& [o, chans] : outputs_) taps_[o] = env_.taps->point(o.empty() ? id_ : id_ + "." + o);
  emitter_->resolve();
  if (stage) set_stage(std::move(stage));
}

void StageDriver::set_stage(std::unique_ptr<Stage> stage) {
  if (!stage) throw std::logic_error("stage '" + id_ + "': the plugin's factory returned no stage");
  const bool is_source_class = dynamic_cast<Source*>(stage.get()) != nullptr;
  const bool is_processor_class = dynamic_cast<Processor*>(stage.get()) != nullptr;
  if (is_source() ? !is_source_class : !is_processor_class)
    throw std::runtime_error(fmt::format("plugin '{}' declares kind '{}' but its stage class does not match", info_.name,
                                         kind_name(info_.kind)));
  stage_ = std::move(stage);
}

StageDriver::~StageDriver() = default;

Context& StageDriver::context() { return *ctx_; }
Emitter& StageDriver::emitter() { return *emitter_; }

void StageDriver::connect(const std::string& output, Channel* channel) {
  auto it = outputs_.find(output);
  if (it == outputs_.end())
    throw std::logic_error(fmt::format("stage '{}' has no output '{}'", id_, output));
  it->second.push_back(channel);
}

void StageDriver::open() {
  opened_ = true;
  stage_->open(*ctx_);
}

void StageDriver::close() {
  if (!opened_ || closed_) return;
  closed_ = true;
  try {
    stage_->close();
  } catch (const std::exception& e) {
    ctx_->log(LogLevel::Error, fmt::format("close failed: {}", e.what()));
  } catch (...) {
    ctx_->log(LogLevel::Error, "close threw an unknown exception");
  }
}

void StageDriver::deliver(Batch batch) {
  counters_.batches_in.fetch_add(1, std::memory_order_relaxed);
  counters_.records_in.fetch_add(batch.num_rows(), std::memory_order_relaxed);
  static_cast<Processor&>(*stage_).process(std::move(batch), *emitter_);
}

void StageDriver::timer() { static_cast<Processor&>(*stage_).on_timer(*emitter_); }
void StageDriver::finish() { static_cast<Processor&>(*stage_).finish(*emitter_); }

void StageDriver::run_processor() {
  auto& proc = static_cast<Processor&>(*stage_);
  Clock& clock = *env_.clock;
  const auto interval = proc.timer_interval();
  auto next_timer = interval > std::chrono::milliseconds(0) ? clock.now() + interval : Clock::never();
  for (;;) {
    Batch batch;
    // Sleeps until a batch, the end of input, an abort, or the next timer: no polling.
    const auto r = input_->pop_until(batch, next_timer);
    if (r == Channel::Pop::Item) {
      deliver(std::move(batch));
    } else if (r == Channel::Pop::End) {
      finish();
      return;
    } else if (r == Channel::Pop::Cancelled) {
      return;  // abort or own failure: no finish, nothing more is made durable
    } else if (r == Channel::Pop::Cut) {
      finish();  // a reload (hand_over() came first): commit like at the end; the successor reads on
      return;
    }
    if (next_timer != Clock::never() && clock.now() >= next_timer) {
      timer();
      next_timer = clock.now() + interval;
    }
  }
}

void StageDriver::run() {
  // The thread takes the stage's id (cut to the 15 bytes Linux keeps), so `top -H`, `perf` and
  // debuggers show which stage a thread runs.
  ::pthread_setname_np(::pthread_self(), id_.substr(0, 15).c_str());
  try {
    if (is_source()) static_cast<Source&>(*stage_).run(*ctx_, *emitter_);
    else run_processor();
  } catch (const std::exception& e) {
    if (env_.fail) env_.fail(id_, e.what());
  } catch (...) {
    if (env_.fail) env_.fail(id_, "unknown exception");
  }
  if (int open = kOpen; outputs_state_.compare_exchange_strong(open, kClosed)) close_outputs();
  ctx_->log(LogLevel::Debug, fmt::format("finished: {} records in, {} out", counters_.records_in.load(),
                                          counters_.records_out.load()));
  done_ = true;
  if (env_.done) env_.done(id_);
}

bool StageDriver::hand_over() {
  int open = kOpen;
  return outputs_state_.compare_exchange_strong(open, kHandedOver) || open == kHandedOver;
}

void StageDriver::release_outputs() {
  if (int handed = kHandedOver; outputs_state_.compare_exchange_strong(handed, kClosed)) close_outputs();
}

void StageDriver::skip() {
  if (int open = kOpen; outputs_state_.compare_exchange_strong(open, kClosed)) close_outputs();
  done_ = true;
}

void StageDriver::close_outputs() {
  for (auto& [name, chans] : outputs_)
    for (auto* c : chans) c->writer_done();
}

}  // namespace flow::runtime
