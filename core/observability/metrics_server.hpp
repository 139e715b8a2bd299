// Prometheus metrics and a small live dashboard over HTTP, for a running pipeline:
//   /metrics       Prometheus text format
//   /metrics.json  the same snapshot as JSON (the dashboard polls it)
//   /              the dashboard
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "runtime/runtime.hpp"

namespace flow::observability {

std::string prometheus_text(const runtime::Snapshot& s);
std::string snapshot_json(const runtime::Snapshot& s);

class MetricsServer {
 public:
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
