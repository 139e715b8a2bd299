// flowctl run | validate | graph
#include <fmt/format.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "host/yaml_value.hpp"
#include "flowctl/commands.hpp"
#include "host/plugin_loader.hpp"
#include "observability/metrics_server.hpp"
#include "observability/status_line.hpp"
#include "observability/summary.hpp"
#include "runtime/log.hpp"
#include "runtime/runtime.hpp"
#include "spec/delivery_check.hpp"
#include "spec/pipeline_spec.hpp"

namespace flow::cli {
namespace {

struct Loaded {
  spec::PipelineSpec spec;
  std::map<std::string, loader::PluginPtr> plugins;
};

// parse -> overrides -> shape -> plugins and configs. Prints every error (or, given `error_text`,
// puts them there); nullopt on any.
std::optional<Loaded> load_pipeline(const std::string& file, const std::vector<std::string>& sets,
                                    std::optional<std::string> duration, loader::Registry& registry,
                                    std::string* substituted = nullptr, std::string* error_text = nullptr) {
  std::vector<ConfigError> errors;
  std::vector<Location> unresolved;  // values whose variables are unset: their checks would only repeat it
  auto root = config::parse_yaml_file(file, errors, &unresolved);
  const std::size_t yaml_errors = errors.size();
  if (root) {
    std::vector<std::string> all_sets = sets;
    if (duration) all_sets.push_back("run.duration=" + *duration);
    spec::apply_overrides(*root, all_sets, errors);
    if (substituted) *substituted = config::to_yaml(*root);
  }
  // One pass: the plugin, option and wiring checks run on whatever of the file could be read.
  std::optional<spec::PipelineSpec> spec;
  spec::PipelineSpec partial;
  if (root) spec = spec::parse_pipeline(*root, file, errors, &partial);
  std::map<std::string, loader::PluginPtr> plugins;
  if (root && root->is_map()) plugins = spec::check_pipeline(spec ? *spec : partial, registry, errors);
  std::vector<ConfigError> kept(errors.begin(), errors.begin() + static_cast<std::ptrdiff_t>(yaml_errors));
  for (std::size_t i = yaml_errors; i < errors.size(); ++i) {
    const auto& w = errors[i].where;
    const bool follows = std::any_of(unresolved.begin(), unresolved.end(), [&](const Location& u) {
      return u.file == w.file && u.line == w.line && u.column == w.column;
    });
    if (!follows) kept.push_back(errors[i]);
  }
  errors = std::move(kept);
  for (const auto& w : registry.warnings()) std::fprintf(stderr, "flowctl: warning: %s\n", w.c_str());
  if (!errors.empty()) {
    const std::string text = spec::format_errors(errors) +
                             fmt::format("{} error{} in {}\n", errors.size(), errors.size() == 1 ? "" : "s", file);
    if (error_text) *error_text = text;
    else std::fputs(text.c_str(), stderr);
    return std::nullopt;
  }
  return Loaded{std::move(*spec), std::move(plugins)};
}

// The stages (id, plugin) and edges the dashboard draws.
observability::DashboardInfo dashboard_graph(const Loaded& p) {
  observability::DashboardInfo d;
  for (const auto& s : p.spec.stages) {
    d.stages.emplace_back(s.id, p.plugins.at(s.id)->info().name);
    for (const auto& in : s.inputs) d.edges.push_back({in.stage, in.output, s.id});
  }
  return d;
}

// The graph as the last applied reload left it: the reloader writes it, /graph.json reads it.
class LiveGraph {
 public:
  void set(observability::DashboardInfo g) {
    std::lock_guard lock(mu_);
    graph_.stages = std::move(g.stages);
    graph_.edges = std::move(g.edges);
  }
  observability::DashboardInfo get() const {
    std::lock_guard lock(mu_);
    observability::DashboardInfo g;
    g.stages = graph_.stages;
    g.edges = graph_.edges;
    return g;
  }

 private:
  mutable std::mutex mu_;
  observability::DashboardInfo graph_;
};

// The signals flowctl run takes on its own thread. Blocked before any other thread starts (the
// runtime's, librdkafka's and the reloader's threads inherit the mask).
sigset_t run_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGHUP);
  return set;
}

// Hot reload: SIGHUP and POST /reload re-read the file with the run's --set overrides and
// --duration on this thread, one request at a time, so the signal thread stays free for a
// SIGTERM meanwhile. An invalid file is logged (file:line:column, as validate prints it) and the
// pipeline goes on unchanged; a valid one goes to Runtime::reload.
class Reloader {
 public:
  struct Answer {
    int status = 200;  // HTTP: 200 applied, 422 invalid file, 409 refused
    std::string text;
  };

  Reloader(runtime::Runtime& rt, std::string file, std::vector<std::string> sets, std::optional<std::string> duration,
           std::vector<std::string> plugin_paths, std::function<void(observability::DashboardInfo)> applied = {})
      : rt_(rt),
        file_(std::move(file)),
        sets_(std::move(sets)),
        duration_(std::move(duration)),
        paths_(std::move(plugin_paths)),
        applied_(std::move(applied)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Reloader() {
    {
      std::lock_guard lock(mu_);
      over_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (auto& r : queue_) r->set_value({503, "the run has ended\n"});
  }

  std::future<Answer> request(std::string why) {
    auto p = std::make_shared<std::promise<Answer>>();
    auto f = p->get_future();
    std::lock_guard lock(mu_);
    if (over_) {
      p->set_value({503, "the run has ended\n"});
      return f;
    }
    runtime::write_log(LogLevel::Info, "flow", fmt::format("{}: reloading '{}'", why, file_));
    queue_.push_back(std::move(p));
    cv_.notify_all();
    return f;
  }

 private:
  void serve() {
    for (;;) {
      std::shared_ptr<std::promise<Answer>> next;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return over_ || !queue_.empty(); });
        if (over_) return;
        next = queue_.front();
        queue_.pop_front();
      }
      next->set_value(reload_once());
    }
  }

  Answer reload_once() {
    loader::Registry registry(loader::default_search_path(paths_));
    std::string errors;
    auto loaded = load_pipeline(file_, sets_, duration_, registry, nullptr, &errors);
    if (!loaded) {
      runtime::write_log(LogLevel::Error, "flow",
                         fmt::format("reload: '{}' is invalid; the pipeline goes on unchanged:", file_));
      std::size_t at = 0;
      while (at < errors.size()) {
        const auto nl = errors.find('\n', at);
        const std::string line = errors.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (!line.empty()) runtime::write_log(LogLevel::Error, "flow", line);
        at = nl == std::string::npos ? errors.size() : nl + 1;
      }
      return {422, errors + "reload refused: the pipeline goes on unchanged\n"};
    }
    observability::DashboardInfo graph = dashboard_graph(*loaded);
    const auto result = rt_.reload(std::move(loaded->spec), std::move(loaded->plugins));
    if (!result.ok) {
      runtime::write_log(LogLevel::Error, "flow",
                         fmt::format("reload of '{}' refused: {}; the pipeline goes on unchanged", file_, result.message));
      return {409, "reload refused: " + result.message + "\n"};
    }
    if (applied_) applied_(std::move(graph));
    return {200, result.message + "\n"};
  }

  runtime::Runtime& rt_;
  const std::string file_;
  const std::vector<std::string> sets_;
  const std::optional<std::string> duration_;
  const std::vector<std::string> paths_;
  const std::function<void(observability::DashboardInfo)> applied_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<std::promise<Answer>>> queue_;
  bool over_ = false;
  std::thread thread_;  // last: started once the rest is set
};

// SIGINT/SIGTERM/SIGHUP are taken by one thread with sigwait (run_signals() must be blocked
// already). The first SIGINT/SIGTERM drains, the second aborts; SIGHUP (what `systemctl reload`
// sends) asks the reloader to re-read the file. SIGUSR2 ends the watcher.
class SignalWatcher {
 public:
  SignalWatcher(runtime::Runtime& rt, Reloader& reloader) : set_(run_signals()) {
    thread_ = std::thread([this, &rt, &reloader] {
      int seen = 0;
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0 || sig == SIGUSR2) return;
        if (sig == SIGHUP) {
          reloader.request("SIGHUP");  // answered in the log
          continue;
        }
        if (++seen == 1) rt.request_stop();
        else rt.abort();
      }
    });
  }
  ~SignalWatcher() {
    if (!thread_.joinable()) return;
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

std::string graph_text(const Loaded& l, const std::string& format) {
  std::string out;
  const bool dot = format == "dot";
  auto node_id = [](const std::string& s) {
    std::string r;
    for (char c : s) r += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return r;
  };
  out += dot ? fmt::format("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", l.spec.name) : "flowchart LR\n";
  for (const auto& s : l.spec.stages) {
    const auto& info = l.plugins.at(s.id)->info();
    if (dot)
      out += fmt::format("  {} [label=\"{}\\n{} ({})\"];\n", node_id(s.id), s.id, info.name, kind_name(info.kind));
    else
      out += fmt::format("  {}[\"{}<br/>{} ({})\"]\n", node_id(s.id), s.id, info.name, kind_name(info.kind));
  }
  for (const auto& s : l.spec.stages)
    for (const auto& in : s.inputs) {
      const std::string label = in.output.empty() ? "" : in.output;
      if (dot)
        out += fmt::format("  {} -> {}{};\n", node_id(in.stage), node_id(s.id),
                           label.empty() ? "" : fmt::format(" [label=\"{}\"]", label));
      else
        out += fmt::format("  {} -->{} {}\n", node_id(in.stage), label.empty() ? "" : "|" + label + "|", node_id(s.id));
    }
  // The Kafka hop: a kafka-sink producing to a topic a kafka-source of the same file consumes
  // (same brokers value), drawn dashed with the topic.
  auto text_of = [](const Value& config, const char* key) {
    const Value* v = config.find(key);
    return v && v->is_scalar() ? v->text() : std::string();
  };
  for (const auto& prod : l.spec.stages) {
    if (prod.plugin != "kafka-sink") continue;
    const std::string topic = text_of(prod.config, "topic");
    for (const auto& cons : l.spec.stages) {
      if (cons.plugin != "kafka-source" || topic.empty() || text_of(prod.config, "brokers") != text_of(cons.config, "brokers"))
        continue;
      const Value* topics = cons.config.find("topics");
      bool reads = false;
      if (topics && topics->is_list())
        for (const auto& t : topics->items()) reads = reads || (t.is_scalar() && t.text() == topic);
      else if (topics && topics->is_scalar())
        reads = topics->text() == topic;
      if (!reads) continue;
      if (dot)
        out += fmt::format("  {} -> {} [style=dashed, label=\"kafka: {}\"];\n", node_id(prod.id), node_id(cons.id), topic);
      else
        out += fmt::format("  {} -.->|kafka: {}| {}\n", node_id(prod.id), topic, node_id(cons.id));
    }
  }
  if (dot) out += "}\n";
  return out;
}

}  // namespace

void register_pipeline_commands(CLI::App& app, Globals& g) {
  struct RunArgs {
    std::string file;
    std::vector<std::string> sets;
    std::optional<std::string> duration;
    bool quiet = false;
    int metrics_port = -1;
    std::string metrics_host = "127.0.0.1";
    std::string dashboard;            // --dashboard STAGE, over the file's `dashboard: {stage: ...}`
    std::string log_format = "text";  // --log-format
  };
  auto args = std::make_shared<RunArgs>();

  auto* run = app.add_subcommand(
      "run", "Run a pipeline until its sources end, its duration passes, or SIGINT/SIGTERM; SIGHUP re-reads the file (hot reload)");
  run->add_option("file", args->file, "Pipeline YAML file")->required()->check(CLI::ExistingFile);
  run->add_option("--set", args->sets, "Override an option: stage.option=value, or run.duration=30s / run.cycles=3 / run.scheduling=normal")
      ->type_name("KEY=VALUE");
  run->add_option("--duration", args->duration, "Run for this long per cycle (e.g. 30s, 2m); same as --set run.duration=...")
      ->type_name("DURATION");
  run->add_flag("--quiet,-q", args->quiet, "No live status line and no summary");
  run->add_option("--metrics-port", args->metrics_port,
                   "Serve Prometheus metrics (/metrics) and a live dashboard (/) on this port (0 = any free port)")
      ->type_name("PORT");
  run->add_option("--metrics-host", args->metrics_host, "Address for --metrics-port (default 127.0.0.1)")->type_name("ADDR");
  run->add_option("--dashboard", args->dashboard, "Stage whose records the dashboard charts (default: the file's 'dashboard.stage')")
      ->type_name("STAGE[.OUTPUT]");
  run->add_option("--log-format", args->log_format, "text (default) or json: one object per line with time, level, stage, message")
      ->check(CLI::IsMember({"text", "json"}));
  run->callback([&g, args] {
    runtime::LogFormat log_format = runtime::LogFormat::Text;
    runtime::parse_log_format(args->log_format, log_format);
    runtime::set_log_format(log_format);
    loader::Registry registry(loader::default_search_path(g.plugin_paths));
    auto loaded = load_pipeline(args->file, args->sets, args->duration, registry);
    if (!loaded) {
      g.exit_code = kExitConfig;
      return;
    }
    runtime::TapHub taps;  // outlives the runtime and the metrics server
    observability::DashboardInfo dash = dashboard_graph(*loaded);
    dash.taps = &taps;
    dash.stage = args->dashboard.empty() ? loaded->spec.dashboard_stage : args->dashboard;
    for (const auto& s : loaded->spec.stages) {
      const auto& info = loaded->plugins.at(s.id)->info();
      if (info.main_output) taps.point(s.id);  // known before the first cycle builds its drivers
      for (const auto& o : info.extra_outputs) taps.point(s.id + "." + o);
    }
    // The graph /graph.json serves, replaced by each applied reload.
    auto live = std::make_shared<LiveGraph>();
    live->set(dash);
    dash.current = [live] { return live->get(); };
    if (!dash.stage.empty() && !taps.has(dash.stage)) {  // an unknown stage, or an output it does not have
      std::string known;
      for (const auto& n : taps.names()) known += (known.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "flowctl: error: %s: no stage output '%s' (there are: %s)\n",
                   args->dashboard.empty() ? "dashboard.stage" : "--dashboard", dash.stage.c_str(), known.c_str());
      g.exit_code = kExitConfig;
      return;
    }
    runtime::RunOptions opts;
    opts.taps = &taps;
    runtime::RunReport report;
    {
      std::optional<double> duration;
      if (loaded->spec.run.duration) duration = std::chrono::duration<double>(*loaded->spec.run.duration).count();
      const sigset_t blocked = run_signals();
      pthread_sigmask(SIG_BLOCK, &blocked, nullptr);  // before any thread starts
      runtime::Runtime rt(std::move(loaded->spec), loaded->plugins, opts);
      Reloader reloader(rt, args->file, args->sets, args->duration, g.plugin_paths,
                        [live](observability::DashboardInfo g) { live->set(std::move(g)); });  // gone before rt is
      SignalWatcher signals(rt, reloader);
      dash.reload = [&reloader] {
        const auto a = reloader.request("POST /reload").get();
        return std::pair{a.status, a.text};
      };
      std::unique_ptr<observability::MetricsServer> metrics;
      if (args->metrics_port >= 0) {
        try {
          metrics = std::make_unique<observability::MetricsServer>(args->metrics_host, args->metrics_port,
                                                                   [&rt] { return rt.snapshot(); }, dash);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "flowctl: error: %s\n", e.what());
          g.exit_code = kExitConfig;
          return;
        }
        runtime::write_log(LogLevel::Info, "flow",
                           fmt::format("metrics: http://{}:{}/metrics  dashboard: http://{}:{}/", args->metrics_host,
                                       metrics->port(), args->metrics_host, metrics->port()));
      }
      std::optional<observability::StatusLine> status;
      if (!args->quiet) status.emplace([&rt] { return rt.snapshot(); }, duration);
      report = rt.run();
    }
    if (!args->quiet) std::fputs(observability::format_summary(report).c_str(), stderr);
    if (!report.ok) {
      if (log_format == runtime::LogFormat::Json)  // every stderr line stays a JSON object
        runtime::write_log(LogLevel::Error, report.failed_stage, "stage failed: " + report.error);
      else
        std::fprintf(stderr, "flowctl: error: stage '%s' failed: %s\n", report.failed_stage.c_str(), report.error.c_str());
      g.exit_code = kExitRuntime;
    } else if (report.aborted) {
      // A second signal skipped the drain: what was in flight was not made durable (it will be
      // delivered again after a restart), so the run did not complete.
      runtime::write_log(LogLevel::Warn, "flow", "aborted by a second signal: the drain was skipped");
      g.exit_code = kExitRuntime;
    }
  });

  auto vfile = std::make_shared<std::string>();
  auto vsets = std::make_shared<std::vector<std::string>>();
  auto vprint = std::make_shared<bool>(false);
  auto* validate = app.add_subcommand("validate", "Check a pipeline file and its plugins' options; print every error with file:line:column");
  validate->add_option("file", *vfile, "Pipeline YAML file")->required()->check(CLI::ExistingFile);
  validate->add_option("--set", *vsets, "Override an option, as for run")->type_name("KEY=VALUE");
  validate->add_flag("--print", *vprint, "Print the file as run would see it: variables substituted, --set applied");
  validate->callback([&g, vfile, vsets, vprint] {
    loader::Registry registry(loader::default_search_path(g.plugin_paths));
    std::string substituted;
    auto loaded = load_pipeline(*vfile, *vsets, std::nullopt, registry, &substituted);
    if (*vprint && !substituted.empty()) std::fputs(substituted.c_str(), stdout);
    if (!loaded) {
      g.exit_code = kExitConfig;
      return;
    }
    if (*vprint) return;
    // Not errors: the run goes ahead, at-least-once, and the source says so again when it opens.
    for (const auto& w : spec::delivery_warnings(loaded->spec, loaded->plugins))
      std::fprintf(stderr, "%s: warning: %s\n", w.where.str().c_str(), w.message.c_str());
    std::printf("%s: ok (pipeline '%s', %zu stages)\n", vfile->c_str(), loaded->spec.name.c_str(), loaded->spec.stages.size());
  });

  auto gfile = std::make_shared<std::string>();
  auto gformat = std::make_shared<std::string>("dot");
  auto* graph = app.add_subcommand("graph", "Print the pipeline's stages and edges as Graphviz DOT or Mermaid");
  graph->add_option("file", *gfile, "Pipeline YAML file")->required()->check(CLI::ExistingFile);
  graph->add_option("--format", *gformat, "dot or mermaid")->check(CLI::IsMember({"dot", "mermaid"}));
  graph->callback([&g, gfile, gformat] {
    loader::Registry registry(loader::default_search_path(g.plugin_paths));
    auto loaded = load_pipeline(*gfile, {}, std::nullopt, registry);
    if (!loaded) {
      g.exit_code = kExitConfig;
      return;
    }
    std::fputs(graph_text(*loaded, *gformat).c_str(), stdout);
  });
}

}  // namespace flow::cli
