// Acknowledged byte offsets per (file source, generation), and what the checkpoint needs about
// each file. The checkpoint holds, per file identity, the end of the contiguous acknowledged
// prefix of its newest generation. Acknowledgements come from sink threads in any order; the
// checkpoint is written by its own thread, so it advances even while the reader is blocked on a
// full channel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flow_file {

// A file's identity: it survives renames, and a truncation keeps it (the generation changes).
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  auto operator<=>(const FileId&) const = default;
};

inline constexpr std::size_t kHeadBytes = 256;  // fingerprint of a file's start (inode reuse)

class Tracker {
 public:
  struct Snapshot {
    FileId id;
    int32_t gen = 0;
    int64_t committed = 0;
    std::string path;
    std::string head;  // the file's first min(256, committed) bytes
  };

  // Reading of (source, gen) starts at `offset`: everything before it counts as acknowledged.
  // `head`: the file's first bytes as far as known (the rest is added by add_head while reading).
  void start(const std::string& source, int32_t gen, int64_t offset, FileId id = {}, std::string path = {},
             std::string head = {}) {
    std::lock_guard lock(mu_);
    auto& s = state_[{source, gen}];
    s = State{};
    s.committed = s.emitted = offset;
    s.id = id;
    s.path = std::move(path);
    s.head = std::move(head);
    if (s.head.size() > kHeadBytes) s.head.resize(kHeadBytes);
    seen_.insert(id);
  }
  // Bytes read at file offset `at`: the ones extending the known head are kept.
  void add_head(const std::string& source, int32_t gen, int64_t at, std::string_view bytes) {
    std::lock_guard lock(mu_);
    auto it = state_.find({source, gen});
    if (it == state_.end()) return;
    std::string& h = it->second.head;
    if (h.size() >= kHeadBytes || at > static_cast<int64_t>(h.size()) || at + static_cast<int64_t>(bytes.size()) <= static_cast<int64_t>(h.size())) return;
    const std::size_t skip = h.size() - static_cast<std::size_t>(at);
    h.append(bytes.substr(skip, std::min(bytes.size() - skip, kHeadBytes - h.size())));
  }
  void set_path(const std::string& source, int32_t gen, const std::string& path) {
    std::lock_guard lock(mu_);
    if (auto it = state_.find({source, gen}); it != state_.end()) it->second.path = path;
  }
  void emitted(const std::string& source, int32_t gen, int64_t end) {
    std::lock_guard lock(mu_);
    if (auto it = state_.find({source, gen}); it != state_.end()) it->second.emitted = std::max(it->second.emitted, end);
  }
  void acked(const std::string& source, int32_t gen, int64_t begin, int64_t end) {
    std::lock_guard lock(mu_);
    auto it = state_.find({source, gen});
    if (it == state_.end() || end <= it->second.committed) return;  // forgotten, or already covered
    State& s = it->second;
    auto [pos, inserted] = s.pending.emplace(begin, end);
    if (!inserted) pos->second = std::max(pos->second, end);
    // Advance over every range that now touches the committed prefix.
    for (auto p = s.pending.begin(); p != s.pending.end() && p->first <= s.committed;) {
      s.committed = std::max(s.committed, p->second);
      p = s.pending.erase(p);
    }
  }
  // The reader closed the file: once fully acknowledged it leaves the checkpoint.
  void closed(const std::string& source, int32_t gen) {
    std::lock_guard lock(mu_);
    if (auto it = state_.find({source, gen}); it != state_.end()) it->second.closed = true;
  }
  std::optional<int64_t> committed(const std::string& source, int32_t gen) const {
    std::lock_guard lock(mu_);
    auto it = state_.find({source, gen});
    if (it == state_.end()) return std::nullopt;
    return it->second.committed;
  }
  bool fully_acked(const std::string& source, int32_t gen) const {
    std::lock_guard lock(mu_);
    auto it = state_.find({source, gen});
    return it == state_.end() || it->second.committed >= it->second.emitted;
  }
  // Whether this run opened the file (its entry in an older checkpoint is then superseded).
  bool seen(const FileId& id) const {
    std::lock_guard lock(mu_);
    return seen_.count(id) > 0;
  }

  // What the checkpoint holds: the newest generation of each file still open or not yet fully
  // acknowledged. Entries done with (closed and fully acknowledged, or superseded by a newer
  // generation) are dropped: acknowledgements for them no longer matter.
  std::vector<Snapshot> snapshot() {
    std::lock_guard lock(mu_);
    std::vector<Snapshot> out;
    for (auto it = state_.begin(); it != state_.end();) {
      auto next = std::next(it);
      const bool superseded = next != state_.end() && next->first.first == it->first.first;
      State& s = it->second;
      if (superseded || (s.closed && s.committed >= s.emitted)) {
        it = state_.erase(it);
        continue;
      }
      const auto head_len = std::min<std::size_t>(s.head.size(), static_cast<std::size_t>(std::max<int64_t>(s.committed, 0)));
      out.push_back({s.id, it->first.second, s.committed, s.path, s.head.substr(0, head_len)});
      it = next;
    }
    return out;
  }

 private:
  struct State {
    int64_t committed = 0;  // [start, committed) acknowledged
    int64_t emitted = 0;    // end of the last emitted range
    std::map<int64_t, int64_t> pending;  // acknowledged ranges above a gap: begin -> end
    FileId id;
    std::string path, head;
    bool closed = false;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int32_t>, State> state_;  // generations of a source in order
  std::set<FileId> seen_;
};

}  // namespace flow_file
