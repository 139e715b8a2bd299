#include "runtime/clock.hpp"

namespace flow::runtime {

SystemClock& system_clock() {
  static SystemClock clock;
  return clock;
}

ManualClock::ManualClock(std::chrono::system_clock::time_point wall_start) : wall_start_(wall_start) {}

Clock::time_point ManualClock::now() const {
  std::lock_guard lock(mu_);
  return time_point{} + elapsed_;
}

std::chrono::system_clock::time_point ManualClock::wall() const {
  std::lock_guard lock(mu_);
  return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(elapsed_);
}

void ManualClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, time_point deadline) {
  const auto key = std::make_pair(lock.mutex(), &cv);
  {
    std::lock_guard g(mu_);
    if (time_point{} + elapsed_ >= deadline) return;
    waiters_.insert(key);
  }
  cv.wait(lock);  // woken by the waiter's own notify or by advance()
  std::lock_guard g(mu_);
  waiters_.erase(waiters_.find(key));
}

void ManualClock::advance(duration d) {
  {
    std::lock_guard lock(mu_);
    elapsed_ += d;
  }
  wake_all();
}

void ManualClock::set_wall(std::chrono::system_clock::time_point t) {
  {
    std::lock_guard lock(mu_);
    wall_start_ = t - std::chrono::duration_cast<std::chrono::system_clock::duration>(elapsed_);
  }
  wake_all();
}

void ManualClock::wake_all() {
  std::multiset<std::pair<std::mutex*, std::condition_variable*>> waiters;
  {
    std::lock_guard lock(mu_);
    waiters = waiters_;
  }
  for (auto [m, cv] : waiters) {
    std::lock_guard lock(*m);  // the waiter is either before its check (sees the new time) or waiting
    cv->notify_all();
  }
}

}  // namespace flow::runtime
