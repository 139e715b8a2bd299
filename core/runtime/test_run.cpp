#include "runtime/test_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "flow/delivery.hpp"
#include "runtime/driver.hpp"
#include "spec/delivery_check.hpp"
#include "runtime/graph.hpp"
#include "runtime/log.hpp"

namespace flow::runtime {
namespace {

constexpr std::size_t kUnbounded = SIZE_MAX / 2;  // one thread drives every stage: a full channel would wedge it

// What stands in for a replaced stage: the runner emits through its driver's emitter, so its
// batches are counted, tapped and fanned out like any stage's.
class GivenRecords final : public Source {
 public:
  void run(Context&, Emitter&) override {}
};

struct Node {
  std::unique_ptr<StageDriver> driver;
  std::unique_ptr<Channel> input;
  bool replaced = false;
  bool failed = false;
  Clock::time_point next_timer = Clock::never();
  std::chrono::milliseconds interval{0};
};

}  // namespace

TestRunResult run_pipeline_test(const spec::PipelineSpec& original, const std::map<std::string, loader::PluginPtr>& plugins,
                                TestRunConfig config) {
  TestRunResult result;
  auto kind_of = [&](const std::string& id) { return plugins.at(id)->info().kind; };

  // Stages whose every consumer is replaced (or itself not run) would feed nothing: not run, so
  // a kafka-source upstream of a replaced validator needs no broker.
  std::map<std::string, std::vector<std::string>> consumers;
  for (const auto& s : original.stages)
    if (!config.replaced.count(s.id))
      for (const auto& in : s.inputs) consumers[in.stage].push_back(s.id);
  std::set<std::string> had_consumers;
  for (const auto& s : original.stages)
    for (const auto& in : s.inputs) had_consumers.insert(in.stage);
  std::set<std::string> pruned = config.skipped;
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& s : original.stages) {
      if (pruned.count(s.id) || config.replaced.count(s.id) || kind_of(s.id) == StageKind::Sink) continue;
      if (!had_consumers.count(s.id)) continue;
      const auto& cs = consumers[s.id];
      if (std::all_of(cs.begin(), cs.end(), [&](const std::string& c) { return pruned.count(c) > 0; })) {
        pruned.insert(s.id);
        changed = true;
      }
    }
  }
  for (const auto& id : pruned)
    if (!config.skipped.count(id)) result.pruned.push_back(id);

  // The spec as run: replaced stages take no input, nothing waits (stop_after), channels are
  // unbounded, and the replaced stages' plugin is the given-records source with their outputs.
  spec::PipelineSpec spec;
  spec.name = original.name;
  spec.file = original.file;
  std::map<std::string, loader::PluginPtr> run_plugins;
  std::vector<std::unique_ptr<PluginDescriptor>> descriptors;
  for (const auto& s : original.stages) {
    if (pruned.count(s.id)) continue;
    spec::StageSpec copy = s;
    copy.stop_after.clear();
    copy.buffer.batches = kUnbounded;
    copy.buffer.bytes = UINT64_MAX;
    if (config.replaced.count(s.id)) {
      copy.inputs.clear();
      const auto& info = plugins.at(s.id)->info();
      auto d = std::make_unique<PluginDescriptor>();
      d->info = {.name = "test-input", .version = "1", .kind = StageKind::Source,
                 .description = "records given by the test", .extra_outputs = info.extra_outputs,
                 .main_output = info.main_output};
      d->create = [](const Value&) -> std::unique_ptr<Stage> { return std::make_unique<GivenRecords>(); };
      run_plugins[s.id] = std::make_shared<loader::Plugin>(nullptr, d.get(), "<test>");
      descriptors.push_back(std::move(d));
    } else {
      run_plugins[s.id] = plugins.at(s.id);
    }
    spec.stages.push_back(std::move(copy));
  }

  Graph graph;
  try {
    graph = plan_graph(spec, run_plugins);
  } catch (const std::exception& e) {
    result.ok = false;
    result.error = e.what();
    return result;
  }

  // Graph order (Kahn): upstream before downstream, the file's order among equals.
  std::vector<std::size_t> order;
  {
    std::vector<int> indegree(graph.nodes.size(), 0);
    for (const auto& e : graph.edges) indegree[e.to] += 1;
    std::vector<bool> placed(graph.nodes.size(), false);
    while (order.size() < graph.nodes.size()) {
      bool any = false;
      for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        if (placed[i] || indegree[i] != 0) continue;
        placed[i] = any = true;
        order.push_back(i);
        for (const auto& e : graph.edges)
          if (e.from == i) indegree[e.to] -= 1;
        break;
      }
      if (!any) {  // check_pipeline refuses cycles; never here
        result.ok = false;
        result.error = "the pipeline's graph has a cycle";
        return result;
      }
    }
  }

  ManualClock clock(config.wall_start);
  SharedResources shared;
  {
    // Which sinks each source's records reach, as the supervisor tells the delivery registry.
    auto reg = std::make_shared<DeliveryRegistry>();
    for (const auto& [source, sinks] : spec::sinks_reached(spec, run_plugins)) {
      std::vector<DeliveryRegistry::SinkRef> refs;
      for (const auto& sink : sinks) refs.push_back({sink.id, sink.plugin});
      reg->set_sinks_of(source, std::move(refs));
    }
    shared.objects[kDeliveryKey] = reg;
  }

  std::map<std::string, std::unique_ptr<StageCounters>> counters;
  std::mutex fail_mu;  // a real source's thread may fail while the runner stops it
  auto fail = [&](const std::string& id, const std::string& message) {
    std::lock_guard lock(fail_mu);
    if (result.ok) {
      result.ok = false;
      result.failed_stage = id;
      result.error = message;
    }
  };
  DriverEnv env;
  env.pipeline = spec.name;
  env.run_id = config.run_id;
  env.shared = &shared;
  env.clock = &clock;
  env.log = config.log ? config.log
                       : [](LogLevel level, std::string_view scope, std::string_view message) { write_log(level, scope, message); };
  env.fail = fail;

  std::vector<Node> nodes(graph.nodes.size());
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const auto& gn = graph.nodes[i];
    auto& c = counters[gn.id()];
    c = std::make_unique<StageCounters>();
    nodes[i].replaced = config.replaced.count(gn.id()) > 0;
    try {
      nodes[i].driver = std::make_unique<StageDriver>(env, gn.id(), gn.plugin->info(), gn.plugin->create(gn.spec->config), *c);
    } catch (const std::exception& e) {
      fail(gn.id(), e.what());
      return result;
    }
    if (gn.input_writers > 0) {
      nodes[i].input = std::make_unique<Channel>("->" + gn.id(), kUnbounded, UINT64_MAX, gn.input_writers, nullptr, clock);
      nodes[i].driver->set_input(nodes[i].input.get());
    }
  }
  for (const auto& e : graph.edges) nodes[e.from].driver->connect(e.output, nodes[e.to].input.get());

  // Captures: one more consumer channel per captured output (or per stage input, fed by the
  // same outputs as the stage).
  std::map<std::string, std::unique_ptr<Channel>> captures;
  for (const auto& name : config.captures) {
    if (name.starts_with("->")) {
      const std::string id = name.substr(2);
      const auto* s = spec.stage(id);
      if (!s || s->inputs.empty()) continue;
      auto ch = std::make_unique<Channel>("capture" + name, kUnbounded, UINT64_MAX, static_cast<int>(s->inputs.size()), nullptr, clock);
      for (const auto& in : s->inputs) nodes[graph.index(in.stage)].driver->connect(in.output, ch.get());
      captures[name] = std::move(ch);
    } else {
      const auto dot = name.find('.');
      const std::string id = name.substr(0, dot), output = dot == std::string::npos ? "" : name.substr(dot + 1);
      if (!spec.stage(id)) continue;
      auto ch = std::make_unique<Channel>("capture:" + name, kUnbounded, UINT64_MAX, 1, nullptr, clock);
      try {
        nodes[graph.index(id)].driver->connect(output, ch.get());
      } catch (const std::exception& e) {
        fail(id, e.what());
        return result;
      }
      captures[name] = std::move(ch);
    }
  }

  auto close_all = [&] {
    for (auto it = order.rbegin(); it != order.rend(); ++it)
      if (nodes[*it].driver) nodes[*it].driver->close();
  };

  for (std::size_t i : order) {
    try {
      nodes[i].driver->open();
    } catch (const std::exception& e) {
      fail(nodes[i].driver->id(), fmt::format("open failed: {}", e.what()));
      close_all();
      return result;
    }
  }

  auto failed_now = [&](std::size_t i, const std::string& message) {
    fail(nodes[i].driver->id(), message);
    nodes[i].failed = true;
    if (nodes[i].input) nodes[i].input->cancel();  // nothing more reaches it; upstream pushes are dropped, never wedged
  };
  auto step = [&](std::size_t i, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      failed_now(i, e.what());
    } catch (...) {
      failed_now(i, "unknown exception");
    }
  };
  // Every stage processes what reached it, until nothing moves.
  auto pump = [&] {
    for (bool moved = true; moved;) {
      moved = false;
      for (std::size_t i : order) {
        auto& n = nodes[i];
        if (!n.input || n.failed) continue;
        Batch b;
        while (!n.failed && n.input->pop_until(b, clock.now()) == Channel::Pop::Item) {
          moved = true;
          step(i, [&] { n.driver->deliver(std::move(b)); });
        }
      }
    }
  };
  auto fire_timers = [&] {
    for (std::size_t i : order) {
      auto& n = nodes[i];
      if (!n.input || n.failed || n.next_timer == Clock::never() || clock.now() < n.next_timer) continue;
      step(i, [&] { n.driver->timer(); });
      n.next_timer = clock.now() + n.interval;
      pump();
    }
  };

  for (auto& n : nodes)
    if (n.input) {
      n.interval = static_cast<Processor&>(n.driver->stage()).timer_interval();
      if (n.interval > std::chrono::milliseconds(0)) n.next_timer = clock.now() + n.interval;
    }

  // Sources that are not replaced run first, to their own end (file-source with exit_at_end,
  // sensor-simulator with max_records), into channels bounded meanwhile: one that never ends
  // must not fill the memory before it is stopped.
  std::vector<Channel*> all_channels;
  for (auto& n : nodes)
    if (n.input) all_channels.push_back(n.input.get());
  for (auto& [name, ch] : captures) all_channels.push_back(ch.get());
  for (auto* c : all_channels) c->set_max_batches(config.source_max_batches);
  for (std::size_t i : order) {
    auto& n = nodes[i];
    if (n.input || n.replaced) continue;
    StageDriver* d = n.driver.get();
    auto done = std::async(std::launch::async, [d] { d->run(); });
    const auto deadline = std::chrono::steady_clock::now() + config.source_timeout;
    std::string why;
    // Polled: the source's own thread cannot tell that it is blocked for good.
    while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      const bool full = std::any_of(all_channels.begin(), all_channels.end(),
                                    [](Channel* c) { return c->stats().blocked_writers > 0; });
      if (full) why = fmt::format("emitted more than {} batches before the rest of the pipeline ran", config.source_max_batches);
      else if (std::chrono::steady_clock::now() >= deadline)
        why = fmt::format("did not end by itself within {}s", config.source_timeout.count());
      if (why.empty()) continue;
      d->request_stop();
      for (auto* c : all_channels) c->cancel();  // unblocks its emit; the run is failed anyway
      fail(d->id(), why + ": bound it (max_records, exit_at_end) or replace it with inputs in the test");
      done.wait();
      break;
    }
    if (!why.empty()) break;
  }
  for (auto* c : all_channels) c->set_max_batches(kUnbounded);
  pump();

  // The timeline.
  std::vector<TestInput> inputs = std::move(config.inputs);
  std::stable_sort(inputs.begin(), inputs.end(), [](const TestInput& a, const TestInput& b) { return a.at < b.at; });
  std::map<std::string, int64_t> offsets;
  const auto start = clock.now();
  auto advance_to = [&](Clock::duration t) {
    if (start + t > clock.now()) clock.advance(start + t - clock.now());
    fire_timers();
  };
  for (std::size_t k = 0; k < inputs.size() && result.ok;) {
    const auto t = inputs[k].at;
    advance_to(t);
    for (; k < inputs.size() && inputs[k].at == t && result.ok; ++k) {
      auto& in = inputs[k];
      const std::size_t i = graph.index(in.stage);
      int64_t& off = offsets[in.stage + "." + in.output];
      const auto rows = static_cast<int64_t>(in.batch.num_rows());
      in.batch.positions() = Positions::track({PositionRange{in.stage, 0, off, off + rows}}, nullptr);
      off += rows;
      step(i, [&] { nodes[i].driver->emitter().emit(std::move(in.batch), in.output); });
      pump();
    }
  }
  if (result.ok) advance_to(std::max(config.end_at, inputs.empty() ? Clock::duration(0) : inputs.back().at));

  // End of input: every stage finishes in graph order (drains, finish(), closes its outputs).
  for (std::size_t i : order) {
    auto& n = nodes[i];
    if (!n.input && !n.replaced) continue;  // real sources have ended already
    // A failed stage gets no finish(); the others drain and commit what they hold, as in a run.
    if (n.failed && n.input) n.input->cancel();
    n.driver->run();
  }
  close_all();

  for (auto& [name, ch] : captures) {
    auto& out = result.captured[name];
    Batch b;
    while (ch->pop_until(b, clock.now()) == Channel::Pop::Item) {
      b.positions().ack();
      out.push_back(std::move(b));
    }
  }
  for (const auto& gn : graph.nodes) {
    StageReport r;
    r.id = gn.id();
    r.plugin = gn.plugin->info().name;
    r.kind = gn.plugin->info().kind;
    auto& c = *counters[gn.id()];
    r.batches_in = c.batches_in;
    r.records_in = c.records_in;
    r.batches_out = c.batches_out;
    r.records_out = c.records_out;
    r.counters = c.named_values();
    result.stages.push_back(std::move(r));
  }
  nodes.clear();  // stages go before their plugins could be unloaded
  {
    std::lock_guard lock(shared.mu);
    shared.objects.clear();
  }
  return result;
}

}  // namespace flow::runtime
