// The file-parts format: how csv-window-sink names its part files and records each committed
// part (its manifest entry), and the directory lock of the stages that own those directories.
// merge-archive and the conformance suite read the same format through this header. SDK only.
//
//   <path>/<prefix>-<run_id>-c<cycle:4>-<window:6>-<file:4>.csv      a committed part
//   <path>/.<part>.tmp                                               a part being written
//   <checkpoint>/commits/<part without .csv>.json                    its manifest entry
//   <checkpoint>/archived-offsets.json                               ends of archived entries
// A part is committed when its manifest entry exists; a part without one is not (a crash came
// between its rename and its entry) and is removed by its sink on restart.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flow/durable_io.hpp"
#include "flow/positions.hpp"

namespace flow::parts {

inline std::string pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<std::size_t>(width) - s.size(), '0');
  return s;
}

inline std::string part_name(const std::string& prefix, const std::string& run_id, int64_t cycle, int64_t window,
                             int64_t file) {
  return prefix + "-" + run_id + "-c" + pad(cycle, 4) + "-" + pad(window, 6) + "-" + pad(file, 4) + ".csv";
}

// The name's start shared by every part of one run and cycle (window numbers follow it).
inline std::string part_stem(const std::string& prefix, const std::string& run_id, int64_t cycle) {
  return prefix + "-" + run_id + "-c" + pad(cycle, 4) + "-";
}

// Orders parts by run, cycle, window and file.
struct PartKey {
  std::string head;  // <prefix>-<run_id>
  long long cycle = 0, window = 0, file = 0;
  auto operator<=>(const PartKey&) const = default;
};

inline bool all_digits(std::string_view s, std::size_t min) {
  if (s.size() < min) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

inline std::optional<PartKey> parse_part_name(const std::string& name) {
  // A file name, never a path: merge-archive deletes the parts its journal names (a journal naming
  // "../x-c0000-000000-0000.csv" must not reach outside parts_dir).
  if (name.empty() || name.front() == '.' || !name.ends_with(".csv") ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos)
    return std::nullopt;
  std::string_view s(name.data(), name.size() - 4);
  std::string_view tok[3];
  for (int k = 2; k >= 0; --k) {
    const auto dash = s.rfind('-');
    if (dash == std::string_view::npos) return std::nullopt;
    tok[k] = s.substr(dash + 1);
    s = s.substr(0, dash);
  }
  if (s.empty() || tok[0].empty() || tok[0][0] != 'c' || !all_digits(tok[0].substr(1), 4) ||
      !all_digits(tok[1], 6) || !all_digits(tok[2], 4))
    return std::nullopt;
  PartKey k;
  k.head = std::string(s);
  // Numbers too long for 64 bits are no part's (std::stoll would throw out_of_range here).
  auto number = [](std::string_view d, long long& out) {
    return std::from_chars(d.data(), d.data() + d.size(), out).ec == std::errc();
  };
  if (!number(tok[0].substr(1), k.cycle) || !number(tok[1], k.window) || !number(tok[2], k.file)) return std::nullopt;
  return k;
}

inline std::string manifest_name(const std::string& part) { return part.substr(0, part.size() - 4) + ".json"; }
inline std::string tmp_name(const std::string& file) { return "." + file + ".tmp"; }
inline constexpr const char* kArchivedOffsets = "archived-offsets.json";
inline std::filesystem::path commits_dir(const std::filesystem::path& checkpoint) { return checkpoint / "commits"; }

// Sorted, with touching or overlapping ranges of one partition joined; gaps stay visible.
inline std::vector<PositionRange> coalesce(std::vector<PositionRange> r) {
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) {
    if (a.source != b.source) return a.source < b.source;
    if (a.partition != b.partition) return a.partition < b.partition;
    return a.begin < b.begin;
  });
  std::vector<PositionRange> out;
  for (auto& x : r) {
    if (!out.empty() && out.back().source == x.source && out.back().partition == x.partition &&
        x.begin <= out.back().end) {
      out.back().end = std::max(out.back().end, x.end);
    } else {
      out.push_back(std::move(x));
    }
  }
  return out;
}

inline std::string iso_utc(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  if (micros % 1'000'000 < 0) --secs;
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One committed part, as its manifest entry records it.
struct Manifest {
  std::string part;
  uint64_t rows = 0, bytes = 0;
  int64_t window_start_us = 0, window_end_us = 0;
  std::string run_id;
  int64_t cycle = 0, window_seq = 0, file_seq = 0;
  std::string header;
  std::vector<PositionRange> ranges;  // every input position whose records this part holds
};

inline std::string manifest_json(const Manifest& m) {
  std::string j;
  j.reserve(512);
  j += "{\"version\":1,\"part\":";
  io::append_json_string(j, m.part);
  j += ",\"rows\":" + std::to_string(m.rows) + ",\"bytes\":" + std::to_string(m.bytes);
  j += ",\"window_start_us\":" + std::to_string(m.window_start_us) +
       ",\"window_end_us\":" + std::to_string(m.window_end_us);
  j += ",\"window_start\":\"" + iso_utc(m.window_start_us) + "\",\"window_end\":\"" + iso_utc(m.window_end_us) + "\"";
  j += ",\"run_id\":";
  io::append_json_string(j, m.run_id);
  j += ",\"cycle\":" + std::to_string(m.cycle) + ",\"window_seq\":" + std::to_string(m.window_seq) +
       ",\"file_seq\":" + std::to_string(m.file_seq) + ",\"header\":";
  io::append_json_string(j, m.header);
  j += ",\"ranges\":[";
  bool first = true;
  for (const auto& r : coalesce(m.ranges)) {
    if (!first) j += ",";
    first = false;
    j += "{\"source\":";
    io::append_json_string(j, r.source);
    j += ",\"partition\":" + std::to_string(r.partition) + ",\"begin\":" + std::to_string(r.begin) +
         ",\"end\":" + std::to_string(r.end) + "}";
  }
  j += "]}\n";
  return j;
}

// Writes the manifest entry durably: from now on the part is committed.
inline void write_manifest(const std::filesystem::path& commits, const Manifest& m, bool fsync = true) {
  io::atomic_write_file(commits, manifest_name(m.part), manifest_json(m), fsync);
}

// Fault-test hook: kills the process with SIGKILL when the environment variable `var` names
// `point` (FLOW_CSV_WINDOW_SINK_CRASH_AT=part-renamed, ...), to hit rare crash points for real.
inline void crash_point(const char* var, std::string_view point) {
  if (const char* at = std::getenv(var); at && point == at) ::kill(::getpid(), SIGKILL);
}

// An exclusive lock on a directory for the life of this object (flock on <dir>/.flow.lock, so a
// process killed with kill -9 holds it no longer). The file says who holds it; a second
// `flowctl run` on the same directory fails at once naming that holder.
class DirLock {
 public:
  DirLock() = default;
  DirLock(const std::filesystem::path& dir, const std::string& holder, const std::string& file = ".flow.lock")
      : path_(dir / file) {
    for (int attempt = 0;; ++attempt) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) io::throw_errno("cannot open lock file", path_);
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        std::string who(512, '\0');
        const ssize_t n = ::pread(fd_, who.data(), who.size(), 0);
        who.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("directory '" + dir.string() + "' is in use by " +
                                 (who.empty() ? std::string("another process") : who) + " (lock '" + path_.string() +
                                 "'); two runs on the same directories would take over each other's parts");
      }
      // The holder removes the file when it lets go: make sure the locked file is still the
      // one under that name, or another process may hold the new one.
      struct stat a{}, b{};
      if (::fstat(fd_, &a) == 0 && ::stat(path_.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) break;
      ::close(fd_);
      fd_ = -1;
      if (attempt >= 10) throw std::runtime_error("cannot lock '" + path_.string() + "': it keeps being replaced");
    }
    const std::string text = holder + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, text.data(), text.size(), 0);
  }
  ~DirLock() { release(); }
  DirLock(DirLock&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  static bool same_dir(const std::filesystem::path& a, const std::filesystem::path& b) {
    return a.lexically_normal() == b.lexically_normal();
  }
  // Removes the file (a graceful stop leaves no trace; a killed holder leaves a stale, unlocked
  // one), then drops the flock by closing the only descriptor.
  void release() {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());
    ::close(fd_);
    fd_ = -1;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// "pid 123 on host, run <id>, stage '<id>'": what a DirLock file says about its holder.
inline std::string holder_text(const std::string& run_id, const std::string& stage) {
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  return "flowctl pid " + std::to_string(::getpid()) + " on " + host + " (run " + run_id + ", stage '" + stage + "')";
}

}  // namespace flow::parts
