#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "flow/delivery.hpp"
#include "runtime/driver.hpp"
#include "runtime/graph.hpp"
#include "runtime/log.hpp"
#include "runtime/reload_plan.hpp"
#include "runtime/runtime.hpp"
#include "spec/delivery_check.hpp"

namespace flow::runtime {

namespace {

// Puts the calling thread under the run's scheduling policy while the run lasts; the threads it
// starts meanwhile (stages, and the threads stages start in open()) inherit it. A policy that
// cannot be set leaves the default, with a warning: it changes speed, never results.
class SchedulingScope {
 public:
  explicit SchedulingScope(spec::Scheduling scheduling) {
    if (scheduling != spec::Scheduling::Batch) return;
    previous_ = ::sched_getscheduler(0);
    if (previous_ != SCHED_OTHER) return;  // a policy chosen from outside (chrt) is kept
    const sched_param param{};
    if (::sched_setscheduler(0, SCHED_BATCH, &param) == 0) changed_ = true;
    else
      write_log(LogLevel::Warn, "flow",
                fmt::format("run.scheduling: batch could not be set ({}); running under the default policy",
                            std::strerror(errno)));
  }
  ~SchedulingScope() {
    if (!changed_) return;
    const sched_param param{};
    ::sched_setscheduler(0, previous_, &param);
  }
  SchedulingScope(const SchedulingScope&) = delete;
  SchedulingScope& operator=(const SchedulingScope&) = delete;

 private:
  int previous_ = SCHED_OTHER;
  bool changed_ = false;
};

}  // namespace

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
  // Where this cycle's duration is counted from (clock ticks), -1 until its stages run.
  std::atomic<Clock::duration::rep> cycle_started{-1};

  // Events the supervisor sleeps on: a stage done or failed, a stop or abort request.
  std::mutex mu;
  std::condition_variable cv;
  bool stop_requested = false, abort_requested = false;
  bool failed = false;
  std::string failed_stage, failure;

  // Hot reloads waiting for the supervisor (guarded by mu); answered at once once the run is over.
  struct PendingReload {
    spec::PipelineSpec spec;
    std::map<std::string, loader::PluginPtr> plugins;
    std::promise<ReloadResult> answer;
  };
  std::deque<std::shared_ptr<PendingReload>> reloads;
  bool run_over = false;

  // This cycle's stages and channels; guarded by nodes_mu against snapshot() readers (a reload
  // replaces them while the cycle runs).
  Graph graph;
  std::vector<std::unique_ptr<Channel>> channels;  // by node index; null for sources
  std::vector<std::unique_ptr<StageDriver>> drivers;
  std::vector<std::thread> threads;  // by node index
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
      r.gauges = c.gauge_values();
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
    std::lock_guard nodes_lock(nodes_mu);
    for (auto& d : drivers)
      if (d->is_source()) d->request_stop();
    for (std::size_t i = 0; i < drivers.size(); ++i)
      if (drivers[i]->id() == stage_id) {
        drivers[i]->request_stop();
        if (channels[i]) channels[i]->cancel();
      }
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
    cycle_started = -1;
    apply_reloads_between_cycles();
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
    const auto cycle_start = clock->now();
    cycle_started = cycle_start.time_since_epoch().count();  // before any stage runs
    threads.clear();
    for (auto& d : drivers) threads.emplace_back([driver = d.get()] { driver->run(); });

    const auto deadline = spec.run.duration ? cycle_start + *spec.run.duration : Clock::never();
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
        if (!stopping && !failed && !reloads.empty()) {  // while draining: left for the next cycle
          auto r = reloads.front();
          reloads.pop_front();
          lock.unlock();
          r->answer.set_value(reload_now(std::move(r->spec), std::move(r->plugins)));
          lock.lock();
          continue;
        }
        release_deferred_stops();
        if (all_done()) break;
        clock->wait_until(lock, cv, stopping ? Clock::never() : deadline);
      }
    }
    for (auto& t : threads)
      if (t.joinable()) t.join();
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

  // Which sinks each source's records reach (spec/delivery_check.hpp, the same walk `flowctl
  // validate` warns from), for sources that resume from what those sinks committed.
  std::shared_ptr<DeliveryRegistry> delivery_registry() const {
    auto reg = std::make_shared<DeliveryRegistry>();
    reg->cycles = spec.run.cycles;
    for (const auto& [source, sinks] : spec::sinks_reached(spec, plugins)) {
      std::vector<DeliveryRegistry::SinkRef> refs;
      for (const auto& sink : sinks) refs.push_back({sink.id, sink.plugin});
      reg->set_sinks_of(source, std::move(refs));
    }
    return reg;
  }

  // ---- Hot reload (reload_plan.hpp says what restarts and why) ----

  StageKinds kinds() const {
    StageKinds k;
    for (const auto& [id, p] : plugins) k[id] = p->info().kind;
    return k;
  }

  // Logged by the caller (flowctl's reloader), who also says why a reload never got here.
  static ReloadResult refuse(const std::string& why) { return {false, why}; }

  // Between cycles no stage runs: the next cycle is built from the new file.
  void apply_reloads_between_cycles() {
    std::deque<std::shared_ptr<PendingReload>> todo;
    {
      std::lock_guard lock(mu);
      todo.swap(reloads);
    }
    for (auto& r : todo) {
      const ReloadPlan plan = plan_reload(spec, kinds(), r->spec);
      if (!plan.refused.empty()) {
        r->answer.set_value(refuse(join(plan.refused, "; ")));
        continue;
      }
      {
        std::lock_guard nodes_lock(nodes_mu);
        spec = std::move(r->spec);
        plugins = std::move(r->plugins);
      }
      update_delivery_registry(nullptr);
      const std::string summary = fmt::format("reload of '{}' applied at the start of cycle {}: {} changed, {} added, {} removed",
                                              spec.file, cycle + 1, plan.changed.size(), plan.added.size(), plan.removed.size());
      write_log(LogLevel::Info, "flow", summary);
      r->answer.set_value({true, summary});
    }
  }

  static std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
    return out;
  }

  // Which sinks each source reaches, for the sources that start (`only`; all of them, nullptr,
  // between cycles): a running source may read its own entry at any time, so it is left alone
  // (and the registry's lock keeps its reads apart from these writes).
  void update_delivery_registry(const std::vector<std::string>* only) {
    std::shared_ptr<DeliveryRegistry> reg;
    {
      std::lock_guard lock(shared.mu);
      if (auto it = shared.objects.find(kDeliveryKey); it != shared.objects.end())
        reg = std::static_pointer_cast<DeliveryRegistry>(it->second);
    }
    if (!reg) return;
    const auto fresh = delivery_registry();
    auto all = fresh->all_sinks();
    if (!only) {
      reg->set_all_sinks(std::move(all));
      return;
    }
    for (const auto& id : *only)
      if (auto it = all.find(id); it != all.end()) reg->set_sinks_of(id, it->second);
  }

  // Waits until `d` is done; an abort meanwhile cancels everything (it is then done soon).
  // False when the pipeline is aborting.
  bool wait_done(const StageDriver& d) {
    std::unique_lock lock(mu);
    for (;;) {
      if (abort_requested) abort_all();
      if (d.done()) return !abort_requested;
      cv.wait(lock);
    }
  }

  // While the cycle runs, on the supervisor's thread: drain, commit and stop what the plan
  // stops (upstream first, each once those before it are done), then start the new instances
  // on the same channels. Nothing is dropped: a processor's input is cut, so its old instance
  // finishes (commits) what was queued before the cut and its new one reads what came after.
  ReloadResult reload_now(spec::PipelineSpec next, std::map<std::string, loader::PluginPtr> next_plugins) {
    const std::string file = next.file;
    const ReloadPlan plan = plan_reload(spec, kinds(), next);
    if (!plan.refused.empty()) return refuse(join(plan.refused, "; "));

    // The new instances first: a plugin factory that throws leaves the pipeline as it was.
    const DriverEnv e = env();
    std::map<std::string, std::unique_ptr<StageDriver>> made;
    for (const auto& id : plan.start) {
      try {
        StageCounters* c;
        {
          std::lock_guard nodes_lock(nodes_mu);
          auto& slot = counters[id];
          if (!slot) slot = std::make_unique<StageCounters>();
          c = slot.get();
        }
        const auto& plugin = next_plugins.at(id);
        made[id] = std::make_unique<StageDriver>(e, id, plugin->info(), plugin->create(next.stage(id)->config), *c);
      } catch (const std::exception& ex) {
        return refuse(fmt::format("stage '{}': {}", id, ex.what()));
      }
    }

    std::vector<std::size_t> stopped;  // old node indexes
    bool aborted = false;
    for (const auto& id : plan.stop) {
      const std::size_t i = graph.index(id);
      StageDriver& d = *drivers[i];
      if (d.hand_over()) {  // else it has ended on its own already
        if (d.is_source()) d.request_stop();
        else channels[i]->cut();
      }
      stopped.push_back(i);
      if (!wait_done(d)) {
        aborted = true;
        break;
      }
    }
    bool gave_up = aborted;
    {
      std::lock_guard lock(mu);
      gave_up = gave_up || failed || abort_requested;
    }
    if (gave_up) {
      // Abandoned: what was stopped ends its outputs like at the end of a run, so the rest drains.
      for (std::size_t i : stopped) wait_done(*drivers[i]);
      for (std::size_t i : stopped) drivers[i]->release_outputs();
      notify();
      return refuse(aborted ? "the pipeline is aborting" : "a stage failed while the reload drained");
    }
    for (std::size_t i : stopped)
      if (threads[i].joinable()) threads[i].join();
    for (auto it = stopped.rbegin(); it != stopped.rend(); ++it) drivers[*it]->close();

    std::vector<std::size_t> fresh;  // new node indexes
    std::map<std::string, loader::PluginPtr> old_plugins;  // outlives the stopped stages destroyed below
    {
      std::lock_guard nodes_lock(nodes_mu);
      old_plugins = std::move(plugins);
      const std::set<std::string> starting(plan.start.begin(), plan.start.end());
      std::map<std::string, std::unique_ptr<StageDriver>> old_drivers;
      std::map<std::string, std::unique_ptr<Channel>> old_channels;
      std::map<std::string, std::thread> old_threads;
      std::map<std::string, bool> old_deferred;
      // A channel's writers: each edge from a running or handed-over writer holds one. Edges of
      // a stopped writer that handed over pass to its successor, or are given up.
      std::map<std::string, int> writers_delta;
      for (const auto& edge : graph.edges) {
        const StageDriver& from = *drivers[edge.from];
        if (std::find(stopped.begin(), stopped.end(), edge.from) != stopped.end() && from.handed_over())
          writers_delta[graph.nodes[edge.to].id()] -= 1;
      }
      for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const std::string& id = graph.nodes[i].id();
        old_deferred[id] = stop_deferred[i];
        old_threads[id] = std::move(threads[i]);
        old_channels[id] = std::move(channels[i]);
        old_drivers[id] = std::move(drivers[i]);
      }
      auto old_spec = std::move(spec);  // the old graph points into it
      spec = std::move(next);
      plugins = std::move(next_plugins);
      graph = plan_graph(spec, plugins);
      for (const auto& edge : graph.edges)
        if (starting.count(graph.nodes[edge.from].id())) writers_delta[graph.nodes[edge.to].id()] += 1;
      drivers.clear();
      channels.clear();
      threads.clear();
      stop_deferred.clear();
      for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const auto& node = graph.nodes[i];
        const std::string id = node.id();
        const bool starts = starting.count(id) > 0;
        drivers.push_back(starts ? std::move(made[id]) : std::move(old_drivers[id]));
        threads.push_back(starts ? std::thread() : std::move(old_threads[id]));
        stop_deferred.push_back(starts ? false : old_deferred[id]);
        if (starts) fresh.push_back(i);
        std::unique_ptr<Channel> ch;
        if (node.input_writers > 0) {
          if (auto it = old_channels.find(id); it != old_channels.end() && it->second) {
            ch = std::move(it->second);
            ch->clear_cut();
            ch->set_limits(node.spec->buffer.batches, node.spec->buffer.bytes);
            ch->add_writers(writers_delta[id]);
          } else {
            ch = std::make_unique<Channel>(
                "->" + id, node.spec->buffer.batches, node.spec->buffer.bytes, node.input_writers,
                [id](const std::string& line) { write_log(LogLevel::Warn, id, line); }, *clock);
          }
          if (starts) drivers.back()->set_input(ch.get());
        }
        channels.push_back(std::move(ch));
      }
      for (const auto& edge : graph.edges)
        if (starting.count(graph.nodes[edge.from].id())) drivers[edge.from]->connect(edge.output, channels[edge.to].get());
      for (auto& [id, ch] : old_channels)
        if (ch) accumulate("->" + id, ch->stats());  // a removed stage's input
      // old_drivers (the stopped instances), old_threads (joined) and old_spec go here.
    }
    std::vector<std::string> started_sources;
    for (std::size_t i : fresh)
      if (drivers[i]->is_source()) started_sources.push_back(drivers[i]->id());
    update_delivery_registry(&started_sources);

    // Open the new instances in file order, then start them together (as a cycle does).
    std::size_t opened = 0;
    for (; opened < fresh.size(); ++opened) {
      StageDriver& d = *drivers[fresh[opened]];
      try {
        d.open();
      } catch (const std::exception& ex) {
        fail(d.id(), fmt::format("open failed after the reload: {}", ex.what()));
        break;
      }
    }
    for (std::size_t k = opened; k < fresh.size(); ++k) drivers[fresh[k]]->skip();  // never runs
    for (std::size_t k = 0; k < opened; ++k)
      threads[fresh[k]] = std::thread([driver = drivers[fresh[k]].get()] { driver->run(); });
    notify();

    for (const auto& c : plan.changed)
      write_log(LogLevel::Info, c.id, fmt::format("reload: restarted with its new configuration ({})", c.why));
    for (const auto& c : plan.restarted) write_log(LogLevel::Info, c.id, fmt::format("reload: restarted: {}", c.why));
    for (const auto& id : plan.added) write_log(LogLevel::Info, id, "reload: added");
    for (const auto& id : plan.removed) write_log(LogLevel::Info, id, "reload: removed (drained and committed)");
    for (const auto& id : plan.buffers) {
      const auto& b = spec.stage(id)->buffer;
      write_log(LogLevel::Info, id, fmt::format("reload: input buffer now {} batches, {} bytes", b.batches, b.bytes));
    }
    for (const auto& n : plan.notes) write_log(LogLevel::Info, "flow", "reload: " + n);
    const std::size_t kept = drivers.size() - fresh.size();
    const std::string summary =
        plan.no_stage_change() && plan.buffers.empty()
            ? fmt::format("reload of '{}': no stage changed; {} stages kept running", file, kept)
            : fmt::format("reload of '{}' applied: {} changed, {} added, {} removed, {} restarted with them; {} stages kept running",
                          file, plan.changed.size(), plan.added.size(), plan.removed.size(), plan.restarted.size(), kept);
    write_log(LogLevel::Info, "flow", summary);
    if (opened < fresh.size()) return {false, summary + fmt::format("; but stage '{}' failed to open", drivers[fresh[opened]]->id())};
    return {true, summary};
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

ReloadResult Runtime::reload(spec::PipelineSpec spec, std::map<std::string, loader::PluginPtr> plugins) {
  auto r = std::make_shared<Impl::PendingReload>();
  r->spec = std::move(spec);
  r->plugins = std::move(plugins);
  auto answer = r->answer.get_future();
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->run_over) return {false, "the run has ended"};
    impl_->reloads.push_back(r);
    impl_->cv.notify_all();
  }
  return answer.get();
}

RunReport Runtime::run() {
  SchedulingScope scheduling(impl_->spec.run.scheduling);
  RunReport report;
  const auto start = impl_->clock->now();
  for (impl_->cycle = 0; impl_->spec.run.cycles == 0 || impl_->cycle < impl_->spec.run.cycles; ++impl_->cycle) {
    if (!impl_->run_cycle(report)) break;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->run_over = true;
    for (auto& r : impl_->reloads) r->answer.set_value({false, "the run ended before the reload could be applied"});
    impl_->reloads.clear();
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
  const auto now = impl_->clock->now();
  snap.uptime_seconds = std::chrono::duration<double>(now - impl_->started).count();
  snap.cycles = impl_->spec.run.cycles;
  if (impl_->spec.run.duration) snap.duration_seconds = std::chrono::duration<double>(*impl_->spec.run.duration).count();
  if (const Clock::duration::rep at = impl_->cycle_started; at >= 0)
    snap.cycle_seconds = std::chrono::duration<double>(now - Clock::time_point(Clock::duration(at))).count();
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
