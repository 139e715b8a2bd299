#include "runtime/channel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace flow::runtime {

// A writer blocked this long gets one log line (and one when it resumes): long stalls are what
// operators need to see, a few milliseconds of backpressure is normal operation.
static constexpr auto kBlockedLogAfter = std::chrono::seconds(1);

Channel::Channel(std::string name, std::size_t max_batches, uint64_t max_bytes, int writers, LogHook log, Clock& clock)
    : name_(std::move(name)),
      max_batches_(max_batches),
      max_bytes_(max_bytes),
      log_(std::move(log)),
      clock_(clock),
      writers_(writers) {
  if (max_batches_ == 0) throw std::invalid_argument("channel '" + name_ + "': max_batches must be at least 1");
  if (max_bytes_ == 0) throw std::invalid_argument("channel '" + name_ + "': max_bytes must be at least 1");
  if (writers_ <= 0) throw std::invalid_argument("channel '" + name_ + "': needs at least one writer");
  stats_.max_batches = max_batches_;
  stats_.max_bytes = max_bytes_;
}

bool Channel::has_room(uint64_t bytes, uint64_t records) const {
  if (queue_.empty()) return true;
  return queue_.size() < max_batches_ && bytes_ + bytes <= max_bytes_ && records_ + records <= max_records_;
}

bool Channel::has_some_room() const {
  return queue_.empty() || (queue_.size() < max_batches_ && bytes_ < max_bytes_ && records_ < max_records_);
}

void Channel::admit(Batch&& batch, uint64_t bytes) {
  stats_.batches_in += 1;
  stats_.records_in += batch.num_rows();
  records_ += batch.num_rows();
  queue_.emplace_back(std::move(batch), bytes);
  bytes_ += bytes;
  stats_.peak_depth = std::max(stats_.peak_depth, queue_.size());
  stats_.peak_bytes = std::max(stats_.peak_bytes, bytes_);
  stats_.peak_records = std::max(stats_.peak_records, records_);
}

bool Channel::push(Batch&& batch) {
  const uint64_t bytes = batch.byte_size(), records = batch.num_rows();
  std::unique_lock lock(mu_);
  if (!cancelled_ && !has_room(bytes, records)) {
    const auto start = std::chrono::steady_clock::now();
    stats_.blocked_writers += 1;
    while (!cancelled_ && !has_room(bytes, records)) {
      if (not_full_.wait_for(lock, kBlockedLogAfter) == std::cv_status::timeout && !blocked_logged_ && log_ &&
          !cancelled_ && !has_room(bytes, records)) {
        blocked_logged_ = true;
        log_(fmt::format("channel '{}' full ({} batches, {} bytes, {} records): writer blocked (backpressure)", name_,
                         queue_.size(), bytes_, records_));
      }
    }
    stats_.blocked_writers -= 1;
    const auto waited = std::chrono::steady_clock::now() - start;
    stats_.blocked_ns += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count());
    if (blocked_logged_ && log_) {
      blocked_logged_ = false;
      log_(fmt::format("channel '{}' writer resumed after {} ms", name_,
                       std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
    }
  }
  if (cancelled_) return false;
  admit(std::move(batch), bytes);
  lock.unlock();
  not_empty_.notify_one();
  return true;
}

bool Channel::try_push(Batch& batch) {
  const uint64_t bytes = batch.byte_size();
  std::unique_lock lock(mu_);
  if (cancelled_ || !has_room(bytes, batch.num_rows())) return false;
  admit(std::move(batch), bytes);
  lock.unlock();
  not_empty_.notify_one();
  return true;
}

Channel::Room Channel::room() const {
  std::lock_guard lock(mu_);
  if (cancelled_) return Room::Cancelled;
  return has_some_room() ? Room::Free : Room::Full;
}

bool Channel::wait_writable(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  // Room for a batch of unknown size: one slot and some byte and record budget left.
  auto room = [&] { return cancelled_ || has_some_room(); };
  not_full_.wait_for(lock, timeout, room);
  return !cancelled_ && room();
}

Channel::Pop Channel::pop(Batch& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  auto ready = [&] { return cancelled_ || !queue_.empty() || writers_ == 0 || cut_after_ == 0u; };
  if (!not_empty_.wait_for(lock, timeout, ready)) return Pop::Timeout;
  return take(out, lock);
}

Channel::Pop Channel::pop_until(Batch& out, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  while (!cancelled_ && queue_.empty() && writers_ > 0 && cut_after_ != 0u) {
    if (clock_.now() >= deadline) return Pop::Timeout;
    clock_.wait_until(lock, not_empty_, deadline);
  }
  return take(out, lock);
}

Channel::Pop Channel::take(Batch& out, std::unique_lock<std::mutex>& lock) {
  if (cancelled_) return Pop::Cancelled;
  if (cut_after_ == 0u) {
    cut_after_.reset();
    return Pop::Cut;
  }
  if (queue_.empty()) return Pop::End;
  if (cut_after_) *cut_after_ -= 1;
  out = std::move(queue_.front().first);
  bytes_ -= queue_.front().second;
  records_ -= out.num_rows();
  queue_.pop_front();
  lock.unlock();
  not_full_.notify_all();  // several writers may wait for different amounts of room
  return Pop::Item;
}

void Channel::writer_done() {
  {
    std::lock_guard lock(mu_);
    if (writers_ > 0) --writers_;
  }
  not_empty_.notify_all();
}

void Channel::cut() {
  {
    std::lock_guard lock(mu_);
    if (cut_after_) throw std::logic_error("channel '" + name_ + "': a cut is already pending");
    cut_after_ = queue_.size();
  }
  not_empty_.notify_all();
}

void Channel::clear_cut() {
  std::lock_guard lock(mu_);
  cut_after_.reset();
}

void Channel::add_writers(int delta) {
  {
    std::lock_guard lock(mu_);
    writers_ = std::max(writers_ + delta, 0);
  }
  not_empty_.notify_all();
}

void Channel::set_limits(std::size_t max_batches, uint64_t max_bytes) {
  if (max_bytes == 0) throw std::invalid_argument("channel '" + name_ + "': max_bytes must be at least 1");
  set_max_batches(max_batches);
  {
    std::lock_guard lock(mu_);
    max_bytes_ = max_bytes;
    stats_.max_bytes = max_bytes;
  }
  not_full_.notify_all();
}

void Channel::set_max_batches(std::size_t max_batches) {
  if (max_batches == 0) throw std::invalid_argument("channel '" + name_ + "': max_batches must be at least 1");
  {
    std::lock_guard lock(mu_);
    max_batches_ = max_batches;
    stats_.max_batches = max_batches;
  }
  not_full_.notify_all();
}

void Channel::set_max_records(uint64_t max_records) {
  if (max_records == 0) throw std::invalid_argument("channel '" + name_ + "': max_records must be at least 1");
  {
    std::lock_guard lock(mu_);
    max_records_ = max_records;
    stats_.max_records = max_records;
  }
  not_full_.notify_all();
}

void Channel::cancel() {
  std::deque<std::pair<Batch, uint64_t>> dropped;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    dropped.swap(queue_);  // positions are forgotten (not acknowledged) outside the lock
    bytes_ = records_ = 0;
  }
  not_full_.notify_all();
  not_empty_.notify_all();
}

ChannelStats Channel::stats() const {
  std::lock_guard lock(mu_);
  ChannelStats s = stats_;
  s.depth = queue_.size();
  s.bytes = bytes_;
  s.records = records_;
  return s;
}

}  // namespace flow::runtime
