// The live one-line status on a terminal: records per second per stage and each input channel's
// fill, redrawn every second from the runtime's snapshot on a thread of its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "runtime/runtime.hpp"

namespace flow::observability {

// Time left of a run with a duration: in this cycle, and with a known number of cycles in the
// whole run (this cycle's rest plus the later cycles' durations; their start-up and drain are not
// known in advance, so not counted). nullopt without a duration.
struct TimeLeft {
  double cycle = 0;
  std::optional<double> total;
};
std::optional<TimeLeft> time_left(int cycle, int cycles, double cycle_seconds, std::optional<double> duration_seconds);
std::optional<TimeLeft> time_left(const runtime::Snapshot& s);

// "12s of 30s, 18s left" for one cycle; "cycle 2/3 12s of 30s, 18s left, 48s in all" for more.
// Empty without a duration.
std::string time_left_text(int cycle, int cycles, double cycle_seconds, std::optional<double> duration_seconds);

// One line from two snapshots `dt` seconds apart (the first may be empty: rates are then 0).
// With a duration (the snapshot's, else `duration_seconds`), it shows the elapsed and remaining
// time of the cycle and, for more than one cycle, of the run.
std::string status_text(const runtime::Snapshot& now, const runtime::Snapshot* before, double dt,
                        std::optional<double> duration_seconds = std::nullopt);

class StatusLine {
 public:
  // Draws on stderr only when it is a terminal; otherwise does nothing.
  StatusLine(std::function<runtime::Snapshot()> snapshot, std::optional<double> duration_seconds);
  ~StatusLine();  // stops and erases the line

 private:
  void loop();
  std::function<runtime::Snapshot()> snapshot_;
  std::optional<double> duration_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace flow::observability
