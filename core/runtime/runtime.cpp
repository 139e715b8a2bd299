#include "runtime/runtime.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <stop_token>
#include <thread>

#include "flow/delivery.hpp"
#include "runtime/log.hpp"

namespace flow::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Counters of one stage, kept for the whole run (all cycles).
struct StageCounters {
  std::atomic<uint64_t> batches_in{0}, records_in{0}, batches_out{0}, records_out{0};
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Counter>> named;  // stable addresses

  Counter& get(const std::string& key) {
    std::lock_guard lock(mu);
    auto& c = named[key];
    if (!c) c = std::make_unique<Counter>();
    return *c;
  }
};

struct SharedResources {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<void>> objects;
};

}  // namespace

struct Runtime::Impl {
  struct Node;

  class StageContext : public Context {
   public:
    StageContext(Impl& rt, Node& node) : rt_(rt), node_(node), logger_(node.spec->id) {}
    const std::string& stage_id() const override { return node_.spec->id; }
    const std::string& pipeline_name() const override { return rt_.spec.name; }
    const std::string& run_id() const override { return rt_.run_id; }
    int cycle() const override { return rt_.cycle; }
    Logger& log() override { return logger_; }
    Counter& counter(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) override {
      std::string key = name;
      if (!labels.empty()) {
        key += "{";
        for (std::size_t i = 0; i < labels.size(); ++i)
          key += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, labels[i].second);
        key += "}";
      }
      return node_.counters->get(key);
    }
    std::stop_token stop_token() const override { return node_.stop.get_token(); }
    std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
    std::shared_ptr<void> shared_resource(const std::string& key,
                                          const std::function<std::shared_ptr<void>()>& make) override {
      std::lock_guard lock(rt_.shared.mu);
      auto& obj = rt_.shared.objects[key];
      if (!obj) obj = make();
      return obj;
    }

   private:
    Impl& rt_;
    Node& node_;
    ScopedLogger logger_;
  };

  class StageEmitter : public Emitter {
   public:
    explicit StageEmitter(Node& node) : node_(node) {}
    bool emit(Batch batch, std::string_view output) override {
      auto& chans = channels(output);
      count(batch);
      if (chans.empty()) {  // nobody reads this output: the records are done with
        batch.positions().ack();
        return true;
      }
      bool ok = true;
      for (std::size_t i = 1; i < chans.size(); ++i) ok = chans[i]->push(batch.clone()) && ok;
      return chans[0]->push(std::move(batch)) && ok;
    }
    bool try_emit(Batch& batch, std::string_view output) override {
      auto& chans = channels(output);
      for (auto* c : chans)
        if (!c->wait_writable(0ms)) return false;
      return emit(std::move(batch), output);
    }
    bool wait_writable(std::chrono::milliseconds timeout, std::string_view output) override {
      const auto deadline = Clock::now() + timeout;
      for (auto* c : channels(output)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (!c->wait_writable(std::max(left, 0ms))) return false;
      }
      return true;
    }
    bool connected(std::string_view output) const override {
      auto it = node_.outputs.find(std::string(output));
      return it != node_.outputs.end() && !it->second.empty();
    }

   private:
    std::vector<Channel*>& channels(std::string_view output) {
      auto it = node_.outputs.find(std::string(output));
      if (it == node_.outputs.end())
        throw std::logic_error(fmt::format("stage '{}' emitted to output '{}', which its plugin does not declare",
                                           node_.spec->id, output));
      return it->second;
    }
    void count(const Batch& b) {
      node_.counters->batches_out.fetch_add(1, std::memory_order_relaxed);
      node_.counters->records_out.fetch_add(b.num_rows(), std::memory_order_relaxed);
    }
    Node& node_;
  };

  struct Node {
    const spec::StageSpec* spec = nullptr;
    loader::PluginPtr plugin;
    StageCounters* counters = nullptr;
    std::unique_ptr<Stage> stage;
    std::unique_ptr<StageContext> ctx;
    std::unique_ptr<StageEmitter> emitter;
    std::unique_ptr<Channel> input;  // null for sources
    std::map<std::string, std::vector<Channel*>> outputs;  // "" = main; every declared output present
    std::vector<std::pair<std::string, Channel*>> output_edges;  // for writer_done
    std::stop_source stop;
    std::thread thread;
    std::atomic<bool> done{false};
    bool opened = false;
    std::vector<Node*> stop_after;  // resolved spec->stop_after
    bool stop_deferred = false;     // a stop is due once every stop_after stage is done
    bool is_source() const { return plugin->info().kind == StageKind::Source; }
  };

  spec::PipelineSpec spec;
  std::map<std::string, loader::PluginPtr> plugins;
  RunOptions options;
  std::string run_id;
  std::atomic<int> cycle{0};
  SharedResources shared;
  std::map<std::string, std::unique_ptr<StageCounters>> counters;
  std::vector<std::pair<std::string, ChannelStats>> channel_totals;

  std::mutex fail_mu;
  bool failed = false;
  std::string failed_stage, failure;

  std::vector<std::unique_ptr<Node>> nodes;
  // Guards `nodes` and `counters` changes against snapshot() readers on other threads.
  mutable std::mutex nodes_mu;
  Clock::time_point started = Clock::now();

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
      std::lock_guard lock(c.mu);
      for (auto& [k, v] : c.named) r.counters.emplace_back(k, v->value());
    }
    return r;
  }

  void fail(Node& node, const std::string& message) {
    {
      std::lock_guard lock(fail_mu);
      if (!failed) {
        failed = true;
        failed_stage = node.spec->id;
        failure = message;
      }
    }
    write_log(LogLevel::Error, node.spec->id, fmt::format("stage failed: {}", message));
    // Stop the sources so the rest drains; nothing feeds the failed stage any more.
    for (auto& n : nodes)
      if (n->is_source()) n->stop.request_stop();
    node.stop.request_stop();
    if (node.input) node.input->cancel();
  }

  bool build(std::string& error, std::string& error_stage) {
    std::lock_guard nodes_lock(nodes_mu);
    nodes.clear();
    for (const auto& s : spec.stages) {
      auto n = std::make_unique<Node>();
      n->spec = &s;
      n->plugin = plugins.at(s.id);
      auto& c = counters[s.id];
      if (!c) c = std::make_unique<StageCounters>();
      n->counters = c.get();
      try {
        n->stage = n->plugin->create(s.config);
      } catch (const std::exception& e) {
        error = e.what();
        error_stage = s.id;
        return false;
      }
      const auto kind = n->plugin->info().kind;
      if ((kind == StageKind::Source) != (dynamic_cast<Source*>(n->stage.get()) != nullptr) ||
          (kind != StageKind::Source && dynamic_cast<Processor*>(n->stage.get()) == nullptr)) {
        error = fmt::format("plugin '{}' declares kind '{}' but its stage class does not match", n->plugin->info().name,
                            kind_name(kind));
        error_stage = s.id;
        return false;
      }
      if (n->plugin->info().main_output) n->outputs[""];
      for (const auto& o : n->plugin->info().extra_outputs) n->outputs[o];
      n->ctx = std::make_unique<StageContext>(*this, *n);
      n->emitter = std::make_unique<StageEmitter>(*n);
      nodes.push_back(std::move(n));
    }
    auto find = [&](const std::string& id) -> Node& {
      for (auto& n : nodes)
        if (n->spec->id == id) return *n;
      throw std::logic_error("unknown stage " + id);
    };
    for (auto& n : nodes) {
      if (n->spec->inputs.empty()) continue;
      const std::string id = n->spec->id;
      n->input = std::make_unique<Channel>(
          "->" + id, n->spec->buffer.batches, n->spec->buffer.bytes, static_cast<int>(n->spec->inputs.size()),
          [id](const std::string& line) { write_log(LogLevel::Warn, id, line); });
      for (const auto& in : n->spec->inputs) {
        Node& from = find(in.stage);
        from.outputs[in.output].push_back(n->input.get());
        from.output_edges.emplace_back(in.str() + "->" + id, n->input.get());
      }
    }
    for (auto& n : nodes)
      for (const auto& ref : n->spec->stop_after) n->stop_after.push_back(&find(ref.stage));
    return true;
  }

  void run_source(Node& n) {
    try {
      static_cast<Source&>(*n.stage).run(*n.ctx, *n.emitter);
    } catch (const std::exception& e) {
      fail(n, e.what());
    } catch (...) {
      fail(n, "unknown exception");
    }
  }

  void run_processor(Node& n) {
    auto& proc = static_cast<Processor&>(*n.stage);
    try {
      const auto interval = proc.timer_interval();
      auto next_timer = Clock::now() + interval;
      for (;;) {
        auto wait = 200ms;
        if (interval > 0ms)
          wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(next_timer - Clock::now()), 0ms, 200ms);
        Batch batch;
        const auto r = n.input->pop(batch, wait);
        if (r == Channel::Pop::Item) {
          n.counters->batches_in.fetch_add(1, std::memory_order_relaxed);
          n.counters->records_in.fetch_add(batch.num_rows(), std::memory_order_relaxed);
          proc.process(std::move(batch), *n.emitter);
        } else if (r == Channel::Pop::End) {
          proc.finish(*n.emitter);
          break;
        } else if (r == Channel::Pop::Cancelled) {
          break;  // abort or own failure: no finish, nothing more is made durable
        }
        if (interval > 0ms && Clock::now() >= next_timer) {
          proc.on_timer(*n.emitter);
          next_timer = Clock::now() + interval;
        }
      }
    } catch (const std::exception& e) {
      fail(n, e.what());
    } catch (...) {
      fail(n, "unknown exception");
    }
  }

  // Asks every source to stop, except those whose stop_after stages are still running: they are
  // asked by release_deferred_stops() once those stages are done.
  void stop_sources() {
    for (auto& n : nodes) {
      if (!n->is_source()) continue;
      if (n->stop_after.empty()) n->stop.request_stop();
      else n->stop_deferred = true;
    }
    release_deferred_stops();
  }

  void release_deferred_stops() {
    for (auto& n : nodes) {
      if (!n->stop_deferred) continue;
      bool ready = true;
      for (const Node* t : n->stop_after) ready = ready && t->done.load();
      if (ready) {
        n->stop_deferred = false;
        write_log(LogLevel::Info, n->spec->id, "stopping: the stages it waits for (stop_after) have finished");
        n->stop.request_stop();
      }
    }
  }

  void stage_main(Node& n) {
    if (n.is_source()) run_source(n);
    else run_processor(n);
    for (auto& [name, ch] : n.output_edges) ch->writer_done();
    write_log(LogLevel::Debug, n.spec->id,
              fmt::format("finished: {} records in, {} out", n.counters->records_in.load(), n.counters->records_out.load()));
    n.done = true;
  }

  std::string status_line(double elapsed, const std::map<std::string, uint64_t>& last, double dt,
                          std::map<std::string, uint64_t>& now_counts) {
    std::string line = fmt::format("[{:>4.0f}s]", elapsed);
    for (auto& n : nodes) {
      const uint64_t c = n->is_source() ? n->counters->records_out.load() : n->counters->records_in.load();
      now_counts[n->spec->id] = c;
      const auto it = last.find(n->spec->id);
      const double rate = dt > 0 && it != last.end() ? static_cast<double>(c - it->second) / dt : 0;
      line += fmt::format(" {} {}/s", n->spec->id, human(rate));
      if (n->input) {
        auto st = n->input->stats();
        line += fmt::format(" [{}/{}]", st.depth, st.max_batches);
      }
      line += " |";
    }
    line.pop_back();
    return line;
  }

  static std::string human(double v) {
    if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
    if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
    return fmt::format("{:.0f}", v);
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
    failed = false;
    for (auto& n : nodes) {
      try {
        n->opened = true;
        n->stage->open(*n->ctx);
      } catch (const std::exception& e) {
        report.ok = false;
        report.failed_stage = n->spec->id;
        report.error = fmt::format("open failed: {}", e.what());
        close_all();
        return false;
      }
    }
    write_log(LogLevel::Info, "flow",
              fmt::format("pipeline '{}' running: {} stages, cycle {}{}", spec.name, nodes.size(), cycle + 1,
                          spec.run.duration ? fmt::format(", for {}", format_duration(*spec.run.duration)) : ""));
    for (auto& n : nodes) n->thread = std::thread([this, node = n.get()] { stage_main(*node); });

    const auto start = Clock::now();
    const bool tty = options.status_line && isatty(STDERR_FILENO);
    bool stopping = false, aborting = false;
    auto last_status = start;
    std::map<std::string, uint64_t> last_counts;
    for (;;) {
      bool all_done = true;
      for (auto& n : nodes) all_done = all_done && n->done.load();
      if (all_done) break;
      std::this_thread::sleep_for(20ms);
      const int signals = options.signal_count ? options.signal_count() : 0;
      if (signals >= 1 && !stopping) {
        stopping = true;
        report.interrupted = true;
        write_log(LogLevel::Info, "flow", "stop requested: draining the pipeline (signal again to abort)");
        stop_sources();
      }
      if (signals >= 2 && !aborting) {
        aborting = true;
        report.aborted = true;
        write_log(LogLevel::Warn, "flow", "second signal: aborting without draining");
        for (auto& n : nodes) {
          n->stop.request_stop();
          if (n->input) n->input->cancel();
        }
      }
      if (!stopping && spec.run.duration && Clock::now() - start >= *spec.run.duration) {
        stopping = true;
        write_log(LogLevel::Info, "flow", fmt::format("cycle {}: duration reached, draining", cycle + 1));
        stop_sources();
      }
      release_deferred_stops();
      if (tty && Clock::now() - last_status >= 1s) {
        const double dt = std::chrono::duration<double>(Clock::now() - last_status).count();
        std::map<std::string, uint64_t> counts;
        const auto line = status_line(std::chrono::duration<double>(Clock::now() - start).count(), last_counts, dt, counts);
        std::fprintf(stderr, "\r\033[K%s", line.c_str());
        std::fflush(stderr);
        last_counts = std::move(counts);
        last_status = Clock::now();
      }
    }
    if (tty) std::fprintf(stderr, "\r\033[K");
    for (auto& n : nodes) n->thread.join();
    for (auto& n : nodes)
      for (auto& [name, ch] : n->output_edges) accumulate(name, ch->stats());
    close_all();
    if (failed) {
      report.ok = false;
      report.failed_stage = failed_stage;
      report.error = failure;
      return false;
    }
    if (!aborting) report.cycles_completed += 1;
    return !stopping || !report.interrupted;
  }

  void accumulate(const std::string& name, const ChannelStats& s) {
    for (auto& [n, total] : channel_totals)
      if (n == name) {
        total.batches_in += s.batches_in;
        total.records_in += s.records_in;
        total.blocked_ns += s.blocked_ns;
        total.peak_depth = std::max(total.peak_depth, s.peak_depth);
        total.peak_bytes = std::max(total.peak_bytes, s.peak_bytes);
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
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      Node& n = **it;
      if (!n.opened) continue;
      try {
        n.stage->close();
      } catch (const std::exception& e) {
        write_log(LogLevel::Error, n.spec->id, fmt::format("close failed: {}", e.what()));
      } catch (...) {
        write_log(LogLevel::Error, n.spec->id, "close threw an unknown exception");
      }
      n.opened = false;
    }
    std::lock_guard nodes_lock(nodes_mu);
    nodes.clear();  // stages are destroyed here, while their plugins are still loaded
  }
};

Runtime::Runtime(spec::PipelineSpec spec, std::map<std::string, loader::PluginPtr> plugins, RunOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->plugins = std::move(plugins);
  impl_->options = std::move(options);
  impl_->run_id = impl_->options.run_id.empty() ? make_run_id() : impl_->options.run_id;
  impl_->shared.objects[kDeliveryKey] = impl_->delivery_registry();
}

Runtime::~Runtime() {
  // Shared objects (an embedded broker) go before the plugins that made them are unloaded.
  std::lock_guard lock(impl_->shared.mu);
  impl_->shared.objects.clear();
}

RunReport Runtime::run() {
  RunReport report;
  const auto start = Clock::now();
  for (impl_->cycle = 0; impl_->spec.run.cycles == 0 || impl_->cycle < impl_->spec.run.cycles; ++impl_->cycle) {
    if (!impl_->run_cycle(report)) break;
    if (report.interrupted) break;
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
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
  snap.uptime_seconds = std::chrono::duration<double>(Clock::now() - impl_->started).count();
  for (const auto& s : impl_->spec.stages) snap.stages.push_back(impl_->stage_report(s));
  for (const auto& n : impl_->nodes)
    if (n->input) snap.channels.emplace_back(n->input->name(), n->input->stats());
  return snap;
}

std::string format_summary(const RunReport& r) {
  std::string out = fmt::format("{:<16} {:<20} {:>12} {:>12}  {}\n", "stage", "plugin", "records in", "records out", "counters");
  for (const auto& s : r.stages) {
    std::string counters;
    for (const auto& [k, v] : s.counters) counters += fmt::format("{}{}={}", counters.empty() ? "" : " ", k, v);
    out += fmt::format("{:<16} {:<20} {:>12} {:>12}  {}\n", s.id, s.plugin,
                       s.kind == StageKind::Source ? std::string("-") : std::to_string(s.records_in), s.records_out, counters);
  }
  for (const auto& [name, c] : r.channels)
    out += fmt::format("channel {:<32} batches {:>8}  peak {}/{} batches, {} bytes  writer blocked {:.2f}s\n", name,
                       c.batches_in, c.peak_depth, c.max_batches, c.peak_bytes, static_cast<double>(c.blocked_ns) / 1e9);
  out += fmt::format("{} cycle(s) in {:.1f}s{}\n", r.cycles_completed, r.seconds,
                     r.ok ? "" : fmt::format(" — FAILED in stage '{}': {}", r.failed_stage, r.error));
  for (const auto& n : r.notes) out += n + "\n";
  return out;
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
