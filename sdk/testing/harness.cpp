#include "flow/testing/harness.hpp"

#include <atomic>
#include <future>
#include <stdexcept>

#include "config/yaml_value.hpp"

namespace flow::testing {

Value yaml(const std::string& text) {
  std::vector<ConfigError> errors;
  auto v = config::parse_yaml(text, "<test>", errors);
  if (!errors.empty()) throw std::runtime_error(errors.front().str());
  return v ? *v : Value();
}

Batch raw_batch(const std::vector<std::string>& values, Positions positions) {
  Batch b(raw_message_schema());
  int64_t i = 0;
  for (const auto& v : values) {
    b.column(0).append_string("k" + std::to_string(i));
    b.column(1).append_string(v);
    b.column(2).append_string("test");
    b.column(3).append_int64(0);
    b.column(4).append_int64(i);
    b.column(5).append_timestamp(1'750'000'000'000'000 + i);
    ++i;
  }
  b.positions() = std::move(positions);
  return b;
}

Positions AckLog::track(int64_t begin, int64_t end, int32_t partition, const std::string& source) {
  ++tracked_;
  auto state = state_;
  return Positions::track({PositionRange{source, partition, begin, end}}, [state](const std::vector<PositionRange>& r) {
    std::lock_guard lock(state->mu);
    state->acked.insert(state->acked.end(), r.begin(), r.end());
    state->groups_acked += 1;
  });
}
std::vector<PositionRange> AckLog::acked() const {
  std::lock_guard lock(state_->mu);
  return state_->acked;
}
std::size_t AckLog::tracked() const { return tracked_; }
std::size_t AckLog::acked_groups() const {
  std::lock_guard lock(state_->mu);
  return state_->groups_acked;
}

class StageHarness::Ctx : public Context, public Logger {
 public:
  std::string id = kStageId, pipeline = kPipelineName, run = kRunId;
  int cycle_ = 0;
  std::stop_source stop;
  mutable std::mutex mu;
  std::map<std::string, std::unique_ptr<Counter>> counters;
  std::vector<std::string> lines;
  std::chrono::system_clock::time_point clock{std::chrono::sys_days{std::chrono::year{2025} / 6 / 15} + std::chrono::hours(9)};
  std::map<std::string, std::shared_ptr<void>> shared;

  const std::string& stage_id() const override { return id; }
  const std::string& pipeline_name() const override { return pipeline; }
  const std::string& run_id() const override { return run; }
  int cycle() const override { return cycle_; }
  Logger& log() override { return *this; }
  void log(LogLevel, std::string_view m) override {
    std::lock_guard lock(mu);
    lines.emplace_back(m);
  }
  static std::string key(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) {
    std::string k = name;
    if (!labels.empty()) {
      k += "{";
      for (std::size_t i = 0; i < labels.size(); ++i) k += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
      k += "}";
    }
    return k;
  }
  Counter& counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) override {
    std::lock_guard lock(mu);
    auto& c = counters[key(name, labels)];
    if (!c) c = std::make_unique<Counter>();
    return *c;
  }
  std::stop_token stop_token() const override { return stop.get_token(); }
  std::chrono::system_clock::time_point now() const override {
    std::lock_guard lock(mu);
    return clock;
  }
  std::shared_ptr<void> shared_resource(const std::string& k, const std::function<std::shared_ptr<void>()>& make) override {
    std::lock_guard lock(mu);
    auto& o = shared[k];
    if (!o) o = make();
    return o;
  }
};

class StageHarness::Out : public Emitter {
 public:
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<Batch>> outputs;
  std::vector<std::string> declared;
  std::size_t capacity = SIZE_MAX;
  std::atomic<std::size_t> emitted{0};
  bool connected_ = true;
  const std::stop_source* stop = nullptr;

  void check(std::string_view output) const {
    for (const auto& d : declared)
      if (d == output) return;
    throw std::logic_error("emitted to undeclared output '" + std::string(output) + "'");
  }
  bool emit(Batch batch, std::string_view output) override {
    check(output);
    std::unique_lock lock(mu);
    auto& v = outputs[std::string(output)];
    while (v.size() >= capacity) {
      if (stop->stop_requested()) return false;
      cv.wait_for(lock, std::chrono::milliseconds(20));
    }
    v.push_back(std::move(batch));
    emitted.fetch_add(1);
    cv.notify_all();
    return true;
  }
  bool try_emit(Batch& batch, std::string_view output) override {
    check(output);
    std::unique_lock lock(mu);
    auto& v = outputs[std::string(output)];
    if (v.size() >= capacity) return false;
    v.push_back(std::move(batch));
    emitted.fetch_add(1);
    cv.notify_all();
    return true;
  }
  bool wait_writable(std::chrono::milliseconds timeout, std::string_view output) override {
    check(output);
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return outputs[std::string(output)].size() < capacity; });
  }
  bool connected(std::string_view) const override { return connected_; }
};

StageHarness::StageHarness(const PluginDescriptor& descriptor, const std::string& yaml_config)
    : StageHarness(descriptor, yaml_config.empty() ? Value() : yaml(yaml_config)) {}

StageHarness::StageHarness(const PluginDescriptor& descriptor, Value config)
    : descriptor_(descriptor), config_(std::move(config)), ctx_(std::make_unique<Ctx>()), out_(std::make_unique<Out>()) {
  if (descriptor_.info.main_output) out_->declared.push_back("");
  for (const auto& o : descriptor_.info.extra_outputs) out_->declared.push_back(o);
  out_->stop = &ctx_->stop;
}

StageHarness::~StageHarness() {
  if (opened_ && !closed_) {
    try {
      close();
    } catch (...) {
    }
  }
}

std::vector<ConfigError> StageHarness::check() const { return descriptor_.check(config_); }

void StageHarness::open() {
  try {
    stage_ = descriptor_.create(config_);
  } catch (const ConfigException& e) {
    throw std::runtime_error(e.where().str() + ": " + e.what());
  }
  opened_ = true;
  stage_->open(*ctx_);
}

static Processor& as_processor(Stage* s) {
  auto* p = dynamic_cast<Processor*>(s);
  if (!p) throw std::logic_error("StageHarness: the stage is not a processor (transform or sink), or not open");
  return *p;
}

void StageHarness::push(Batch batch) { as_processor(stage_.get()).process(std::move(batch), *out_); }
void StageHarness::tick() { as_processor(stage_.get()).on_timer(*out_); }
void StageHarness::advance(Duration d) {
  auto& p = as_processor(stage_.get());
  const auto interval = p.timer_interval();
  if (interval.count() <= 0) {
    std::lock_guard lock(ctx_->mu);
    ctx_->clock += d;
    return;
  }
  Duration left = d;
  while (left.count() > 0) {
    const Duration step = std::min(left, std::chrono::duration_cast<Duration>(interval));
    {
      std::lock_guard lock(ctx_->mu);
      ctx_->clock += step;
    }
    left -= step;
    p.on_timer(*out_);
  }
}
void StageHarness::finish() { as_processor(stage_.get()).finish(*out_); }

void StageHarness::run_source(std::size_t max_batches, Duration timeout) {
  auto* src = dynamic_cast<Source*>(stage_.get());
  if (!src) throw std::logic_error("StageHarness: the stage is not a source, or not open");
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  std::thread t([src, this, done] {
    try {
      src->run(*ctx_, *out_);
      done->set_value();
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  });
  while (fut.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    if (out_->emitted.load() >= max_batches) break;
  }
  if (fut.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    ctx_->stop.request_stop();
    out_->cv.notify_all();
    if (fut.wait_for(timeout) != std::future_status::ready) {
      t.detach();  // a stage that ignores stop: report it rather than hang the test
      throw std::runtime_error("source did not return within the timeout after stop was requested");
    }
  }
  t.join();
  fut.get();
}

void StageHarness::close() {
  closed_ = true;
  if (stage_) stage_->close();
}

std::vector<Batch>& StageHarness::output(const std::string& name) {
  std::lock_guard lock(out_->mu);
  return out_->outputs[name];
}
std::size_t StageHarness::output_rows(const std::string& name) {
  std::lock_guard lock(out_->mu);
  std::size_t n = 0;
  for (const auto& b : out_->outputs[name]) n += b.num_rows();
  return n;
}
void StageHarness::set_capacity(std::size_t batches) { out_->capacity = batches; }
std::vector<Batch> StageHarness::drain(const std::string& name) {
  std::lock_guard lock(out_->mu);
  auto v = std::move(out_->outputs[name]);
  out_->outputs[name].clear();
  out_->cv.notify_all();
  return v;
}
uint64_t StageHarness::counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) const {
  std::lock_guard lock(ctx_->mu);
  auto it = ctx_->counters.find(Ctx::key(name, labels));
  return it == ctx_->counters.end() ? 0 : it->second->value();
}
std::vector<std::string> StageHarness::logs() const {
  std::lock_guard lock(ctx_->mu);
  return ctx_->lines;
}
std::chrono::system_clock::time_point StageHarness::now() const { return ctx_->now(); }
void StageHarness::set_now(std::chrono::system_clock::time_point t) {
  std::lock_guard lock(ctx_->mu);
  ctx_->clock = t;
}
void StageHarness::request_stop() {
  ctx_->stop.request_stop();
  out_->cv.notify_all();
}
void StageHarness::set_cycle(int cycle) { ctx_->cycle_ = cycle; }
void StageHarness::set_outputs_connected(bool c) { out_->connected_ = c; }
Context& StageHarness::context() { return *ctx_; }
Emitter& StageHarness::emitter() { return *out_; }

}  // namespace flow::testing
