// Retrying a write that found the disk full (ENOSPC, EDQUOT), for the sinks that own durable
// files (csv-window-sink, merge-archive). The sink keeps what it has not committed, the step
// blocks the stage (so its input channel fills and upstream blocks: backpressure), and nothing is
// acknowledged meanwhile. One warning when the disk is found full, one line when the write
// succeeds again; after the last retry, or when the run aborts, the error as without retries.
// SDK only.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stop_token>
#include <string>

#include "flow/durable_io.hpp"
#include "flow/options.hpp"
#include "flow/stage.hpp"

namespace flow::parts {

// The options' wording, shared by the sinks' declared schemas and READMEs.
inline constexpr const char* kDiskFullRetriesDoc =
    "On a full disk (ENOSPC, EDQUOT), retry the write this many times before failing, holding the data "
    "and blocking the input meanwhile; 0 = fail at once";
inline constexpr const char* kDiskFullRetryIntervalDoc =
    "Wait before the first retry on a full disk; doubled after each, up to 16 times this";

class DiskFullRetry {
 public:
  DiskFullRetry() = default;
  DiskFullRetry(Logger& log, std::stop_token stop, std::string stage, int64_t retries, Duration interval)
      : log_(&log), stop_(std::move(stop)), stage_(std::move(stage)), retries_(retries), interval_(interval) {}

  // Runs `step` until it succeeds. When it throws io::IoError for a full disk, runs `undo` (which
  // puts back what the failed step left behind, e.g. truncates a part to what was written before),
  // waits, and runs `step` again.
  template <class Step, class Undo>
  void run(Step&& step, Undo&& undo) {
    int64_t retried = 0;
    Duration wait = interval_;
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
      try {
        step();
        if (retried > 0 && log_)
          log_->info("disk space is back: '" + file_ + "' written (stage '" + stage_ + "') after " +
                     std::to_string(retried) + " retries in " + format_duration(since(started)));
        return;
      } catch (const io::IoError& e) {
        if (!e.disk_full()) throw;
        undo();
        if (retried == 0) file_ = e.path().string();
        if (!log_ || retried >= retries_ || stop_.stop_requested()) {
          if (retried == 0) throw;
          throw io::IoError(std::string(e.what()) + " (still full after " + std::to_string(retried) +
                                " retries in " + format_duration(since(started)) +
                                ", disk_full_retries: " + std::to_string(retries_) + ")",
                            e.path(), e.code());
        }
        if (retried == 0)
          log_->warn("disk full writing '" + file_ + "' (stage '" + stage_ + "'): " + std::strerror(e.code()) +
                     "; retrying in " + format_duration(wait) + ", backing off to every " + format_duration(cap()) +
                     ", up to " + std::to_string(retries_) + " times; holding the data and blocking the input meanwhile");
        ++retried;
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        cv.wait_for(lock, stop_, wait, [] { return false; });  // wakes early when the run aborts
        wait = std::min(wait * 2, cap());
      }
    }
  }
  template <class Step>
  void run(Step&& step) {
    run(std::forward<Step>(step), [] {});
  }

 private:
  Duration cap() const { return interval_ * 16; }
  static Duration since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - t);
  }

  Logger* log_ = nullptr;  // none: no retries
  std::stop_token stop_;
  std::string stage_;
  int64_t retries_ = 0;
  Duration interval_{1000};
  std::string file_;
};

}  // namespace flow::parts
