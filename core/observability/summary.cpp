#include "observability/summary.hpp"

#include <fmt/format.h>

namespace flow::observability {

std::string format_summary(const runtime::RunReport& r) {
  std::string out = fmt::format("{:<16} {:<20} {:>12} {:>12}  {}\n", "stage", "plugin", "records in", "records out", "counters");
  for (const auto& s : r.stages) {
    std::string counters;
    for (const auto& [k, v] : s.counters) counters += fmt::format("{}{}={}", counters.empty() ? "" : " ", k, v);
    out += fmt::format("{:<16} {:<20} {:>12} {:>12}  {}\n", s.id, s.plugin,
                       s.kind == StageKind::Source ? std::string("-") : std::to_string(s.records_in), s.records_out, counters);
  }
  for (const auto& [name, c] : r.channels)
    out += fmt::format("channel {:<32} batches {:>8}  peak {}/{} batches, {} bytes{}  writer blocked {:.2f}s\n", name,
                       c.batches_in, c.peak_depth, c.max_batches, c.peak_bytes,
                       c.max_records == UINT64_MAX ? std::string()
                                                   : fmt::format(", {}/{} records", c.peak_records, c.max_records),
                       static_cast<double>(c.blocked_ns) / 1e9);
  out += fmt::format("{} cycle(s) in {:.1f}s{}\n", r.cycles_completed, r.seconds,
                     r.ok ? "" : fmt::format(" — FAILED in stage '{}': {}", r.failed_stage, r.error));
  for (const auto& n : r.notes) out += n + "\n";
  return out;
}

}  // namespace flow::observability
