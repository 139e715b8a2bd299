#include "observability/metrics_server.hpp"

#include "flow/text.hpp"
#include "observability/dashboard_page.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <thread>

namespace flow::observability {
namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string metric_name(std::string_view raw) {
  std::string out;
  for (char c : raw) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// A plugin counter key "name{k=\"v\"}" -> ("name", "k=\"v\"").
std::pair<std::string, std::string> split_key(const std::string& key) {
  const auto brace = key.find('{');
  if (brace == std::string::npos) return {key, ""};
  return {key.substr(0, brace), key.substr(brace + 1, key.size() - brace - 2)};
}


}  // namespace

std::string prometheus_text(const runtime::Snapshot& s) {
  std::string out;
  const std::string p = escape_label(s.pipeline);
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("flow_stage_records_in_total", "counter", "Records a stage received.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_records_in_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.records_in);
  family("flow_stage_records_out_total", "counter", "Records a stage emitted.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_records_out_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.records_out);
  family("flow_stage_batches_in_total", "counter", "Batches a stage received.");
  for (const auto& g : s.stages)
    out += fmt::format("flow_stage_batches_in_total{{pipeline=\"{}\",stage=\"{}\"}} {}\n", p, escape_label(g.id), g.batches_in);
  // Plugin counters: one family per name, the plugin's labels kept.
  std::map<std::string, std::vector<std::string>> plugin_lines;
  for (const auto& g : s.stages)
    for (const auto& [key, v] : g.counters) {
      auto [name, labels] = split_key(key);
      plugin_lines["flow_plugin_" + metric_name(name) + "_total"].push_back(
          fmt::format("{{pipeline=\"{}\",stage=\"{}\"{}{}}} {}", p, escape_label(g.id), labels.empty() ? "" : ",", labels, v));
    }
  for (const auto& [name, lines] : plugin_lines) {
    out += fmt::format("# TYPE {} counter\n", name);
    for (const auto& l : lines) out += name + l + "\n";
  }
  // Plugin gauges (kafka_partition_lag{topic,partition}): the same, without "_total".
  std::map<std::string, std::vector<std::string>> gauge_lines;
  for (const auto& g : s.stages)
    for (const auto& [key, v] : g.gauges) {
      auto [name, labels] = split_key(key);
      gauge_lines["flow_plugin_" + metric_name(name)].push_back(
          fmt::format("{{pipeline=\"{}\",stage=\"{}\"{}{}}} {}", p, escape_label(g.id), labels.empty() ? "" : ",", labels, v));
    }
  for (const auto& [name, lines] : gauge_lines) {
    out += fmt::format("# TYPE {} gauge\n", name);
    for (const auto& l : lines) out += name + l + "\n";
  }
  family("flow_channel_depth_batches", "gauge", "Batches queued in a stage's input channel.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_depth_batches{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.depth);
  family("flow_channel_bytes", "gauge", "Bytes queued in a stage's input channel.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_bytes{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.bytes);
  family("flow_channel_records", "gauge", "Records queued in a stage's input channel.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_records{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.records);
  family("flow_channel_capacity_batches", "gauge", "A channel's limit in batches.");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_capacity_batches{{pipeline=\"{}\",channel=\"{}\"}} {}\n", p, escape_label(n), c.max_batches);
  family("flow_channel_writer_blocked_seconds_total", "counter", "Time writers waited for room (backpressure).");
  for (const auto& [n, c] : s.channels)
    out += fmt::format("flow_channel_writer_blocked_seconds_total{{pipeline=\"{}\",channel=\"{}\"}} {:.6f}\n", p, escape_label(n),
                       static_cast<double>(c.blocked_ns) / 1e9);
  family("flow_cycle", "gauge", "The current cycle, from 0.");
  out += fmt::format("flow_cycle{{pipeline=\"{}\"}} {}\n", p, s.cycle);
  return out;
}

std::string snapshot_json(const runtime::Snapshot& s) {
  auto q = [](std::string_view v) { return json_string(v); };
  std::string out = fmt::format(
      "{{\"pipeline\":{},\"cycle\":{},\"uptime_seconds\":{:.3f},\"cycles\":{},\"duration_seconds\":{},"
      "\"cycle_seconds\":{:.3f},\"stages\":[",
      q(s.pipeline), s.cycle, s.uptime_seconds, s.cycles,
      s.duration_seconds ? fmt::format("{:.3f}", *s.duration_seconds) : "null", s.cycle_seconds);
  for (std::size_t i = 0; i < s.stages.size(); ++i) {
    const auto& g = s.stages[i];
    std::string counters;
    for (const auto& [k, v] : g.counters) counters += fmt::format("{}{}:{}", counters.empty() ? "" : ",", q(k), v);
    std::string gauges;
    for (const auto& [k, v] : g.gauges) gauges += fmt::format("{}{}:{}", gauges.empty() ? "" : ",", q(k), v);
    out += fmt::format(
        "{}{{\"id\":{},\"plugin\":{},\"records_in\":{},\"records_out\":{},\"batches_in\":{},\"counters\":{{{}}},"
        "\"gauges\":{{{}}}}}",
        i ? "," : "", q(g.id), q(g.plugin), g.records_in, g.records_out, g.batches_in, counters, gauges);
  }
  out += "],\"channels\":[";
  for (std::size_t i = 0; i < s.channels.size(); ++i) {
    const auto& [n, c] = s.channels[i];
    out += fmt::format("{}{{\"name\":{},\"depth\":{},\"max_batches\":{},\"bytes\":{},\"max_bytes\":{},\"blocked_seconds\":{:.6f}}}",
                       i ? "," : "", q(n), c.depth, c.max_batches, c.bytes, c.max_bytes, static_cast<double>(c.blocked_ns) / 1e9);
  }
  return out + "]}";
}

std::string graph_json(const DashboardInfo& d) {
  auto q = [](std::string_view v) { return json_string(v); };
  std::string out = "{\"dashboard\":" + q(d.stage) + ",\"stages\":[";
  for (std::size_t i = 0; i < d.stages.size(); ++i)
    out += fmt::format("{}[{},{}]", i ? "," : "", q(d.stages[i].first), q(d.stages[i].second));
  out += "],\"edges\":[";
  for (std::size_t i = 0; i < d.edges.size(); ++i)
    out += fmt::format("{}{{\"from\":{},\"output\":{},\"to\":{}}}", i ? "," : "", q(d.edges[i].from), q(d.edges[i].output),
                       q(d.edges[i].to));
  return out + "]}";
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> stopping{false};
};

MetricsServer::MetricsServer(const std::string& host, int port, std::function<runtime::Snapshot()> snapshot)
    : MetricsServer(host, port, std::move(snapshot), DashboardInfo{}) {}

MetricsServer::MetricsServer(const std::string& host, int port, std::function<runtime::Snapshot()> snapshot,
                             DashboardInfo info)
    : impl_(std::make_unique<Impl>()) {
  auto& srv = impl_->server;
  // Each /tap reader (a dashboard page, a `flowctl tap`) holds a worker for as long as it reads:
  // more workers than httplib's default 8, so a few of them cannot starve Prometheus' scrape.
  srv.new_task_queue = [] { return new httplib::ThreadPool(32); };
  if (info.stage.empty())
    for (const auto& e : info.edges)
      if (info.stage.empty()) info.stage = e.to;  // first stage with an input
  srv.Get("/graph.json", [info](const httplib::Request&, httplib::Response& res) {
    if (!info.current) return res.set_content(graph_json(info), "application/json");
    DashboardInfo now = info.current();
    now.stage = info.stage;
    res.set_content(graph_json(now), "application/json");
  });
  // Server-Sent Events: one `data:` event per sampled row; `event: dropped` says how many
  // samples this reader missed because it was slower than the data.
  srv.Get("/tap", [taps = info.taps, impl = impl_.get()](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.get_param_value("stage");
    if (!taps || name.empty() || !taps->has(name)) {
      std::string known;
      if (taps)
        for (const auto& n : taps->names()) known += (known.empty() ? "" : ", ") + n;
      res.status = 404;
      res.set_content(fmt::format("no tap '{}'; this pipeline's taps: {}\n", name, known.empty() ? "(none)" : known),
                      "text/plain");
      return;
    }
    std::shared_ptr<runtime::TapSubscription> sub = taps->subscribe(name);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [sub, impl](std::size_t, httplib::DataSink& sink) {
      if (impl->stopping.load()) return false;
      uint64_t dropped = 0;
      auto rows = sub->pop(std::chrono::milliseconds(250), dropped);
      std::string out;
      if (dropped) out += fmt::format("event: dropped\ndata: {}\n\n", dropped);
      for (const auto& r : rows) out += "data: " + r + "\n\n";
      if (out.empty()) out = ":\n\n";  // a comment, so a gone reader is noticed
      return sink.write(out.data(), out.size());
    });
  });
  srv.Get("/metrics", [snapshot](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(snapshot()), "text/plain; version=0.0.4");
  });
  srv.Get("/metrics.json", [snapshot](const httplib::Request&, httplib::Response& res) {
    res.set_content(snapshot_json(snapshot()), "application/json");
  });
  srv.Post("/reload", [reload = info.reload](const httplib::Request&, httplib::Response& res) {
    if (!reload) {
      res.status = 404;
      res.set_content("this server does not reload a pipeline\n", "text/plain");
      return;
    }
    auto [status, text] = reload();
    res.status = status;
    res.set_content(text, "text/plain");
  });
  srv.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kDashboardHtml, "text/html; charset=utf-8"); });
  port_ = port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) throw std::runtime_error(fmt::format("metrics: cannot listen on {}:{}", host, port));
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

MetricsServer::~MetricsServer() {
  impl_->stopping = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace flow::observability
