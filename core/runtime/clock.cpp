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
  // A wake_all() in flight may hold a copy of this waiter's mutex and cv and be about to lock
  // them: leave only once it is done, or the caller could destroy them under it. The waiter's
  // mutex is released meanwhile, as wake_all() needs it.
  lock.unlock();
  {
    std::unique_lock g(mu_);
    notified_.wait(g, [this] { return !notifying_; });
    waiters_.erase(waiters_.find(key));
  }
  lock.lock();
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
    std::unique_lock lock(mu_);
    notified_.wait(lock, [this] { return !notifying_; });  // one wake_all() at a time
    notifying_ = true;
    waiters = waiters_;
  }
  for (auto [m, cv] : waiters) {
    std::lock_guard lock(*m);  // the waiter is either before its check (sees the new time) or waiting
    cv->notify_all();
  }
  {
    std::lock_guard lock(mu_);
    notifying_ = false;
  }
  notified_.notify_all();
}

}  // namespace flow::runtime
