#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "flow/delivery.hpp"
#include "runtime/driver.hpp"
#include "runtime/graph.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"

namespace flow::runtime {

struct Runtime::Impl {
  spec::PipelineSpec spec;
  std::map<std::string, loader::PluginPtr> plugins;
  RunOptions options;
  Clock* clock = nullptr;
  std::string run_id;
  std::atomic<int> cycle{0};
  SharedResources shared;
  std::map<std::string, std::unique_ptr<StageCounters>> counters;  // by stage id, for the whole run
  std::vector<std::pair<std::string, ChannelStats>> channel_totals;
  Clock::time_point started;

  // Events the supervisor sleeps on: a stage done or failed, a stop or abort request.
  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false, abort_requested = false;
  bool failed = false;
  std::string failed_stage, failure;

  // This cycle's stages and channels; guarded by nodes_mu against snapshot() readers.
  Graph graph;
  std::vector<std::unique_ptr<Channel>> channels;  // by node index; null for sources
  std::vector<std::unique_ptr<StageDriver>> drivers;
  std::vector<bool> stop_deferred;  // a source whose stop waits for its stop_after stages
  mutable std::mutex nodes_mu;

  StageReport stage_report(const spec::StageSpec& s) const {
    StageReport r;
    r.id = s.id;
    r.plugin = s.plugin;
    r.kind = plugins.at(s.id)->info().kind;
    if (auto it = counters.find(s.id); it != counters.end()) {
      auto& c = *it->second;
      r.batches_in = c.batches_in;
      r.records_in = c.records_in;
      r.batches_out = c.batches_out;
      r.records_out = c.records_out;
      r.counters = c.named_values();
    }
    return r;
  }

  void notify() {
    std::lock_guard lock(mu);
    cv.notify_all();
  }

  // A plugin's message often names its stage already ("stage 'heat' (heat-index): ..."); the
  // report names it once, so that prefix goes.
  static std::string without_stage_prefix(const std::string& stage_id, std::string message) {
    const std::string prefix = "stage '" + stage_id + "'";
    if (!message.starts_with(prefix)) return message;
    std::size_t at = prefix.size();
    if (message.compare(at, 2, " (") == 0) {
      const auto close = message.find(')', at);
      if (close == std::string::npos) return message;
      at = close + 1;
    }
    if (message.compare(at, 2, ": ") != 0) return message;
    return message.substr(at + 2);
  }

  // From a stage's thread: its run() or loop threw.
  void fail(const std::string& stage_id, const std::string& raw_message) {
    const std::string message = without_stage_prefix(stage_id, raw_message);
    {
      std::lock_guard lock(mu);
      if (!failed) {
        failed = true;
        failed_stage = stage_id;
        failure = message;
      }
      cv.notify_all();
    }
    write_log(LogLevel::Error, stage_id, fmt::format("stage failed: {}", message));
    // Stop the sources so the rest drains; nothing feeds the failed stage any more.
    for (auto& d : drivers)
      if (d->is_source()) d->request_stop();
    const std::size_t i = graph.index(stage_id);
    drivers[i]->request_stop();
    if (channels[i]) channels[i]->cancel();
  }

  DriverEnv env() {
    DriverEnv e;
    e.pipeline = spec.name;
    e.run_id = run_id;
    e.cycle = [this] { return cycle.load(); };
    e.shared = &shared;
    e.clock = clock;
    e.taps = options.taps;
    e.log = [](LogLevel level, std::string_view scope, std::string_view message) { write_log(level, scope, message); };
    e.fail = [this](const std::string& id, const std::string& message) { fail(id, message); };
    e.done = [this](const std::string&) { notify(); };
    return e;
  }

  // Plans the graph, creates each stage and its driver, and wires the channels.
  bool build(std::string& error, std::string& error_stage) {
    std::lock_guard nodes_lock(nodes_mu);
    graph = plan_graph(spec, plugins);
    drivers.clear();
    channels.clear();
    const DriverEnv e = env();
    for (const auto& node : graph.nodes) {
      auto& c = counters[node.id()];
      if (!c) c = std::make_unique<StageCounters>();
      try {
        drivers.push_back(std::make_unique<StageDriver>(e, node.id(), node.plugin->info(),
                                                        node.plugin->create(node.spec->config), *c));
      } catch (const std::exception& ex) {
        error = ex.what();
        error_stage = node.id();
        drivers.clear();
        return false;
      }
      if (node.input_writers == 0) {
        channels.emplace_back();
        continue;
      }
      const std::string id = node.id();
      channels.push_back(std::make_unique<Channel>(
          "->" + id, node.spec->buffer.batches, node.spec->buffer.bytes, node.input_writers,
          [id](const std::string& line) { write_log(LogLevel::Warn, id, line); }, *clock));
      if (node.spec->buffer.records != UINT64_MAX) channels.back()->set_max_records(node.spec->buffer.records);
      drivers.back()->set_input(channels.back().get());
    }
    for (const auto& edge : graph.edges) drivers[edge.from]->connect(edge.output, channels[edge.to].get());
    stop_deferred.assign(drivers.size(), false);
    return true;
  }

  // Asks every source to stop, except those whose stop_after stages are still running: they are
  // asked by release_deferred_stops() once those stages are done.
  void stop_sources() {
    for (std::size_t i = 0; i < drivers.size(); ++i) {
      if (!drivers[i]->is_source()) continue;
      if (graph.nodes[i].stop_after.empty()) drivers[i]->request_stop();
      else stop_deferred[i] = true;
    }
    release_deferred_stops();
  }

  void release_deferred_stops() {
    for (std::size_t i = 0; i < drivers.size(); ++i) {
      if (!stop_deferred[i]) continue;
      bool ready = true;
      for (std::size_t t : graph.nodes[i].stop_after) ready = ready && drivers[t]->done();
      if (ready) {
        stop_deferred[i] = false;
        write_log(LogLevel::Info, drivers[i]->id(), "stopping: the stages it waits for (stop_after) have finished");
        drivers[i]->request_stop();
      }
    }
  }

  bool all_done() const {
    for (const auto& d : drivers)
      if (!d->done()) return false;
    return true;
  }

  void abort_all() {
    for (std::size_t i = 0; i < drivers.size(); ++i) {
      drivers[i]->request_stop();
      if (channels[i]) channels[i]->cancel();
    }
  }

  // One cycle. Returns false when the run must not go on (failure or signal).
  bool run_cycle(RunReport& report) {
    std::string error, error_stage;
    if (!build(error, error_stage)) {
      report.ok = false;
      report.failed_stage = error_stage;
      report.error = error;
      return false;
    }
    {
      std::lock_guard lock(mu);
      failed = false;
    }
    for (auto& d : drivers) {
      try {
        d->open();
      } catch (const std::exception& e) {
        report.ok = false;
        report.failed_stage = d->id();
        report.error = fmt::format("open failed: {}", e.what());
        close_all();
        return false;
      }
    }
    write_log(LogLevel::Info, "flow",
              fmt::format("pipeline '{}' running: {} stages, cycle {}{}", spec.name, drivers.size(), cycle + 1,
                          spec.run.duration ? fmt::format(", for {}", format_duration(*spec.run.duration)) : ""));
    std::vector<std::thread> threads;
    for (auto& d : drivers) threads.emplace_back([driver = d.get()] { driver->run(); });

    const auto deadline = spec.run.duration ? clock->now() + *spec.run.duration : Clock::never();
    bool stopping = false, aborting = false;
    {
      std::unique_lock lock(mu);
      for (;;) {
        if (abort_requested && !aborting) {
          aborting = stopping = true;
          report.aborted = report.interrupted = true;
          write_log(LogLevel::Warn, "flow", "second signal: aborting without draining");
          abort_all();
        }
        if (stop_requested && !stopping) {
          stopping = true;
          report.interrupted = true;
          write_log(LogLevel::Info, "flow", "stop requested: draining the pipeline (signal again to abort)");
          stop_sources();
        }
        if (!stopping && clock->now() >= deadline) {
          stopping = true;
          write_log(LogLevel::Info, "flow", fmt::format("cycle {}: duration reached, draining", cycle + 1));
          stop_sources();
        }
        release_deferred_stops();
        if (all_done()) break;
        clock->wait_until(lock, cv, stopping ? Clock::never() : deadline);
      }
    }
    for (auto& t : threads) t.join();
    for (const auto& edge : graph.edges) accumulate(edge.name, channels[edge.to]->stats());
    close_all();
    std::lock_guard lock(mu);
    if (failed) {
      report.ok = false;
      report.failed_stage = failed_stage;
      report.error = failure;
      return false;
    }
    if (!aborting) report.cycles_completed += 1;
    return !report.interrupted;
  }

  void accumulate(const std::string& name, const ChannelStats& s) {
    for (auto& [n, total] : channel_totals)
      if (n == name) {
        total.batches_in += s.batches_in;
        total.records_in += s.records_in;
        total.blocked_ns += s.blocked_ns;
        total.peak_depth = std::max(total.peak_depth, s.peak_depth);
        total.peak_bytes = std::max(total.peak_bytes, s.peak_bytes);
        total.peak_records = std::max(total.peak_records, s.peak_records);
        return;
      }
    channel_totals.emplace_back(name, s);
  }

  // Which sinks each source's records reach (the first Sink stage on every path), for sources
  // that resume from what those sinks committed (flow/delivery.hpp).
  std::shared_ptr<DeliveryRegistry> delivery_registry() const {
    auto reg = std::make_shared<DeliveryRegistry>();
    reg->cycles = spec.run.cycles;
    std::map<std::string, std::vector<const spec::StageSpec*>> consumers;
    for (const auto& s : spec.stages)
      for (const auto& in : s.inputs) consumers[in.stage].push_back(&s);
    for (const auto& s : spec.stages) {
      if (plugins.at(s.id)->info().kind != StageKind::Source) continue;
      auto& sinks = reg->sinks_of[s.id];
      std::set<std::string> seen;
      std::vector<std::string> todo{s.id};
      while (!todo.empty()) {
        const std::string id = todo.back();
        todo.pop_back();
        for (const auto* c : consumers[id]) {
          if (!seen.insert(c->id).second) continue;
          if (plugins.at(c->id)->info().kind == StageKind::Sink) sinks.push_back({c->id, c->plugin});
          else todo.push_back(c->id);
        }
      }
    }
    return reg;
  }

  void close_all() {
    for (auto it = drivers.rbegin(); it != drivers.rend(); ++it) (*it)->close();
    std::lock_guard nodes_lock(nodes_mu);
    drivers.clear();  // stages are destroyed here, while their plugins are still loaded
    channels.clear();
  }
};

Runtime::Runtime(spec::PipelineSpec spec, std::map<std::string, loader::PluginPtr> plugins, RunOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->plugins = std::move(plugins);
  impl_->options = std::move(options);
  impl_->clock = impl_->options.clock ? impl_->options.clock : &system_clock();
  impl_->started = impl_->clock->now();
  impl_->run_id = impl_->options.run_id.empty() ? make_run_id() : impl_->options.run_id;
  impl_->shared.objects[kDeliveryKey] = impl_->delivery_registry();
}

Runtime::~Runtime() {
  // Shared objects (an embedded broker) go before the plugins that made them are unloaded.
  std::lock_guard lock(impl_->shared.mu);
  impl_->shared.objects.clear();
}

void Runtime::request_stop() {
  std::lock_guard lock(impl_->mu);
  impl_->stop_requested = true;
  impl_->cv.notify_all();
}

void Runtime::abort() {
  std::lock_guard lock(impl_->mu);
  impl_->stop_requested = impl_->abort_requested = true;
  impl_->cv.notify_all();
}

RunReport Runtime::run() {
  RunReport report;
  const auto start = impl_->clock->now();
  for (impl_->cycle = 0; impl_->spec.run.cycles == 0 || impl_->cycle < impl_->spec.run.cycles; ++impl_->cycle) {
    if (!impl_->run_cycle(report)) break;
  }
  report.seconds = std::chrono::duration<double>(impl_->clock->now() - start).count();
  {
    std::lock_guard lock(impl_->nodes_mu);
    for (const auto& s : impl_->spec.stages) report.stages.push_back(impl_->stage_report(s));
  }
  report.channels = impl_->channel_totals;
  {
    std::lock_guard lock(impl_->shared.mu);
    if (auto it = impl_->shared.objects.find(kDeliveryKey); it != impl_->shared.objects.end())
      report.notes = std::static_pointer_cast<DeliveryRegistry>(it->second)->notes();
  }
  return report;
}

Snapshot Runtime::snapshot() const {
  Snapshot snap;
  std::lock_guard lock(impl_->nodes_mu);
  snap.pipeline = impl_->spec.name;
  snap.cycle = impl_->cycle;
  snap.uptime_seconds = std::chrono::duration<double>(impl_->clock->now() - impl_->started).count();
  for (const auto& s : impl_->spec.stages) snap.stages.push_back(impl_->stage_report(s));
  for (const auto& c : impl_->channels)
    if (c) snap.channels.emplace_back(c->name(), c->stats());
  return snap;
}

std::string make_run_id() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  return fmt::format("{}-{:04x}", buf, rd() & 0xffff);
}

}  // namespace flow::runtime
