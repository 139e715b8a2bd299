#include "flow/testing/harness.hpp"

#include <future>
#include <stdexcept>
#include <thread>

#include "host/yaml_value.hpp"
#include "runtime/channel.hpp"
#include "runtime/clock.hpp"
#include "runtime/driver.hpp"

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

namespace {
constexpr std::size_t kUnbounded = SIZE_MAX / 2;
}

struct StageHarness::Impl {
  explicit Impl(const PluginDescriptor& d) : descriptor(d) {
    runtime::DriverEnv env;
    env.pipeline = kPipelineName;
    env.run_id = kRunId;
    env.cycle = [this] { return cycle.load(); };
    env.shared = &shared;
    env.clock = &clock;
    env.log = [this](LogLevel, std::string_view, std::string_view message) {
      std::lock_guard lock(mu);
      lines.emplace_back(message);
    };
    env.fail = [this](const std::string&, const std::string& message) {
      std::lock_guard lock(mu);
      failure = message;
    };
    driver = std::make_unique<runtime::StageDriver>(env, kStageId, d.info, nullptr, counters);
    auto make = [&](const std::string& name) {
      outputs[name] = std::make_unique<runtime::Channel>("harness:" + (name.empty() ? std::string("main") : name),
                                                         kUnbounded, UINT64_MAX, 1, nullptr, clock);
    };
    if (d.info.main_output) make("");
    for (const auto& o : d.info.extra_outputs) make(o);
  }

  // Moves what the stage emitted on `name` from its channel into `collected`.
  std::vector<Batch>& collect(const std::string& name) {
    auto& v = collected[name];
    auto it = outputs.find(name);
    if (it == outputs.end()) return v;
    Batch b;
    while (it->second->pop(b, std::chrono::milliseconds(0)) == runtime::Channel::Pop::Item) v.push_back(std::move(b));
    return v;
  }

  void set_bound(std::size_t batches) {
    for (auto& [name, ch] : outputs) ch->set_max_batches(batches);
  }

  const PluginDescriptor& descriptor;
  Value config;
  runtime::ManualClock clock;
  runtime::SharedResources shared;
  runtime::StageCounters counters;
  std::atomic<int> cycle{0};
  std::unique_ptr<runtime::StageDriver> driver;
  std::map<std::string, std::unique_ptr<runtime::Channel>> outputs;  // every declared output
  std::map<std::string, std::vector<Batch>> collected;
  std::size_t capacity = kUnbounded;
  bool connected = true;
  bool opened = false, closed = false;
  mutable std::mutex mu;
  std::vector<std::string> lines;
  std::string failure;
};

StageHarness::StageHarness(const PluginDescriptor& descriptor, const std::string& yaml_config)
    : StageHarness(descriptor, yaml_config.empty() ? Value() : yaml(yaml_config)) {}

StageHarness::StageHarness(const PluginDescriptor& descriptor, Value config) : impl_(std::make_unique<Impl>(descriptor)) {
  impl_->config = std::move(config);
}

StageHarness::~StageHarness() {
  if (impl_ && impl_->opened && !impl_->closed) {
    try {
      close();
    } catch (...) {
    }
  }
}

const PluginDescriptor& StageHarness::descriptor() const { return impl_->descriptor; }
std::vector<ConfigError> StageHarness::check() const { return impl_->descriptor.check(impl_->config); }

void StageHarness::open() {
  std::unique_ptr<Stage> stage;
  try {
    stage = impl_->descriptor.create(impl_->config);
  } catch (const ConfigException& e) {
    throw std::runtime_error(e.where().str() + ": " + e.what());
  }
  impl_->driver->set_stage(std::move(stage));
  if (impl_->connected)
    for (auto& [name, ch] : impl_->outputs) impl_->driver->connect(name, ch.get());
  impl_->opened = true;
  impl_->driver->open();
}

static runtime::StageDriver& processor(runtime::StageDriver& d) {
  if (!d.has_stage() || d.is_source())
    throw std::logic_error("StageHarness: the stage is not a processor (transform or sink), or not open");
  return d;
}

void StageHarness::push(Batch batch) { processor(*impl_->driver).deliver(std::move(batch)); }
void StageHarness::tick() { processor(*impl_->driver).timer(); }
void StageHarness::advance(Duration d) {
  auto& p = processor(*impl_->driver);
  const auto interval = static_cast<Processor&>(p.stage()).timer_interval();
  if (interval.count() <= 0) {
    impl_->clock.advance(d);
    return;
  }
  Duration left = d;
  while (left.count() > 0) {
    const Duration step = std::min(left, std::chrono::duration_cast<Duration>(interval));
    impl_->clock.advance(step);
    left -= step;
    p.timer();
  }
}
void StageHarness::finish() { processor(*impl_->driver).finish(); }

void StageHarness::run_source(std::size_t max_batches, Duration timeout) {
  auto& d = *impl_->driver;
  if (!d.has_stage() || !d.is_source()) throw std::logic_error("StageHarness: the stage is not a source, or not open");
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  std::thread t([&d, done] {
    d.run();  // what run() throws goes to the env's fail()
    done->set_value();
  });
  while (fut.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    if (impl_->counters.batches_out.load() >= max_batches) break;
  }
  if (fut.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    request_stop();
    if (fut.wait_for(timeout) != std::future_status::ready) {
      t.detach();  // a stage that ignores stop: report it rather than hang the test
      (void)impl_.release();  // still used by the stuck thread
      throw std::runtime_error("source did not return within the timeout after stop was requested");
    }
  }
  t.join();
  std::lock_guard lock(impl_->mu);
  if (!impl_->failure.empty()) throw std::runtime_error(impl_->failure);
}

void StageHarness::close() {
  impl_->closed = true;
  impl_->driver->close();
}

std::vector<Batch>& StageHarness::output(const std::string& name) { return impl_->collect(name); }
std::size_t StageHarness::output_rows(const std::string& name) {
  std::size_t n = 0;
  for (const auto& b : impl_->collect(name)) n += b.num_rows();
  return n;
}
void StageHarness::set_capacity(std::size_t batches) {
  impl_->capacity = batches;
  if (!impl_->driver->stop_requested()) impl_->set_bound(batches);
}
std::vector<Batch> StageHarness::drain(const std::string& name) {
  auto v = std::move(impl_->collect(name));
  impl_->collected[name].clear();
  return v;
}
uint64_t StageHarness::counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) const {
  return impl_->counters.get(runtime::counter_key(name, labels)).value();
}
std::vector<std::string> StageHarness::logs() const {
  std::lock_guard lock(impl_->mu);
  return impl_->lines;
}
std::chrono::system_clock::time_point StageHarness::now() const { return impl_->clock.wall(); }
void StageHarness::set_now(std::chrono::system_clock::time_point t) { impl_->clock.set_wall(t); }
void StageHarness::request_stop() {
  impl_->driver->request_stop();
  impl_->set_bound(kUnbounded);  // a stopping pipeline drains: what the stage still emits arrives
}
void StageHarness::set_cycle(int cycle) { impl_->cycle = cycle; }
void StageHarness::set_outputs_connected(bool c) { impl_->connected = c; }
Stage& StageHarness::stage() { return impl_->driver->stage(); }
Context& StageHarness::context() { return impl_->driver->context(); }
Emitter& StageHarness::emitter() { return impl_->driver->emitter(); }

}  // namespace flow::testing
