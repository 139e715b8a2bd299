#include "observability/status_line.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "runtime/log.hpp"

namespace flow::observability {
namespace {

std::string human(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

uint64_t progress(const runtime::StageReport& s) { return s.kind == StageKind::Source ? s.records_out : s.records_in; }

}  // namespace

std::string status_text(const runtime::Snapshot& now, const runtime::Snapshot* before, double dt,
                        std::optional<double> duration_seconds) {
  std::string line = fmt::format("[{:>4.0f}s", now.uptime_seconds);
  if (duration_seconds) {
    // Counted from the start of the run (for cycled runs, of the first cycle).
    const double left = std::max(0.0, *duration_seconds - now.uptime_seconds);
    line += fmt::format(" of {:.0f}s, {:.0f}s left", *duration_seconds, left);
  }
  line += "]";
  for (const auto& s : now.stages) {
    double rate = 0;
    if (before && dt > 0)
      for (const auto& b : before->stages)
        if (b.id == s.id) rate = static_cast<double>(progress(s) - progress(b)) / dt;
    line += fmt::format(" {} {}/s", s.id, human(rate));
    for (const auto& [name, c] : now.channels)
      if (name == "->" + s.id) line += fmt::format(" [{}/{}]", c.depth, c.max_batches);
    line += " |";
  }
  line.pop_back();
  return line;
}

StatusLine::StatusLine(std::function<runtime::Snapshot()> snapshot, std::optional<double> duration_seconds)
    : snapshot_(std::move(snapshot)), duration_(duration_seconds) {
  if (isatty(STDERR_FILENO)) thread_ = std::thread([this] { loop(); });
}

StatusLine::~StatusLine() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  runtime::clear_status_line();
}

void StatusLine::loop() {
  std::optional<runtime::Snapshot> before;
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; })) {
    auto snap = snapshot_();
    const auto t = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t - last).count();
    const auto line = status_text(snap, before ? &*before : nullptr, dt, duration_);
    runtime::draw_status_line(line);
    before = std::move(snap);
    last = t;
  }
}

}  // namespace flow::observability
