// Positions: where a batch's records came from, travelling with the batch so that a sink can
// acknowledge them once its output is durable.
//
// A source that wants acknowledgements creates one AckGroup per emitted batch: the ranges it
// covers plus a callback. Every holder of a Positions owns one share of each group it lists.
// The group's callback runs (once, on whichever thread releases the last share) when every
// share was acknowledged. Rules for stages:
//   * a sink acknowledges (`positions.ack()`) after its output is durable;
//   * a transform hands positions on with its output batches (move them), or acknowledges the
//     positions of records it dropped on purpose;
//   * sending one batch to several outputs takes `positions.share()` for each extra copy;
//   * destroying a Positions without acknowledging it *forgets* it: the records count as not
//     delivered (at-least-once sources will deliver them again after a restart).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flow {

// Offsets [begin, end) of one partition of one source.
struct PositionRange {
  std::string source;  // e.g. the Kafka topic or the source stage id
  int32_t partition = 0;
  int64_t begin = 0;
  int64_t end = 0;
  bool operator==(const PositionRange&) const = default;
};

class AckGroup {
 public:
  using Callback = std::function<void(const std::vector<PositionRange>&)>;
  AckGroup(std::vector<PositionRange> ranges, Callback on_acked)
      : ranges_(std::move(ranges)), on_acked_(std::move(on_acked)) {}

  const std::vector<PositionRange>& ranges() const { return ranges_; }
  int pending() const { return pending_.load(std::memory_order_acquire); }

 private:
  friend class Positions;
  void add_share() { pending_.fetch_add(1, std::memory_order_relaxed); }
  void release_share() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1 && on_acked_) on_acked_(ranges_);
  }

  std::vector<PositionRange> ranges_;
  Callback on_acked_;
  std::atomic<int> pending_{0};
};

class Positions {
 public:
  Positions() = default;
  Positions(const Positions&) = delete;
  Positions& operator=(const Positions&) = delete;
  Positions(Positions&& o) noexcept : groups_(std::move(o.groups_)) { o.groups_.clear(); }
  Positions& operator=(Positions&& o) noexcept {
    if (this != &o) {
      groups_ = std::move(o.groups_);
      o.groups_.clear();
    }
    return *this;
  }
  ~Positions() = default;  // unacknowledged shares are forgotten, never acknowledged

  // For sources: a Positions holding the first share of a new group.
  static Positions track(std::vector<PositionRange> ranges, AckGroup::Callback on_acked) {
    Positions p;
    auto g = std::make_shared<AckGroup>(std::move(ranges), std::move(on_acked));
    g->add_share();
    p.groups_.push_back(std::move(g));
    return p;
  }

  bool empty() const { return groups_.empty(); }
  std::size_t group_count() const { return groups_.size(); }

  // Every range covered (for checkpoints that record offsets with the output).
  std::vector<PositionRange> ranges() const {
    std::vector<PositionRange> out;
    for (const auto& g : groups_) out.insert(out.end(), g->ranges().begin(), g->ranges().end());
    return out;
  }

  // Acknowledges every share held and empties this object.
  void ack() {
    auto groups = std::move(groups_);
    groups_.clear();
    for (auto& g : groups) g->release_share();
  }

  // A new Positions holding one more share of each group: for sending a batch's records to a
  // second output. Both copies must then be acknowledged.
  Positions share() const {
    Positions p;
    for (const auto& g : groups_) {
      g->add_share();
      p.groups_.push_back(g);
    }
    return p;
  }

  // Moves all shares of `other` into this one.
  void append(Positions&& other) {
    for (auto& g : other.groups_) groups_.push_back(std::move(g));
    other.groups_.clear();
  }

 private:
  std::vector<std::shared_ptr<AckGroup>> groups_;
};

}  // namespace flow
