// Prometheus metrics and a small live dashboard over HTTP, for a running pipeline:
//   /metrics       Prometheus text format
//   /metrics.json  the same snapshot as JSON (the dashboard polls it)
//   /              the dashboard (charts from a tap on the dashboard stage, and the metrics)
//   /tap?stage=S[.OUTPUT]  the records passing an edge, as Server-Sent Events (`flowctl tap`)
//   /graph.json    the stages, edges and dashboard stage (the dashboard's pipeline graph)
//   POST /reload   re-read the pipeline file (hot reload, `flowctl reload`)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"

namespace flow::observability {

std::string prometheus_text(const runtime::Snapshot& s);
std::string snapshot_json(const runtime::Snapshot& s);

// What the dashboard and /tap need besides the snapshot; all optional.
struct DashboardInfo {
  runtime::TapHub* taps = nullptr;  // /tap answers 404 without it
  std::string stage;                // the dashboard's tap ("validate"); empty: the first non-source
  struct Edge {
    std::string from, output, to;
  };
  std::vector<std::pair<std::string, std::string>> stages;  // id, plugin
  std::vector<Edge> edges;
  // The stages and edges as they are now, when a reload can change them (flowctl run sets it);
  // unset, /graph.json serves `stages` and `edges`.
  std::function<DashboardInfo()> current;
  // POST /reload: status and text of the answer (flowctl run's reloader); 404 without it.
  std::function<std::pair<int, std::string>()> reload;
};

std::string graph_json(const DashboardInfo& d);

class MetricsServer {
 public:
  MetricsServer(const std::string& host, int port, std::function<runtime::Snapshot()> snapshot, DashboardInfo info);
  // Binds host:port (port 0 = any free port) and serves on its own thread; throws
  // std::runtime_error when it cannot bind.
  MetricsServer(const std::string& host, int port, std::function<runtime::Snapshot()> snapshot);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace flow::observability
