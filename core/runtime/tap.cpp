#include "runtime/tap.hpp"

#include <fmt/format.h>

#include <cmath>

#include "flow/text.hpp"

namespace flow::runtime {

std::string row_json(const Batch& b, std::size_t row) {
  std::string out = "{";
  for (std::size_t c = 0; c < b.num_columns(); ++c) {
    if (c) out += ',';
    append_json_string(out, b.schema()->field(c).name);
    out += ':';
    const Column& col = b.column(c);
    if (col.is_null(row)) {
      out += "null";
      continue;
    }
    switch (col.type()) {
      case Type::Int64:
      case Type::Timestamp: out += std::to_string(col.ints()[row]); break;
      case Type::Float64: {
        const double v = col.floats()[row];
        out += std::isfinite(v) ? fmt::format("{}", v) : "null";  // JSON has no NaN
        break;
      }
      case Type::Bool: out += col.bools()[row] ? "true" : "false"; break;
      case Type::String: append_json_string(out, col.string_at(row)); break;
    }
  }
  return out + "}";
}

TapSubscription::TapSubscription(std::shared_ptr<TapPoint> point, std::size_t capacity)
    : point_(std::move(point)), capacity_(capacity) {
  std::lock_guard lock(point_->mu_);
  point_->subs_.push_back(this);
  point_->listeners_.fetch_add(1, std::memory_order_relaxed);
}

TapSubscription::~TapSubscription() {
  std::lock_guard lock(point_->mu_);
  std::erase(point_->subs_, this);
  point_->listeners_.fetch_sub(1, std::memory_order_relaxed);
}

void TapSubscription::offer(const Batch& b) {
  const std::size_t n = b.num_rows();
  std::unique_lock lock(mu_);  // the reader holds it only to move its rows out
  const std::size_t room = capacity_ > rows_.size() ? capacity_ - rows_.size() : 0;
  const std::size_t take = std::min(room, n);
  for (std::size_t i = 0; i < take; ++i) rows_.push_back(row_json(b, i));
  dropped_ += n - take;
  lock.unlock();
  if (take) cv_.notify_one();
}

std::vector<std::string> TapSubscription::pop(std::chrono::milliseconds timeout, uint64_t& dropped) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !rows_.empty(); });
  std::vector<std::string> out(std::make_move_iterator(rows_.begin()), std::make_move_iterator(rows_.end()));
  rows_.clear();
  dropped += dropped_;
  dropped_ = 0;
  return out;
}

void TapPoint::offer(const Batch& b) {
  std::lock_guard lock(mu_);
  for (auto* s : subs_) s->offer(b);
}

std::shared_ptr<TapPoint> TapHub::point(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& p = points_[name];
  if (!p) p = std::make_shared<TapPoint>();
  return p;
}

bool TapHub::has(const std::string& name) {
  std::lock_guard lock(mu_);
  return points_.count(name) != 0;
}

std::unique_ptr<TapSubscription> TapHub::subscribe(const std::string& name, std::size_t capacity) {
  return std::make_unique<TapSubscription>(point(name), capacity);
}

std::vector<std::string> TapHub::names() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : points_) out.push_back(k);
  return out;
}

}  // namespace flow::runtime
