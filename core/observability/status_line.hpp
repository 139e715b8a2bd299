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

// One line from two snapshots `dt` seconds apart (the first may be empty: rates are then 0).
// With a duration, it shows elapsed and remaining time.
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
