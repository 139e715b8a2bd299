// The runtime's source of time. Everything that waits for a deadline (the supervisor's duration,
// a processor's timer, a channel read) waits through a Clock, so tests swap in a ManualClock and
// move time themselves instead of sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

namespace flow::runtime {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point now() const = 0;
  // The wall time plugins see through Context::now().
  virtual std::chrono::system_clock::time_point wall() const = 0;
  // Waits on `cv` (whose mutex `lock` holds) until notified or until `deadline` by this clock.
  // May return early (spuriously); callers re-check their condition and the time.
  virtual void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point deadline) = 0;

  static constexpr time_point never() { return time_point::max(); }
};

// std::chrono's clocks; the one flowctl uses.
class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall() const override { return std::chrono::system_clock::now(); }
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point deadline) override {
    if (deadline == never()) cv.wait(lock);
    else cv.wait_until(lock, deadline);
  }
};

SystemClock& system_clock();

// Time that moves only when advance() is called. Waiters are woken on every advance, under
// their own mutex, so no wake-up is lost between a waiter's check and its wait.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point wall_start =
                           std::chrono::sys_days{std::chrono::year{2025} / 6 / 15} + std::chrono::hours(9));
  time_point now() const override;
  std::chrono::system_clock::time_point wall() const override;
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point deadline) override;

  void advance(duration d);
  void set_wall(std::chrono::system_clock::time_point t);

 private:
  void wake_all();

  mutable std::mutex mu_;
  duration elapsed_{0};
  std::chrono::system_clock::time_point wall_start_;
  std::multiset<std::pair<std::mutex*, std::condition_variable*>> waiters_;
  bool notifying_ = false;  // a wake_all() is using a copy of waiters_
  std::condition_variable notified_;
};

}  // namespace flow::runtime
