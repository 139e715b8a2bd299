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

std::optional<TimeLeft> time_left(int cycle, int cycles, double cycle_seconds, std::optional<double> duration_seconds) {
  if (!duration_seconds) return std::nullopt;
  TimeLeft t;
  t.cycle = std::max(0.0, *duration_seconds - cycle_seconds);
  if (cycles > 0) t.total = t.cycle + *duration_seconds * std::max(0, cycles - cycle - 1);
  return t;
}

std::optional<TimeLeft> time_left(const runtime::Snapshot& s) {
  return time_left(s.cycle, s.cycles, s.cycle_seconds, s.duration_seconds);
}

std::string time_left_text(int cycle, int cycles, double cycle_seconds, std::optional<double> duration_seconds) {
  const auto t = time_left(cycle, cycles, cycle_seconds, duration_seconds);
  if (!t) return "";
  const double elapsed = std::min(cycle_seconds, *duration_seconds);
  std::string text = fmt::format("{:.0f}s of {:.0f}s, {:.0f}s left", elapsed, *duration_seconds, t->cycle);
  if (cycles == 1) return text;
  const std::string which = cycles > 0 ? fmt::format("cycle {}/{}", cycle + 1, cycles) : fmt::format("cycle {}", cycle + 1);
  text = which + " " + text;
  if (t->total) text += fmt::format(", {:.0f}s in all", *t->total);
  return text;
}

std::string status_text(const runtime::Snapshot& now, const runtime::Snapshot* before, double dt,
                        std::optional<double> duration_seconds) {
  std::string line;
  if (const auto d = now.duration_seconds ? now.duration_seconds : duration_seconds)
    line = "[" + time_left_text(now.cycle, now.cycles, now.cycle_seconds, d) + "]";
  else if (now.cycles != 1)
    line = fmt::format("[cycle {} {:>4.0f}s]", now.cycle + 1, now.uptime_seconds);
  else
    line = fmt::format("[{:>4.0f}s]", now.uptime_seconds);
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
