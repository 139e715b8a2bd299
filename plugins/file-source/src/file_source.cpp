// file-source: reads lines from files matched by globs into raw message batches, follows them as
// they grow (inotify, with polling as the fallback and the safety net), across rotation by rename
// and by truncation, and picks up files that appear later. A position is (file identity, byte
// offset): the source of a PositionRange is "<stage>:<dev>:<inode>", its partition the file's
// generation (bumped when the file is truncated or its inode reused), its offsets bytes. Offsets
// acknowledged contiguously by the sinks are checkpointed durably (fsync + atomic rename), and a
// restart resumes there: at-least-once.
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <stdexcept>
#include <string>
#include <vector>

#include "flow/durable_io.hpp"
#include "flow/flow.hpp"
#include "positions_tracker.hpp"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
using flow_file::FileId;
using flow_file::kHeadBytes;
using flow_file::Tracker;

constexpr std::size_t kDeadRawMax = 4096;    // a dead-lettered line keeps at most this much
constexpr std::size_t kBatchBytes = 4u << 20;  // a batch leaves at about this many bytes too

using flow::dead_letter_schema;  // the shared shape, so one rejects sink takes every stage's

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

std::string read_head(int fd, std::size_t n) {
  std::string s(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, s.data() + got, n - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  s.resize(got);
  return s;
}

// The name an open file has now (it may have been renamed out of the globs), or "" if unknown.
std::string current_path(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return {};
  std::string p(buf, static_cast<std::size_t>(n));
  if (p.ends_with(" (deleted)")) return {};
  return p;
}

class FileSource : public flow::Source {
 public:
  struct Options {
    std::vector<std::string> paths;
    std::string format = "json";
    std::string start = "beginning";
    std::string checkpoint_dir;
    flow::Duration checkpoint_interval{1000};
    flow::Duration poll_interval{250};
    flow::Duration rotate_wait{5000};
    flow::ByteSize max_line_size{1u << 20};
    flow::ByteSize read_buffer{1u << 20};
    int64_t batch_size = 4096;
    bool exit_at_end = false;
    bool inotify = true;
    std::vector<std::string> resume_from;
  };

  static flow::PluginInfo info() {
    return {"file-source", "1.0.0", flow::StageKind::Source,
            "Reads and follows lines of files matched by globs (rotation, truncation, new files); resumes from a "
            "durable checkpoint of acknowledged offsets",
            {"invalid"}};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "paths: [\"${TMPDIR}/*.log\"]\ncheckpoint_dir: ${TMPDIR}/ckpt\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("paths", &Options::paths, "Files to read: paths or globs (* ? [...]); files that match later are read too")
        .required();
    t.add("format", &Options::format,
          "json: JSON lines (blank lines skipped); lines: every line as it is. Both become raw messages "
          "(value = the line without its newline and a trailing CR)")
        .one_of({"json", "lines"});
    t.add("start", &Options::start,
          "Where to start in files present at startup with no checkpoint entry (files that appear later are "
          "read from their beginning)")
        .one_of({"beginning", "end"});
    t.add("checkpoint_dir", &Options::checkpoint_dir,
          "Directory of the durable checkpoint <stage>.positions.json (acknowledged offsets); empty = none, "
          "every start follows `start`");
    t.add("checkpoint_interval", &Options::checkpoint_interval, "How often acknowledged offsets are checkpointed")
        .min(0.001);
    t.add("poll_interval", &Options::poll_interval,
          "How often files are checked for growth and globs re-expanded when inotify is quiet or unavailable")
        .min(0.001);
    t.add("rotate_wait", &Options::rotate_wait,
          "A file renamed away from its glob is still read until it has not grown for this long");
    t.add("max_line_size", &Options::max_line_size,
          "Longer lines are dead-lettered (reason 'oversize', their first 4KiB) and skipped")
        .range(16, 1u << 30);
    t.add("read_buffer", &Options::read_buffer, "Bytes read from a file at a time").range(4096, 256u << 20);
    t.add("batch_size", &Options::batch_size, "Most lines per emitted batch").range(1, 10'000'000);
    t.add("exit_at_end", &Options::exit_at_end,
          "Return once every matched file is read to its end (batch jobs); a last line without a newline is "
          "then emitted too");
    t.add("inotify", &Options::inotify, "Use inotify to wake up on changes (polling still runs as a safety net)");
    t.add("resume_from", &Options::resume_from,
          "Checkpoint directories of the sinks that receive this source's records (csv-window-sink's "
          "<checkpoint_dir>: commits/*.json, archived-offsets.json); a restart resumes after what all of them "
          "committed, even past this stage's own checkpoint (exactly-once with csv-window-sink)");
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    const flow::Value* p = config.find("paths");
    if (o.paths.empty()) errors.push_back({p ? p->location() : config.location(), "option 'paths': list at least one path"});
    for (const auto& s : o.paths)
      if (s.empty()) errors.push_back({p ? p->location() : config.location(), "option 'paths': an empty path"});
  }

  explicit FileSource(Options o) : o_(std::move(o)) {}
  ~FileSource() override { release(); }

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    stage_ = ctx.stage_id();
    lines_ = &ctx.counter("lines");
    bytes_ = &ctx.counter("bytes");
    dead_ = &ctx.counter("dead_lettered");
    truncations_ = &ctx.counter("truncations");
    checkpoints_ = &ctx.counter("checkpoints");
    if (!o_.checkpoint_dir.empty()) {
      const fs::path dir = fs::absolute(o_.checkpoint_dir).lexically_normal();
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) throw std::runtime_error("cannot create checkpoint directory '" + dir.string() + "': " + ec.message());
      flow::io::check_writable_dir(dir, "checkpoint");
      ckpt_dir_ = dir;
      ckpt_name_ = stage_ + ".positions.json";
      load_checkpoint();
    }
    load_sink_manifests();
    if (o_.inotify) {
      ino_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (ino_fd_ < 0)
        ctx.log().warn(std::string("inotify unavailable (") + std::strerror(errno) + "): polling every " +
                       std::to_string(o_.poll_interval.count()) + "ms");
    }
    buf_.resize(static_cast<std::size_t>(o_.read_buffer.bytes));
    opened_ = true;
    if (ckpt_dir_) ckpt_thread_ = std::jthread([this](std::stop_token stop) { checkpoint_loop(stop); });
  }

  void run(flow::Context& ctx, flow::Emitter& out) override {
    out_ = &out;
    start_batches();
    rescan(true);
    auto next_scan = Clock::now() + o_.poll_interval;
    bool quiet_pass = false;  // exit_at_end: a whole pass read nothing
    while (!ctx.stop_requested()) {
      bool progressed = false;
      for (auto it = files_.begin(); it != files_.end() && !aborted_;) {
        OpenFile& f = *it->second;
        progressed |= read_some(f);
        if (full() && !flush()) break;
        if (f.fd < 0) it = files_.erase(it);
        else ++it;
      }
      if (aborted_) return;
      if (progressed) {
        quiet_pass = false;
        // A file that never stops growing must not hide new files and rotations.
        if (!o_.exit_at_end && Clock::now() >= next_scan) {
          rescan(false);
          next_scan = Clock::now() + o_.poll_interval;
        }
        continue;
      }
      if (!flush()) return;
      if (o_.exit_at_end) {
        // One more glob pass: a file that appeared meanwhile is read before we stop.
        if (quiet_pass && rescan(false) == 0) {
          for (auto& [id, f] : files_) emit_unterminated(*f);
          if (!flush()) return;
          ctx.log().info("every matched file read to its end (exit_at_end)");
          break;
        }
        quiet_pass = true;
        continue;
      }
      wait_for_change(ctx);
      if (dir_event_ || Clock::now() >= next_scan) {
        dir_event_ = false;
        rescan(false);
        next_scan = Clock::now() + o_.poll_interval;
      }
    }
    flush();  // what was read before a stop still goes out (false when aborting: forgotten)
  }

  // Every stage finished: the sinks acknowledged what they made durable. Checkpoint it.
  void close() override {
    if (ckpt_thread_.joinable()) {
      ckpt_thread_.request_stop();
      ckpt_thread_.join();
    }
    if (opened_ && ckpt_dir_) {  // never over a checkpoint that open() could not read
      try {
        write_checkpoint();
      } catch (const std::exception& e) {
        ctx_->log().error(std::string("final checkpoint failed: ") + e.what());
      }
    }
    release();
  }

 private:
  struct OpenFile {
    FileId id;
    std::string path;
    std::string source;  // "<stage>:<dev>:<inode>"
    int fd = -1;
    int32_t gen = 0;
    int64_t offset = 0;    // start of the first line not yet taken (a line boundary)
    int64_t read_pos = 0;  // bytes read so far
    std::string partial;   // bytes of an unterminated line (at most max_line_size)
    int64_t partial_len = 0;  // its true length (more than partial.size() when oversize)
    bool matched = true;   // some glob still matches it under its path
    Clock::time_point last_growth = Clock::now();
  };

  // --- checkpoint -------------------------------------------------------------------------

  struct Saved {
    int32_t gen = 0;
    int64_t offset = 0;
    std::size_t head_len = 0;
    uint64_t head_hash = 0;
    std::string path;
  };

  void load_checkpoint() {
    const fs::path p = *ckpt_dir_ / ckpt_name_;
    std::error_code ec;
    if (!fs::exists(p, ec)) return;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.load(p.string()).get(doc))
      throw std::runtime_error("checkpoint '" + p.string() + "': not JSON (" + simdjson::error_message(err) +
                               "); delete it to start over");
    simdjson::dom::array files;
    if (doc["files"].get(files))
      throw std::runtime_error("checkpoint '" + p.string() + "': no \"files\" array; delete it to start over");
    for (auto f : files) {
      uint64_t dev = 0, ino = 0, head_hash = 0;
      int64_t gen = 0, offset = 0, head_len = 0;
      std::string_view path;
      if (f["dev"].get(dev) || f["ino"].get(ino) || f["gen"].get(gen) || f["offset"].get(offset) ||
          f["head_len"].get(head_len) || f["head_hash"].get(head_hash) || f["path"].get(path))
        throw std::runtime_error("checkpoint '" + p.string() + "': an entry lacks dev/ino/gen/offset/head/path");
      saved_[FileId{dev, ino}] = Saved{static_cast<int32_t>(gen), offset, static_cast<std::size_t>(head_len),
                                       head_hash, std::string(path)};
    }
    ctx_->log().info("checkpoint '" + p.string() + "': " + std::to_string(saved_.size()) + " file position(s)");
  }

  // Runs beside the reader (which may sit blocked on a full channel for long) until close().
  void checkpoint_loop(std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    bool failing = false;
    while (true) {
      {
        std::unique_lock lock(mu);
        if (cv.wait_for(lock, stop, o_.checkpoint_interval, [] { return false; }) || stop.stop_requested()) return;
      }
      try {
        write_checkpoint();
        if (failing) ctx_->log().info("checkpoint written again");
        failing = false;
      } catch (const std::exception& e) {
        if (!failing) ctx_->log().warn(std::string("checkpoint failed (retried every interval): ") + e.what());
        failing = true;
      }
    }
  }

  // Writes the committed offset of every file still open or not yet fully acknowledged, plus
  // the older checkpoint's entries for files not seen in this run (they may come back).
  void write_checkpoint() {
    if (!ckpt_dir_) return;
    std::lock_guard lock(ckpt_mu_);
    std::string j = "{\"version\":1,\"stage\":";
    flow::io::append_json_string(j, stage_);
    j += ",\"files\":[";
    bool first = true;
    auto entry = [&](const FileId& id, const std::string& path, int32_t gen, int64_t offset, std::size_t head_len,
                     uint64_t head_hash) {
      if (!first) j += ",";
      first = false;
      j += "{\"dev\":" + std::to_string(id.dev) + ",\"ino\":" + std::to_string(id.ino) + ",\"gen\":" +
           std::to_string(gen) + ",\"offset\":" + std::to_string(offset) + ",\"head_len\":" +
           std::to_string(head_len) + ",\"head_hash\":" + std::to_string(head_hash) + ",\"path\":";
      flow::io::append_json_string(j, path);
      j += "}";
    };
    for (const auto& e : tracker_->snapshot()) entry(e.id, e.path, e.gen, e.committed, e.head.size(), fnv1a(e.head));
    for (const auto& [id, sv] : saved_) {
      if (tracker_->seen(id)) continue;
      // Kept while its path still names it (it may match again); a file gone or replaced at
      // its path would not be read anyway, so its entry is dropped rather than kept forever.
      struct stat st{};
      if (::stat(sv.path.c_str(), &st) != 0 ||
          FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)} != id)
        continue;
      entry(id, sv.path, sv.gen, sv.offset, sv.head_len, sv.head_hash);
    }
    j += "]}\n";
    if (j == last_ckpt_) return;  // nothing acknowledged since the last one
    flow::io::atomic_write_file(*ckpt_dir_, ckpt_name_, j, true);
    last_ckpt_ = std::move(j);
    checkpoints_->add();
  }

  // Per (source, generation): the highest committed end offset in each sink checkpoint directory
  // of resume_from. A directory without an entry for a file says nothing about it.
  void load_sink_manifests() {
    simdjson::dom::parser parser;
    for (const auto& d : o_.resume_from) {
      const fs::path dir = fs::absolute(d).lexically_normal();
      std::map<std::pair<std::string, int32_t>, int64_t> ends;
      auto take = [&](const fs::path& file) {
        simdjson::dom::element doc;
        if (auto err = parser.load(file.string()).get(doc))
          throw std::runtime_error("resume_from: '" + file.string() + "': " + simdjson::error_message(err));
        simdjson::dom::array ranges;
        if (doc["ranges"].get(ranges)) throw std::runtime_error("resume_from: '" + file.string() + "': no \"ranges\"");
        for (auto r : ranges) {
          std::string_view source;
          int64_t part = 0, end = 0;
          if (r["source"].get(source) || r["partition"].get(part) || r["end"].get(end))
            throw std::runtime_error("resume_from: '" + file.string() + "': a range lacks source/partition/end");
          if (!source.starts_with(stage_ + ":")) continue;  // another source's
          auto& e = ends[{std::string(source), static_cast<int32_t>(part)}];
          e = std::max(e, end);
        }
      };
      std::error_code ec;
      if (fs::exists(dir / "archived-offsets.json", ec)) take(dir / "archived-offsets.json");
      if (fs::is_directory(dir / "commits", ec))
        for (const auto& e : fs::directory_iterator(dir / "commits")) {
          const std::string name = e.path().filename().string();
          if (e.is_regular_file() && name.ends_with(".json") && !name.starts_with(".")) take(e.path());
        }
      sink_ends_.push_back(std::move(ends));
    }
  }

  // Where the sinks of resume_from all committed (source, gen) to, if every one of them has it.
  std::optional<int64_t> sinks_committed(const std::string& source, int32_t gen) const {
    if (sink_ends_.empty()) return std::nullopt;
    std::optional<int64_t> low;
    for (const auto& ends : sink_ends_) {
      auto it = ends.find({source, gen});
      if (it == ends.end()) return std::nullopt;
      low = low ? std::min(*low, it->second) : it->second;
    }
    return low;
  }

  // The newest generation of `source` in every resume_from directory (no checkpoint entry).
  std::optional<int32_t> sinks_generation(const std::string& source) const {
    std::optional<int32_t> gen;
    for (const auto& [key, end] : sink_ends_.empty() ? std::map<std::pair<std::string, int32_t>, int64_t>{}
                                                      : sink_ends_.front())
      if (key.first == source) gen = std::max(gen.value_or(key.second), key.second);
    return gen;
  }

  std::string source_of(const FileId& id) const {
    return stage_ + ":" + std::to_string(id.dev) + ":" + std::to_string(id.ino);
  }

  // --- discovery --------------------------------------------------------------------------

  // Expands the globs; opens files not tracked yet; notes files whose path moved away. Returns
  // the number of files opened.
  std::size_t rescan(bool initial) {
    std::set<std::string> paths;
    for (const auto& pattern : o_.paths) {
      glob_t g{};
      const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
      if (rc == 0)
        for (std::size_t i = 0; i < g.gl_pathc; ++i) paths.insert(g.gl_pathv[i]);
      ::globfree(&g);
      watch_dir(fs::path(pattern).parent_path());
    }
    for (auto& [id, f] : files_) f->matched = false;
    std::size_t opened = 0;
    for (const auto& path : paths) {
      struct stat st{};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      const FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
      if (auto it = files_.find(id); it != files_.end()) {
        if (it->second->path != path) {
          tracker_->set_path(it->second->source, it->second->gen, path);
          ctx_->log().info("'" + it->second->path + "' is now '" + path + "' (renamed); still reading it");
          it->second->path = path;
        }
        it->second->matched = true;
        continue;
      }
      if (open_file(path, initial)) ++opened;
    }
    return opened;
  }

  bool open_file(const std::string& path, bool initial) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) ctx_->log().warn("cannot open '" + path + "': " + std::strerror(errno));
      return false;
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return false;
    }
    auto f = std::make_unique<OpenFile>();
    f->id = FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    if (files_.count(f->id)) {  // a second name (hard link) of a file being read
      ::close(fd);
      return false;
    }
    f->fd = fd;
    f->path = path;
    f->source = source_of(f->id);
    const int64_t size = st.st_size;
    std::string how;
    if (auto s = saved_.find(f->id); s != saved_.end() && !tracker_->seen(f->id)) {
      const std::string head = read_head(fd, s->second.head_len);
      if (head.size() != s->second.head_len || fnv1a(head) != s->second.head_hash) {
        f->gen = s->second.gen + 1;
        how = "from the beginning (its inode was reused by a new file since the checkpoint)";
      } else if (size < s->second.offset) {
        f->gen = s->second.gen + 1;
        truncations_->add();
        how = "from the beginning (truncated below its checkpoint offset " + std::to_string(s->second.offset) + ")";
      } else {
        f->gen = s->second.gen;
        f->offset = s->second.offset;
        how = "at byte " + std::to_string(f->offset) + " (checkpoint)";
        if (auto sink = sinks_committed(f->source, f->gen); sink && *sink > f->offset && *sink <= size) {
          how = "at byte " + std::to_string(*sink) + " (committed by the sinks of resume_from; checkpoint " +
                std::to_string(f->offset) + ")";
          f->offset = *sink;
        }
      }
    } else if (auto g = sinks_generation(f->source); g && !tracker_->seen(f->id) && sinks_committed(f->source, *g) &&
                                                     *sinks_committed(f->source, *g) <= size) {
      // No checkpoint entry yet (a crash before the first one): the sinks' manifests name the file.
      f->gen = *g;
      f->offset = *sinks_committed(f->source, *g);
      how = "at byte " + std::to_string(f->offset) + " (committed by the sinks of resume_from)";
    } else if (auto c = closed_gens_.find(f->id); c != closed_gens_.end()) {
      f->gen = c->second + 1;  // the same inode again in this run: keep its positions apart
      how = "from the beginning";
    } else if (initial && o_.start == "end") {
      f->offset = size;
      how = "at its end (" + std::to_string(size) + " bytes; start: end)";
    } else {
      how = "from the beginning";
    }
    f->read_pos = f->offset;
    if (::lseek(fd, f->offset, SEEK_SET) < 0) {
      ctx_->log().warn("cannot seek in '" + path + "': " + std::strerror(errno));
      ::close(fd);
      return false;
    }
    tracker_->start(f->source, f->gen, f->offset, f->id, f->path, read_head(fd, kHeadBytes));
    ctx_->log().info("reading '" + path + "' " + how);
    watch_dir(fs::path(path).parent_path());
    files_.emplace(f->id, std::move(f));
    return true;
  }

  void watch_dir(const fs::path& dir) {
    if (ino_fd_ < 0) return;
    const std::string d = dir.empty() ? "." : dir.string();
    if (d.find_first_of("*?[") != std::string::npos || watched_.count(d)) return;
    watched_.insert(d);  // once, even when it fails (a missing directory is found by polling)
    ::inotify_add_watch(ino_fd_, d.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB);
  }

  // Sleeps until inotify reports a change, or poll_interval passed, or stop.
  void wait_for_change(flow::Context& ctx) {
    const auto until = Clock::now() + o_.poll_interval;
    while (!ctx.stop_requested()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return;
      const int ms = static_cast<int>(std::min<int64_t>(left, 100));
      if (ino_fd_ < 0) {
        ::poll(nullptr, 0, ms);
        continue;
      }
      pollfd p{ino_fd_, POLLIN, 0};
      if (::poll(&p, 1, ms) > 0) {
        alignas(inotify_event) char ev[4096];
        bool any = false;
        ssize_t n;
        while ((n = ::read(ino_fd_, ev, sizeof ev)) > 0) {
          for (char* q = ev; q < ev + n;) {
            const auto* e = reinterpret_cast<const inotify_event*>(q);
            if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_Q_OVERFLOW)) dir_event_ = true;
            any = true;
            q += sizeof(inotify_event) + e->len;
          }
        }
        if (any) return;
      }
    }
  }

  // --- reading ----------------------------------------------------------------------------

  // Reads one buffer of `f` into the batches. True when bytes were read (or the file restarted).
  bool read_some(OpenFile& f) {
    ssize_t n;
    do n = ::read(f.fd, buf_.data(), buf_.size());
    while (n < 0 && errno == EINTR);
    if (n < 0) throw std::runtime_error("cannot read '" + f.path + "': " + std::strerror(errno));
    if (n == 0) return at_eof(f);
    f.last_growth = Clock::now();
    bytes_->add(static_cast<uint64_t>(n));
    const int64_t base = f.read_pos;
    f.read_pos += n;
    if (base < static_cast<int64_t>(kHeadBytes))
      tracker_->add_head(f.source, f.gen, base, std::string_view(buf_.data(), static_cast<std::size_t>(n)));
    const char* p = buf_.data();
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (!nl) {
        take_partial(f, std::string_view(p, static_cast<std::size_t>(end - p)));
        break;
      }
      const std::string_view piece(p, static_cast<std::size_t>(nl - p));
      const int64_t line_end = base + (nl - buf_.data()) + 1;
      if (f.partial_len == 0) {
        line(f, piece, line_end, static_cast<int64_t>(piece.size()));
      } else {
        take_partial(f, piece);
        line(f, f.partial, line_end, f.partial_len);
        f.partial.clear();
        f.partial_len = 0;
      }
      p = nl + 1;
      if (full() && !flush()) return true;  // bounded batches even from one large read
    }
    return true;
  }

  void take_partial(OpenFile& f, std::string_view s) {
    const auto cap = static_cast<std::size_t>(o_.max_line_size.bytes) + 1;  // one more: known oversize
    if (f.partial.size() < cap) f.partial.append(s.substr(0, cap - f.partial.size()));
    f.partial_len += static_cast<int64_t>(s.size());
  }

  // One complete line [f.offset, line_end), `len` bytes without the newline (`text` may be cut).
  void line(OpenFile& f, std::string_view text, int64_t line_end, int64_t len) {
    const int64_t begin = f.offset;
    f.offset = line_end;
    if (len > static_cast<int64_t>(o_.max_line_size.bytes)) {
      dead_letter(f, text.substr(0, kDeadRawMax), "oversize",
                  "line of " + std::to_string(len) + " bytes is longer than max_line_size (" +
                      std::to_string(o_.max_line_size.bytes) + ")",
                  begin, line_end);
      return;
    }
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (o_.format == "json" && text.find_first_not_of(" \t\r") == std::string_view::npos) {
      add_range(main_ranges_, f, begin, line_end);
      return;
    }
    if (!simdjson::validate_utf8(text.data(), text.size())) {
      dead_letter(f, text.substr(0, kDeadRawMax), "encoding", "invalid UTF-8", begin, line_end);
      return;
    }
    main_.column(0).append_null();
    main_.column(1).append_string(text);
    main_.column(2).append_string(f.path);
    main_.column(3).append_int64(f.gen);
    main_.column(4).append_int64(begin);
    main_.column(5).append_null();
    add_range(main_ranges_, f, begin, line_end);
    lines_->add();
  }

  void dead_letter(OpenFile& f, std::string_view raw, const char* reason, const std::string& why, int64_t begin,
                   int64_t end) {
    dead_->add();
    const std::string msg = "'" + f.path + "' byte " + std::to_string(begin) + ": " + why;
    if (dead_logged_ < 10 && ++dead_logged_) ctx_->log().warn(msg + " (dead-lettered on output 'invalid')");
    dead_batch_.column(0).append_string(raw);
    dead_batch_.column(1).append_string(reason);
    dead_batch_.column(2).append_string(msg);
    dead_batch_.column(3).append_string(f.path);
    dead_batch_.column(4).append_int64(f.gen);
    dead_batch_.column(5).append_int64(begin);
    add_range(dead_ranges_, f, begin, end);
  }

  static void add_range(std::vector<flow::PositionRange>& r, const OpenFile& f, int64_t begin, int64_t end) {
    if (!r.empty() && r.back().end == begin && r.back().partition == f.gen && r.back().source == f.source) {
      r.back().end = end;
      return;
    }
    r.push_back({f.source, f.gen, begin, end});
  }

  // End of the data for now: truncation, deletion, rotation away from the glob.
  bool at_eof(OpenFile& f) {
    struct stat st{};
    if (::fstat(f.fd, &st) == 0 && st.st_size < f.read_pos) {
      truncations_->add();
      ctx_->log().warn("'" + f.path + "' was truncated (" + std::to_string(st.st_size) + " bytes, read " +
                       std::to_string(f.read_pos) + "): reading it again from the beginning");
      if (f.partial_len > 0)
        ctx_->log().warn("'" + f.path + "': an unterminated line of " + std::to_string(f.partial_len) +
                         " bytes at byte " + std::to_string(f.offset) + " was lost to the truncation");
      f.gen += 1;
      f.offset = f.read_pos = 0;
      f.partial.clear();
      f.partial_len = 0;
      ::lseek(f.fd, 0, SEEK_SET);
      tracker_->start(f.source, f.gen, 0, f.id, f.path);
      return true;
    }
    const bool deleted = st.st_nlink == 0;
    if (!f.matched && !deleted) {
      if (std::string now = current_path(f.fd); !now.empty() && now != f.path) {
        ctx_->log().info("'" + f.path + "' was renamed to '" + now + "' (out of the globs): reading it until it has "
                         "not grown for rotate_wait");
        f.path = now;
        tracker_->set_path(f.source, f.gen, now);
      }
    }
    if (!deleted && (f.matched || Clock::now() - f.last_growth < o_.rotate_wait)) return false;
    ctx_->log().info("'" + f.path + "' " + (deleted ? "was deleted" : "was rotated away") + " and read to its end (" +
                     std::to_string(f.offset) + " bytes): closed");
    if (f.partial_len > 0)
      ctx_->log().warn("'" + f.path + "': its last " + std::to_string(f.partial_len) +
                       " bytes have no newline and were not emitted");
    ::close(f.fd);
    f.fd = -1;
    tracker_->closed(f.source, f.gen);
    closed_gens_[f.id] = f.gen;
    return false;
  }

  // exit_at_end: the last line of a complete file may lack its newline.
  void emit_unterminated(OpenFile& f) {
    if (f.partial_len == 0) return;
    const int64_t end = f.offset + f.partial_len;
    const std::string text = std::move(f.partial);
    const int64_t len = f.partial_len;
    f.partial.clear();
    f.partial_len = 0;
    line(f, text, end, len);
  }

  // --- batches ----------------------------------------------------------------------------

  void start_batches() {
    main_ = flow::Batch(flow::raw_message_schema());
    dead_batch_ = flow::Batch(dead_letter_schema());
    main_ranges_.clear();
    dead_ranges_.clear();
  }

  bool full() const {
    return main_.num_rows() >= static_cast<std::size_t>(o_.batch_size) || main_.byte_size() >= kBatchBytes ||
           dead_batch_.num_rows() >= 1000;
  }

  // Emits what was read; blocks while the channel is full (that is the backpressure). False when
  // the pipeline aborts.
  bool flush() {
    if (main_ranges_.empty() && dead_ranges_.empty()) return true;
    auto tracker = tracker_;
    auto track = [&](std::vector<flow::PositionRange>& ranges) {
      return flow::Positions::track(std::move(ranges), [tracker](const std::vector<flow::PositionRange>& acked) {
        for (const auto& r : acked) tracker->acked(r.source, r.partition, r.begin, r.end);
      });
    };
    for (const auto& r : main_ranges_) tracker_->emitted(r.source, r.partition, r.end);
    for (const auto& r : dead_ranges_) tracker_->emitted(r.source, r.partition, r.end);
    bool ok = true;
    if (!dead_ranges_.empty()) {
      dead_batch_.positions() = track(dead_ranges_);
      ok = out_->emit(std::move(dead_batch_), "invalid");
    }
    if (ok && !main_ranges_.empty()) {
      if (main_.empty()) {
        for (const auto& r : main_ranges_) tracker_->acked(r.source, r.partition, r.begin, r.end);  // blank lines only
      } else {
        main_.positions() = track(main_ranges_);
        ok = out_->emit(std::move(main_));
      }
    }
    start_batches();
    if (!ok) aborted_ = true;
    return ok;
  }

  void release() {
    for (auto& [id, f] : files_)
      if (f->fd >= 0) ::close(f->fd);
    files_.clear();
    if (ino_fd_ >= 0) ::close(ino_fd_);
    ino_fd_ = -1;
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  flow::Emitter* out_ = nullptr;
  std::string stage_;
  std::optional<fs::path> ckpt_dir_;
  std::string ckpt_name_, last_ckpt_;
  std::mutex ckpt_mu_;  // the checkpoint thread and close()
  std::jthread ckpt_thread_;
  std::map<FileId, Saved> saved_;
  std::vector<std::map<std::pair<std::string, int32_t>, int64_t>> sink_ends_;  // per resume_from directory
  std::map<FileId, std::unique_ptr<OpenFile>> files_;
  std::map<FileId, int32_t> closed_gens_;  // files closed in this run: an inode seen again gets a new generation
  std::shared_ptr<Tracker> tracker_ = std::make_shared<Tracker>();
  std::vector<char> buf_;
  flow::Batch main_, dead_batch_;
  std::vector<flow::PositionRange> main_ranges_, dead_ranges_;
  int ino_fd_ = -1;
  std::set<std::string> watched_;
  bool dir_event_ = false;
  bool aborted_ = false;
  bool opened_ = false;
  int dead_logged_ = 0;
  flow::Counter* lines_ = nullptr;
  flow::Counter* bytes_ = nullptr;
  flow::Counter* dead_ = nullptr;
  flow::Counter* truncations_ = nullptr;
  flow::Counter* checkpoints_ = nullptr;
};

}  // namespace

FLOW_PLUGIN(FileSource)
