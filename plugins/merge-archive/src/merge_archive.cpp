// merge-archive: merges the committed CSV part files of csv-window-sink into one archive file
// (one header), writes it durably into backup_dir, then deletes the merged parts and their
// checkpoint manifest entries. Every step is journaled, so a crash between writing the archive
// and deleting the parts neither loses nor doubles a row: open() finishes an interrupted job.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "flow/durable_io.hpp"
#include "flow/flow.hpp"
#include "flow_parts/checkpoint.hpp"
#include "flow_parts/disk_retry.hpp"
#include "merge_archive_hooks.hpp"
#include "parquet_archive.hpp"

namespace fs = std::filesystem;

namespace merge_archive {
namespace {
std::mutex hook_mu;
std::function<void(std::string_view)>& hook_slot() {
  static std::function<void(std::string_view)> hook;
  return hook;
}
}  // namespace

void set_crash_hook(std::function<void(std::string_view point)> hook) {
  std::lock_guard lock(hook_mu);
  hook_slot() = std::move(hook);
}

static void crash_point(std::string_view point) {
  if (const char* at = std::getenv("FLOW_MERGE_ARCHIVE_CRASH_AT"); at && point == at) std::raise(SIGKILL);
  // For tests of a stop that lands inside a merge: one SIGTERM to the whole process (flowctl's
  // signal thread takes it; a second would abort), the first time the merge passes `point`.
  static std::atomic<bool> termed{false};
  if (const char* at = std::getenv("FLOW_MERGE_ARCHIVE_TERM_AT"); at && point == at && !termed.exchange(true))
    ::kill(::getpid(), SIGTERM);
  std::function<void(std::string_view)> hook;
  {
    std::lock_guard lock(hook_mu);
    hook = hook_slot();
  }
  if (hook) hook(point);
}
}  // namespace merge_archive

namespace {

using merge_archive::crash_point;

constexpr std::size_t kChunk = 1u << 20;
// The archive's writeback starts every this many bytes (sync_file_range), not all at the fsync.
constexpr std::size_t kWriteback = 8u << 20;

// Wall time of a merge's steps, for its log line (the bench reads the merge's own cost there,
// apart from the pipeline's start-up).
class Steps {
 public:
  void lap(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    laps_.emplace_back(step, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
  std::string text() const {
    double total = 0;
    std::string detail;
    for (const auto& [step, secs] : laps_) {
      total += secs;
      detail += (detail.empty() ? "" : ", ") + std::string(step) + " " + fixed(secs);
    }
    return "in " + fixed(total) + " s (" + detail + ")";
  }

 private:
  static std::string fixed(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
  }
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<const char*, double>> laps_;
};

// ---------------------------------------------------------------------------------------------
// Paths

fs::path normal(const std::string& p) {
  fs::path n = fs::weakly_canonical(fs::absolute(p)).lexically_normal();
  if (n.filename().empty() && n.has_parent_path() && n != n.root_path()) n = n.parent_path();
  return n;
}

// Whether `inner` is `outer` or lies below it.
bool within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

using flow::parts::Job;
using flow::parts::manifest_name;
std::optional<flow::parts::PartKey> part_key(const std::string& name) { return flow::parts::parse_part_name(name); }

std::string fnv_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The archive file: plain or gzip, written to a temporary name.

class ArchiveWriter {
 public:
  ArchiveWriter(fs::path tmp, bool gzip) : tmp_(std::move(tmp)), gzip_(gzip) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) flow::io::throw_errno("cannot create", tmp_);
    if (gzip_) {
      if (deflateInit2(&zs_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
        throw std::runtime_error("zlib: deflateInit2 failed");
      }
      zinit_ = true;
      zout_.resize(256u << 10);
    }
    buf_.reserve(kChunk + 4096);
  }
  ~ArchiveWriter() { abort(); }

  void write(std::string_view data) {
    buf_.append(data);
    if (buf_.size() >= kChunk) flush(false);
  }

  // Starts the disk writing what is already in the file while the rest is copied, so that the
  // final fsync waits for little more than the last stretch.
  void wrote(std::size_t n) {
    // Only a hint (it does not make anything durable): a failure here shows in that fsync.
    unsynced_ += n;
    if (unsynced_ < kWriteback) return;
    (void)::sync_file_range(fd_, static_cast<off_t>(synced_), static_cast<off_t>(unsynced_), SYNC_FILE_RANGE_WRITE);
    synced_ += unsynced_;
    unsynced_ = 0;
  }

  bool gzip() const { return gzip_; }

  // Appends `len` bytes of `in` from `offset` (plain archives): in the kernel, without copying
  // them through this process (copy_file_range, else sendfile, else read and write).
  void copy(int in, off_t offset, std::size_t len, const fs::path& from) {
    flush(false);
    while (len > 0 && copy_in_kernel_) {
      const ssize_t n = ::copy_file_range(in, &offset, fd_, nullptr, len, 0);
      if (n > 0) {
        len -= static_cast<std::size_t>(n);
        wrote(static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) throw std::runtime_error("part '" + from.string() + "' is shorter than when it was checked");
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EPERM) copy_failed(from);
      copy_in_kernel_ = false;  // another file system or an old kernel
    }
    while (len > 0 && sendfile_) {
      const ssize_t n = ::sendfile(fd_, in, &offset, len);
      if (n > 0) {
        len -= static_cast<std::size_t>(n);
        wrote(static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) throw std::runtime_error("part '" + from.string() + "' is shorter than when it was checked");
      if (errno == EINTR) continue;
      if (errno != EINVAL && errno != ENOSYS) copy_failed(from);
      sendfile_ = false;
    }
    std::string chunk;
    while (len > 0) {
      chunk.resize(std::min(len, kChunk));
      const ssize_t n = ::pread(in, chunk.data(), chunk.size(), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) flow::io::throw_errno("cannot read part", from);
      if (n == 0) throw std::runtime_error("part '" + from.string() + "' is shorter than when it was checked");
      flow::io::write_all(fd_, std::string_view(chunk.data(), static_cast<std::size_t>(n)), tmp_);
      wrote(static_cast<std::size_t>(n));
      offset += n;
      len -= static_cast<std::size_t>(n);
    }
  }

  // A kernel copy failed: a full disk (or quota, or file size) is the archive's, which the
  // disk-full retry and the user need named; anything else names both files.
  [[noreturn]] void copy_failed(const fs::path& from) {
    const int err = errno;
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) flow::io::throw_errno("cannot write", tmp_, err);
    flow::io::throw_errno("cannot copy part '" + from.string() + "' into", tmp_, err);
  }

  // Flushes, fsyncs and closes the temporary file.
  void finish() {
    flush(true);
    flow::io::fsync_fd(fd_, tmp_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) flow::io::throw_errno("cannot close", tmp_);
  }

  // Closes and removes the temporary file (after a failure).
  void abort() {
    if (zinit_) {
      deflateEnd(&zs_);
      zinit_ = false;
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_.c_str());
    }
  }

 private:
  void flush(bool end) {
    if (!gzip_) {
      flow::io::write_all(fd_, buf_, tmp_);
      wrote(buf_.size());
      buf_.clear();
      return;
    }
    zs_.next_in = reinterpret_cast<Bytef*>(buf_.data());
    zs_.avail_in = static_cast<uInt>(buf_.size());
    int rc = Z_OK;
    do {
      zs_.next_out = reinterpret_cast<Bytef*>(zout_.data());
      zs_.avail_out = static_cast<uInt>(zout_.size());
      rc = deflate(&zs_, end ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) throw std::runtime_error("zlib: deflate failed for '" + tmp_.string() + "'");
      flow::io::write_all(fd_, std::string_view(zout_.data(), zout_.size() - zs_.avail_out), tmp_);
      wrote(zout_.size() - zs_.avail_out);
    } while (zs_.avail_out == 0 || (end && rc != Z_STREAM_END));
    buf_.clear();
  }

  fs::path tmp_;
  bool gzip_;
  int fd_ = -1;
  z_stream zs_{};
  bool zinit_ = false;
  std::string buf_;
  std::string zout_;
  bool copy_in_kernel_ = true, sendfile_ = true;
  std::size_t synced_ = 0, unsynced_ = 0;  // bytes handed to writeback, and written since
};

// Renames without replacing an existing file; false when `to` exists.
bool rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    flow::io::throw_errno("cannot rename '" + from.string() + "' to", to);
  // File systems without RENAME_NOREPLACE: link() refuses an existing name too.
  if (::link(from.c_str(), to.c_str()) == 0) {
    ::unlink(from.c_str());
    return true;
  }
  if (errno == EEXIST) return false;
  if (fs::exists(to)) return false;
  flow::io::rename_file(from, to);
  return true;
}

class MergeArchive : public flow::Processor {
 public:
  struct Options {
    std::string parts_dir;
    std::string checkpoint_dir;
    std::string backup_dir;
    std::string prefix = "sensor_data";
    flow::Duration every{0};
    bool gzip = false;
    std::string journal_dir;
    std::string format = "csv";
    std::vector<std::string> formats;
    std::map<std::string, std::string> parquet_types;
    int64_t disk_full_retries = 10;
    flow::Duration disk_full_retry_interval{1000};
  };

  static flow::PluginInfo info() {
    return {.name = "merge-archive", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Merges committed CSV part files into one archive file, then deletes the parts (journaled)",
            .main_output = false};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "parts_dir: ${TMPDIR}/parts\nbackup_dir: ${TMPDIR}/backup\n"; }

  // Its conformance input: file events naming committed one-row parts (the part and its manifest
  // entry, in the file-parts format), as csv-window-sink emits them. Past 1000 rows the events
  // name parts that were never written, which the merge must refuse without a crash.
  static flow::Batch sample_input(const Options& o, const flow::SampleRequest& r) {
    constexpr const char* header = "sensor_id,temperature,humidity,timestamp";
    const fs::path parts = o.parts_dir.empty() ? fs::path(r.dir) / "parts" : fs::path(o.parts_dir);
    const fs::path commits = flow::parts::commits_dir(o.checkpoint_dir.empty() ? parts / "_checkpoint" : fs::path(o.checkpoint_dir));
    flow::Batch b(flow::file_event_schema());
    for (std::size_t k = 0; k < r.rows; ++k) {
      const int64_t i = r.first + static_cast<int64_t>(k), micros = r.now_us + i * 1000;
      const std::string name = flow::parts::part_name("part", "conformance", 0, i, 0);
      const std::string text = std::string(header) + "\n" + std::to_string(i % 10 + 1) + ",21.5,40," +
                               flow::parts::iso_utc(micros) + "\n";
      if (r.rows <= 1000) {
        fs::create_directories(commits);
        fs::create_directories(parts);
        flow::io::atomic_write_file(parts, name, text, false);
        flow::parts::Manifest m;
        m.part = name;
        m.rows = 1;
        m.bytes = text.size();
        m.window_start_us = micros;
        m.window_end_us = micros + 10'000'000;
        m.run_id = "conformance";
        m.window_seq = i;
        m.header = header;
        m.ranges = {{"conformance", 0, i, i + 1}};
        flow::parts::write_manifest(commits, m, false);
      }
      b.column(0).append_string((parts / name).string());
      b.column(1).append_int64(1);
      b.column(2).append_int64(static_cast<int64_t>(text.size()));
      b.column(3).append_timestamp(micros);
      b.column(4).append_timestamp(micros + 10'000'000);
      b.column(5).append_string(header);
    }
    return b;
  }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("parts_dir", &Options::parts_dir, "Directory of the part files (csv-window-sink's path)").required();
    t.add("checkpoint_dir", &Options::checkpoint_dir,
          "csv-window-sink's checkpoint directory; empty = _checkpoint inside parts_dir");
    t.add("backup_dir", &Options::backup_dir, "Directory the archive files are written to").required();
    t.add("prefix", &Options::prefix, "Archive file name: prefix_YYYYmmdd_HHMMSS.csv");
    t.add("every", &Options::every, "Merge this often; 0 = once, when the input ends (each run or cycle)");
    t.add("gzip", &Options::gzip, "Compress the archive with zlib (.csv.gz)");
    t.add("journal_dir", &Options::journal_dir, "Directory of the job journal; empty = .merge-journal inside backup_dir");
    t.add("format", &Options::format,
          "Archive format: csv, or parquet (typed columns, zstd, written by DuckDB; prefix_YYYYmmdd_HHMMSS.parquet)")
        .one_of({"csv", "parquet"});
    t.add("formats", &Options::formats, "Several archive formats at once, e.g. [csv, parquet]; overrides format");
    t.add("parquet_types", &Options::parquet_types,
          "Parquet column types (DuckDB names), e.g. {sensor_id: BIGINT}; DuckDB detects the others (from a "
          "sample; integer columns are checked over the whole archive)");
    t.add("disk_full_retries", &Options::disk_full_retries, flow::parts::kDiskFullRetriesDoc).min(0);
    t.add("disk_full_retry_interval", &Options::disk_full_retry_interval, flow::parts::kDiskFullRetryIntervalDoc)
        .min(0.001);
  }

  struct Dirs {
    fs::path parts, checkpoint, backup, journal;
  };

  // Every problem of the directory options; the same rules guard check() and open().
  static std::vector<flow::ConfigError> dir_errors(const Options& o, const flow::Value& config, Dirs* out) {
    std::vector<flow::ConfigError> errors;
    auto where = [&](const char* key) {
      const flow::Value* v = config.find(key);
      return v ? v->location() : config.location();
    };
    if (o.parts_dir.empty()) {
      errors.push_back({where("parts_dir"), "option 'parts_dir': must not be empty"});
      return errors;
    }
    if (o.backup_dir.empty()) {
      errors.push_back({where("backup_dir"), "option 'backup_dir': must not be empty"});
      return errors;
    }
    Dirs d;
    d.parts = normal(o.parts_dir);
    if (d.parts == d.parts.root_path())
      errors.push_back({where("parts_dir"), "option 'parts_dir': '" + o.parts_dir +
                                                "' is the root directory; merge-archive deletes files there"});
    d.checkpoint = o.checkpoint_dir.empty() ? d.parts / "_checkpoint" : normal(o.checkpoint_dir);
    d.backup = normal(o.backup_dir);
    d.journal = o.journal_dir.empty() ? d.backup / ".merge-journal" : normal(o.journal_dir);
    auto refuse = [&](const char* key, const fs::path& dir) {
      for (const auto& [what, danger] : {std::pair<const char*, const fs::path*>{"parts_dir", &d.parts},
                                         std::pair<const char*, const fs::path*>{"checkpoint_dir", &d.checkpoint}}) {
        if (within(dir, *danger)) {
          errors.push_back({where(key), std::string("option '") + key + "': '" + dir.string() + "' lies inside " +
                                            what + " '" + danger->string() +
                                            "', whose files merge-archive deletes; choose a directory outside it"});
          return;
        }
      }
    };
    refuse("backup_dir", d.backup);
    if (!o.journal_dir.empty()) refuse("journal_dir", d.journal);
    if (o.prefix.empty() || o.prefix.find('/') != std::string::npos || o.prefix.front() == '.')
      errors.push_back({where("prefix"), "option 'prefix': '" + o.prefix +
                                             "' must be non-empty, without '/', and not start with '.'"});
    if (out) *out = d;
    return errors;
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    auto e = dir_errors(o, config, nullptr);
    errors.insert(errors.end(), e.begin(), e.end());
    const flow::Value* f = config.find("formats");
    for (const auto& name : o.formats)
      if (name != "csv" && name != "parquet")
        errors.push_back({f ? f->location() : config.location(),
                          "option 'formats': '" + name + "' is not one of {csv, parquet}"});
    if (wants(o, "parquet") && !merge_archive::parquet::available()) {
      const flow::Value* v = f ? f : config.find("format");
      errors.push_back({v ? v->location() : config.location(),
                        "format 'parquet' is not available: merge-archive was built without DuckDB (run "
                        "scripts/setup, or configure with -DDUCKDB_ROOT=<dir with libduckdb.so>)"});
    }
  }

  static bool wants(const Options& o, std::string_view format) {
    if (o.formats.empty()) return o.format == format;
    return std::find(o.formats.begin(), o.formats.end(), format) != o.formats.end();
  }
  // Parquet only: the CSV archive is just the intermediate of the Parquet file.
  bool parquet_only() const { return wants(o_, "parquet") && !wants(o_, "csv"); }
  // Both: the Parquet file is made from the renamed CSV archive, before the parts are deleted.
  void parquet_sibling(const fs::path& csv_archive) {
    const std::string name = csv_archive.filename().string();
    if (!wants(o_, "parquet") || parquet_only() || !(name.ends_with(".csv") || name.ends_with(".csv.gz"))) return;
    const fs::path p = merge_archive::parquet::sibling(csv_archive);
    if (!fs::exists(p)) merge_archive::parquet::convert(csv_archive, p, o_.parquet_types);
  }

  explicit MergeArchive(Options o) : o_(std::move(o)) {}

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    retry_ = flow::parts::DiskFullRetry(ctx.log(), ctx.stop_token(), ctx.stage_id(), o_.disk_full_retries,
                                        o_.disk_full_retry_interval);
    const auto errors = dir_errors(o_, flow::Value(), &dirs_);
    if (!errors.empty()) throw std::runtime_error(errors.front().message);
    commits_dir_ = dirs_.checkpoint / "commits";
    for (const auto& d : {dirs_.parts, dirs_.backup, dirs_.journal}) {
      std::error_code ec;
      fs::create_directories(d, ec);
      if (ec) throw std::runtime_error("cannot create directory '" + d.string() + "': " + ec.message());
      flow::io::check_writable_dir(d, "merge-archive");
    }
    journal_file_ = "job-" + fnv_hex(dirs_.parts.string()) + ".json";
    // One merger per parts_dir: a second would race this one's journal and parts. Several
    // mergers of different parts directories may share backup_dir (iot-local does).
    lock_ = flow::parts::DirLock(dirs_.journal, flow::parts::holder_text(ctx.run_id(), ctx.stage_id()),
                                 "." + journal_file_.substr(0, journal_file_.size() - 5) + ".lock");
    archives_ = &ctx.counter("archives");
    rows_archived_ = &ctx.counter("rows_archived");
    parts_merged_ = &ctx.counter("parts_merged");
    last_merge_ = ctx.now();

    if (wants(o_, "parquet")) merge_archive::parquet::remove_leftovers(dirs_.backup);
    recover();

    // Committed parts left by an earlier run that stopped before merging them. The entries are
    // listed once, after the parts (a part committed in between is announced by its sink anyway).
    std::vector<std::pair<flow::parts::PartKey, std::string>> found;
    for (const auto& e : fs::directory_iterator(dirs_.parts)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.starts_with(".")) continue;
      if (auto key = part_key(name)) found.emplace_back(std::move(*key), name);
      else ctx.log().info("leaving unknown file '" + e.path().string() + "' alone (not a part file)");
    }
    std::optional<std::unordered_set<std::string>> entries;  // none without a commits directory
    if (!found.empty() && fs::is_directory(commits_dir_)) {
      entries.emplace();
      for (const auto& e : fs::directory_iterator(commits_dir_)) entries->insert(e.path().filename().string());
    }
    std::size_t leftovers = 0;
    for (auto& [key, name] : found) {
      // A part without its manifest entry is not committed (a crash came between its rename
      // and its entry): its sink removes it and its records are delivered again.
      if (entries && !entries->contains(manifest_name(name))) {
        ctx.log().warn("leaving part '" + (dirs_.parts / name).string() +
                       "' alone: it has no manifest entry (not committed)");
        continue;
      }
      pending_.emplace(std::move(key), std::move(name));
      ++leftovers;
    }
    if (leftovers > 0)
      ctx.log().info("found " + std::to_string(leftovers) + " committed part(s) from an earlier run in '" +
                     dirs_.parts.string() + "'; they are merged with this run's");
  }

  std::chrono::milliseconds timer_interval() const override {
    if (o_.every.count() <= 0) return std::chrono::milliseconds(0);
    return std::min<std::chrono::milliseconds>(o_.every, std::chrono::milliseconds(1000));
  }

  void process(flow::Batch batch, flow::Emitter&) override {
    if (!batch.schema()->index_of("path"))
      throw std::runtime_error("input has no 'path' column: merge-archive reads file events (connect it to "
                               "csv-window-sink's output)");
    const auto& paths = batch.column("path");
    for (std::size_t i = 0; i < batch.num_rows(); ++i) {
      const fs::path p = fs::path(std::string(paths.string_at(i))).lexically_normal();
      const std::string name = p.filename().string();
      if (normal(p.parent_path().string()) != dirs_.parts)
        throw std::runtime_error("file event for '" + p.string() + "' lies outside parts_dir '" +
                                 dirs_.parts.string() + "' (parts_dir must be csv-window-sink's path)");
      auto key = part_key(name);
      if (!key)
        throw std::runtime_error("file event for '" + p.string() +
                                 "': the name is not a csv-window-sink part name (<prefix>-<run>-cNNNN-NNNNNN-NNNN.csv)");
      pending_.emplace(std::move(*key), name);
    }
    positions_.append(std::move(batch.positions()));
  }

  void on_timer(flow::Emitter&) override {
    if (o_.every.count() > 0 && ctx_->now() - last_merge_ >= o_.every) merge();
  }

  void finish(flow::Emitter&) override { merge(); }

  void close() override { lock_.release(); }

 private:
  fs::path journal_path() const { return dirs_.journal / journal_file_; }

  void write_journal(const Job& job) { write_journal(job, journal_file_); }
  void write_journal(const Job& job, const std::string& file) {
    Job j = job;
    j.parts_dir = dirs_.parts.string();
    j.checkpoint_dir = dirs_.checkpoint.string();
    j.backup_dir = dirs_.backup.string();
    retry_.run([&] { flow::io::atomic_write_file(dirs_.journal, file, flow::parts::journal_json(j), true); });
  }

  static Job read_journal(const fs::path& p) { return flow::parts::read_journal(p); }

  // The job is done: no journal means nothing to finish. Not fsynced: should a crash undo the
  // removal, open() finds the job `archived` and repeats its cleanup, which skips what is gone.
  void remove_journal(const std::string& file) {
    std::error_code ec;
    fs::remove(dirs_.journal / file, ec);
    if (ec)
      throw std::runtime_error("cannot remove merge journal '" + (dirs_.journal / file).string() + "': " + ec.message());
  }

  // Finishes the interrupted jobs of this parts_dir found in journal_dir (journals of other
  // parts directories are left alone).
  void recover() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dirs_.journal)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.starts_with("job-") && name.ends_with(".json")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      Job job = read_journal(f);
      if (normal(job.parts_dir) != dirs_.parts) continue;
      recover_job(job, f.filename().string());
    }
  }

  // Finishes (or, before the archive was renamed into place, abandons) one interrupted job.
  void recover_job(Job& job, const std::string& file) {
    if (job.state == "cleaned") {  // written by earlier versions
      remove_journal(file);
      return;
    }
    const fs::path target = dirs_.backup / job.target;
    if (job.state == "planned") {
      if (!fs::exists(target)) {
        // The archive never became visible: drop its temporary file; the parts are all still
        // there and are merged again with the others.
        std::error_code ec;
        fs::remove(dirs_.backup / ("." + job.target + ".tmp"), ec);
        fs::remove(dirs_.journal / file, ec);
        flow::io::fsync_dir(dirs_.journal);
        ctx_->log().warn("interrupted archive job for '" + target.string() +
                         "' had not written its archive; its " + std::to_string(job.parts.size()) +
                         " part(s) will be merged again");
        return;
      }
      job.state = "archived";  // renamed, but the crash came before the journal said so
      write_journal(job, file);
    }
    if (job.state == "archived") parquet_sibling(target);
    const std::size_t deleted = cleanup(job);
    remove_journal(file);
    ctx_->log().warn("finished interrupted archive job: '" + target.string() + "' was complete; deleted " +
                     std::to_string(deleted) + " remaining merged part(s)");
  }

  std::string choose_target(const std::string& suffix = "") const {
    const std::time_t t = std::chrono::system_clock::to_time_t(ctx_->now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm);
    const std::string ext = parquet_only() ? ".parquet" : o_.gzip ? ".csv.gz" : ".csv";
    const std::string base = o_.prefix + "_" + stamp + suffix;
    for (int i = 0;; ++i) {
      const std::string name = base + (i ? "_" + std::to_string(i) : std::string()) + ext;
      if (!fs::exists(dirs_.backup / name) && !fs::exists(dirs_.backup / ("." + name + ".tmp")) &&
          !fs::exists(merge_archive::parquet::sibling(dirs_.backup / name)))  // a Parquet twin is this job's
        return name;
    }
  }

  struct Written {
    uint64_t rows = 0;
  };
  struct PartHead {
    std::string header;  // its header line: the manifest entry's, or read from the part
    bool header_from_entry = false;
    std::optional<uint64_t> bytes;  // its size, as its manifest entry records it
    std::optional<uint64_t> rows;   // set when the manifest entry vouches for the part
    bool has_entry = false;
    std::vector<flow::PositionRange> ranges;  // its manifest entry's
  };

  // Parts are only read: no access time to write back for each (it needs the file's owner).
  static int open_part(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    return fd;
  }

  // Streams every part into the writer: the first part's header once, then each part's records.
  Written write_parts(const std::vector<std::string>& parts, ArchiveWriter& w) {
    Written out;
    std::string first_header;
    std::string buf;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const fs::path p = dirs_.parts / parts[k];
      const int fd = open_part(p);
      if (fd < 0) {
        if (errno == ENOENT)
          throw std::runtime_error("part '" + p.string() + "' is missing (announced or journaled, but not on disk); "
                                   "nothing was deleted");
        flow::io::throw_errno("cannot open part", p);
      }
      struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
      } closer{fd};
      if (auto h = heads_.find(parts[k]); h != heads_.end() && h->second.rows) {
        out.rows += copy_trusted(fd, parts[k], h->second, k == 0 ? nullptr : &first_header, w);
        if (k == 0) first_header = h->second.header;
        continue;
      }
      if (buf.empty()) buf.assign(kChunk, '\0');
      flow::parts::PartScanner scan;
      for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          flow::io::throw_errno("cannot read part", p);
        }
        if (n == 0) break;
        const bool had_header = scan.header_done();
        const std::string_view records = scan.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        if (!had_header && scan.header_done()) {
          const std::string header = scan.header();
          if (k == 0) {
            first_header = header;
            w.write(header);
            w.write("\n");
          } else if (header != first_header) {
            throw std::runtime_error("part '" + p.string() + "' has header '" + header + "', but '" +
                                     (dirs_.parts / parts[0]).string() + "' has '" + first_header +
                                     "'; nothing was merged or deleted");
          }
        }
        w.write(records);
      }
      if (!scan.header_done())
        throw std::runtime_error("part '" + p.string() + "' has no complete header line; nothing was deleted");
      if (scan.finish()) w.write("\n");  // a part without its final line feed: keep records apart
      out.rows += scan.rows();
    }
    return out;
  }

  // A part whose manifest entry vouches for it (size, rows, header): what csv-window-sink wrote
  // and committed. Its size and header line are checked against the entry, then its body is
  // copied as it is (no per-line scan; a small part from the bytes already read, a larger one in
  // the kernel) and its rows are the entry's count. Returns the rows.
  uint64_t copy_trusted(int fd, const std::string& name, const PartHead& h, const std::string* first_header,
                        ArchiveWriter& w) {
    const fs::path p = dirs_.parts / name;
    struct stat st{};
    if (::fstat(fd, &st) != 0) flow::io::throw_errno("cannot read part", p);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size != *h.bytes) throw torn(p, commits_dir_ / manifest_name(name), size, *h.bytes);
    // The header line, and a small part whole, in one read.
    constexpr uint64_t kWhole = 256u << 10;
    std::string& buf = head_buf_;
    std::size_t have = 0;
    flow::parts::PartScanner scan;
    uint64_t body = 0;
    // Feeds the scanner up to each line feed only, so it never counts the records after the header.
    auto scan_header = [&](std::size_t from) {
      while (!scan.header_done() && from < have) {
        const char* nl = static_cast<const char*>(std::memchr(buf.data() + from, '\n', have - from));
        const std::size_t to = nl ? static_cast<std::size_t>(nl - buf.data()) + 1 : have;
        scan.feed(std::string_view(buf.data() + from, to - from));
        from = to;
      }
      if (scan.header_done() && body == 0) body = from;
    };
    for (;;) {
      const uint64_t next = have == 0 && size <= kWhole ? size : have + 4096;
      const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(size, next));
      if (want <= have) break;
      if (buf.size() < want) buf.resize(std::max<std::size_t>(want, 4096));
      const ssize_t n = ::pread(fd, buf.data() + have, want - have, static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) flow::io::throw_errno("cannot read part", p);
      if (n == 0) throw std::runtime_error("part '" + p.string() + "' is shorter than when it was checked");
      const std::size_t from = have;
      have += static_cast<std::size_t>(n);
      scan_header(from);
      if (scan.header_done()) break;
    }
    const std::string header = scan.header();
    if (!scan.header_done() || header != h.header)
      throw std::runtime_error("part '" + p.string() + "' has header '" + header + "', but " +
                               (h.header_from_entry ? "its manifest entry '" +
                                                          (commits_dir_ / manifest_name(name)).string() + "' says '"
                                                    : std::string("it had '")) +
                               h.header + "' (changed after it was committed): restore the part, or remove it and its "
                               "manifest entry so that its records are delivered again; nothing was merged or deleted");
    if (!first_header) {
      w.write(header);
      w.write("\n");
    } else if (header != *first_header) {
      throw std::runtime_error("part '" + p.string() + "' has header '" + header + "', but the first part has '" +
                               *first_header + "'; nothing was merged or deleted");
    }
    if (body == size) return *h.rows;
    char last = '\n';
    if (have == size) {  // all of it is in buf
      w.write(std::string_view(buf.data() + body, static_cast<std::size_t>(size - body)));
      last = buf[static_cast<std::size_t>(size - 1)];
    } else {
      const std::size_t len = static_cast<std::size_t>(size - body);
      if (w.gzip()) {
        std::string chunk(std::min(len, kChunk), '\0');
        for (off_t off = static_cast<off_t>(body); off < static_cast<off_t>(size);) {
          const ssize_t n = ::pread(fd, chunk.data(), chunk.size(), off);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) flow::io::throw_errno("cannot read part", p);
          if (n == 0) throw std::runtime_error("part '" + p.string() + "' is shorter than when it was checked");
          w.write(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
          off += n;
        }
      } else {
        w.copy(fd, static_cast<off_t>(body), len, p);
      }
      if (::pread(fd, &last, 1, static_cast<off_t>(size - 1)) != 1) flow::io::throw_errno("cannot read part", p);
    }
    if (last != '\n') w.write("\n");  // keep records apart
    return *h.rows;
  }

  // A part whose size differs from its manifest entry's: torn or changed after it was committed.
  static std::runtime_error torn(const fs::path& p, const fs::path& entry, uint64_t size, uint64_t bytes) {
    return std::runtime_error("part '" + p.string() + "' is " + std::to_string(size) + " bytes, but its manifest " +
                              "entry '" + entry.string() + "' says " + std::to_string(bytes) +
                              " (torn or changed after it was committed): restore the part, or remove it and its "
                              "manifest entry so that its records are delivered again; nothing was merged or deleted");
  }

  // A part's header line, for grouping the parts; notes what was learnt in heads_. The manifest
  // entry is read once here (its ranges go to archived-offsets.json later). A part whose entry
  // records its size, rows and header line is not opened here: copy_trusted checks it against the
  // entry before copying it. Other parts are checked now (a size that differs from the entry's
  // means the part was torn or changed after it was committed) and their header line read.
  std::string checked_header(const std::string& name) {
    const fs::path p = dirs_.parts / name;
    const fs::path m = commits_dir_ / manifest_name(name);
    PartHead head;
    if (const auto text = flow::parts::read_state_file_if_exists(m)) {
      flow::parts::ManifestEntry entry;
      try {
        entry = flow::parts::parse_manifest(*text);
      } catch (const std::exception& e) {
        throw std::runtime_error("cannot read checkpoint file '" + m.string() + "': " + e.what() + "; " +
                                 flow::parts::checkpoint_advice(m));
      }
      head.has_entry = true;
      head.bytes = entry.bytes;
      head.ranges = std::move(entry.ranges);
      if (entry.bytes && entry.rows && entry.header) {
        head.rows = entry.rows;
        head.header = std::move(*entry.header);
        head.header_from_entry = true;
        const std::string header = head.header;
        heads_[name] = std::move(head);
        return header;
      }
      if (entry.bytes) head.rows = entry.rows;
    }
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory)
        throw std::runtime_error("part '" + p.string() + "' is missing (announced or journaled, but not on disk); "
                                 "nothing was deleted");
      throw std::runtime_error("cannot read part '" + p.string() + "': " + ec.message());
    }
    if (head.bytes && *head.bytes != size) throw torn(p, m, size, *head.bytes);
    const int fd = open_part(p);
    if (fd < 0) flow::io::throw_errno("cannot open part", p);
    std::string buf(4096, '\0');
    flow::parts::PartScanner scan;
    while (!scan.header_done()) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      scan.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
    }
    ::close(fd);
    if (!scan.header_done()) head.rows.reset();  // no complete header line: write_parts' scan says so
    head.header = scan.header();
    const std::string header = head.header;
    heads_[name] = std::move(head);
    return header;
  }

  // Parts of different headers (a column added or dropped between runs, issue 14) go to separate
  // archives, one per header, oldest group first; their names carry a short hash of the header.
  void merge() {
    last_merge_ = ctx_->now();
    heads_.clear();
    if (pending_.empty()) {
      positions_.ack();
      return;
    }
    Steps steps;
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    for (const auto& [key, name] : pending_) {
      const std::string header = checked_header(name);
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == header; });
      if (it == groups.end()) groups.push_back({header, {name}});
      else it->second.push_back(name);
    }
    if (groups.size() > 1)
      ctx_->log().warn(std::to_string(groups.size()) + " different headers among the parts of '" +
                       dirs_.parts.string() + "': one archive per header (names end in _h<hash of the header>)");
    steps.lap("check");
    for (const auto& [header, parts] : groups)
      merge_job(parts, groups.size() > 1 ? "_h" + fnv_hex(header).substr(0, 8) : std::string(), steps);
    positions_.ack();
  }

  void merge_job(const std::vector<std::string>& parts, const std::string& suffix, Steps& steps) {
    Job job;
    job.state = "planned";
    job.parts = parts;
    job.target = choose_target(suffix);
    write_journal(job);
    crash_point("planned");

    Written written;
    for (;;) {
      const fs::path tmp = dirs_.backup / ("." + job.target + ".tmp");
      try {
        // On a full disk the archive is written again from the parts, which are all still there.
        retry_.run(
            [&] {
              ArchiveWriter w(tmp, o_.gzip && !parquet_only());
              written = write_parts(job.parts, w);
              steps.lap("copy");
              w.finish();
              steps.lap("fsync");
              if (parquet_only()) {
                merge_archive::parquet::convert(tmp, tmp, o_.parquet_types);
                steps.lap("parquet");
              }
            },
            [&] {
              std::error_code ec;
              fs::remove(tmp, ec);
            });
      } catch (...) {
        // Nothing was renamed or deleted: abandon the job, keep every part.
        std::error_code ec;
        fs::remove(tmp, ec);
        fs::remove(journal_path(), ec);
        throw;
      }
      crash_point("archive-written");
      bool renamed = false;
      retry_.run([&] { renamed = rename_no_replace(tmp, dirs_.backup / job.target); });
      if (renamed) break;
      // Someone took the name meanwhile: pick another and say so in the journal first.
      std::error_code ec;
      fs::remove(tmp, ec);
      job.target = choose_target(suffix);
      write_journal(job);
    }
    retry_.run([&] { flow::io::fsync_dir(dirs_.backup); });
    crash_point("archive-renamed");
    if (wants(o_, "parquet") && !parquet_only()) {
      steps.lap("rename");
      parquet_sibling(dirs_.backup / job.target);
      steps.lap("parquet");
    }
    job.state = "archived";
    write_journal(job);
    crash_point("journal-archived");
    steps.lap("commit");

    cleanup(job, true);
    remove_journal(journal_file_);
    steps.lap("delete");

    const fs::path target = dirs_.backup / job.target;
    ctx_->log().info("archived '" + target.string() + "': " + std::to_string(written.rows) + " rows from " +
                     std::to_string(job.parts.size()) + " parts " + steps.text());
    steps = Steps();
    archives_->add();
    rows_archived_->add(written.rows);
    parts_merged_->add(job.parts.size());
    for (const auto& p : job.parts) pending_.erase({*part_key(p), p});
  }

  // Records the archived offsets, then deletes the job's parts and their manifest entries (only
  // those). Safe to repeat: what is already gone is skipped. Returns the parts deleted now.
  // `checked`: the entries were read by this merge's check (heads_), else they are read now.
  std::size_t cleanup(const Job& job, bool checked = false) {
    record_archived_offsets(job, checked);
    std::size_t deleted = 0;
    // The first two one at a time, so a crash point can stop the job between single deletions;
    // the rest together (remove_files).
    const std::size_t single = std::min<std::size_t>(2, job.parts.size());
    for (std::size_t i = 0; i < single; ++i) {
      std::error_code ec;
      if (fs::remove(dirs_.parts / job.parts[i], ec)) {
        ++deleted;
        crash_point("part-deleted");
      }
      if (ec) throw std::runtime_error("cannot delete '" + (dirs_.parts / job.parts[i]).string() + "': " + ec.message());
    }
    std::vector<fs::path> paths;
    for (std::size_t i = single; i < job.parts.size(); ++i) paths.push_back(dirs_.parts / job.parts[i]);
    for (const char removed : remove_files(paths))
      if (removed) {
        ++deleted;
        crash_point("part-deleted");
      }
    flow::io::fsync_dir(dirs_.parts);
    crash_point("parts-deleted");
    if (fs::is_directory(commits_dir_)) {
      paths.clear();
      for (const auto& name : job.parts) paths.push_back(commits_dir_ / manifest_name(name));
      remove_files(paths);
      flow::io::fsync_dir(commits_dir_);
    }
    crash_point("manifests-deleted");
    return deleted;
  }

  // Removes files (those already gone are skipped); says which existed. With up to 64 threads: on
  // ext4 mounted with `discard` an unlink that frees blocks waits on the device: for its journal
  // commit (~3 ms on an earlier bench VM: 30 s for 10,000 manifest entries one at a time), or,
  // where the file system has no journal, for the discard itself, issued in the unlink (~60 us
  // on the 2026-11 VM), and concurrent unlinks overlap the waits (10,000 parts of 32 KB and
  // their entries: 1.2 s with 8 threads, 0.65 with 16, 0.5 with 64; no better with 128 or
  // 256). Throws, after all were tried, naming the first file that could not be removed.
  static std::vector<char> remove_files(const std::vector<fs::path>& paths) {
    std::vector<char> removed(paths.size(), 0);
    std::vector<std::error_code> errors(paths.size());
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < paths.size();)
        removed[i] = fs::remove(paths[i], errors[i]) ? 1 : 0;
    };
    std::vector<std::thread> pool;
    try {
      for (std::size_t t = 1; t < std::min<std::size_t>(64, (paths.size() + 3) / 4); ++t) pool.emplace_back(work);
    } catch (const std::system_error&) {
      // no more threads: the ones started and this one do the work
    }
    work();
    for (auto& t : pool) t.join();
    for (std::size_t i = 0; i < paths.size(); ++i)
      if (errors[i]) throw std::runtime_error("cannot delete '" + paths[i].string() + "': " + errors[i].message());
    return removed;
  }

  // <checkpoint_dir>/archived-offsets.json keeps, per source and partition, the highest end
  // offset of the manifest entries merge-archive deletes, so the committed positions a restart
  // resumes from are not lost with them (flow_parts/checkpoint.hpp).
  void record_archived_offsets(const Job& job, bool checked) {
    if (!checked) {
      retry_.run([&] { flow::parts::record_archived_offsets(dirs_.checkpoint, job.parts); });
      return;
    }
    std::vector<flow::PositionRange> ranges;
    bool any = false;
    for (const auto& name : job.parts)
      if (const auto h = heads_.find(name); h != heads_.end() && h->second.has_entry) {
        ranges.insert(ranges.end(), h->second.ranges.begin(), h->second.ranges.end());
        any = true;
      }
    if (any) retry_.run([&] { flow::parts::record_archived_ranges(dirs_.checkpoint, ranges); });
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  flow::parts::DiskFullRetry retry_;
  Dirs dirs_;
  fs::path commits_dir_;
  std::string journal_file_;
  flow::Counter* archives_ = nullptr;
  flow::Counter* rows_archived_ = nullptr;
  flow::Counter* parts_merged_ = nullptr;
  std::chrono::system_clock::time_point last_merge_;
  // The parts to merge, in the sink's name order (run, cycle, window, file).
  std::set<std::pair<flow::parts::PartKey, std::string>> pending_;
  std::unordered_map<std::string, PartHead> heads_;  // of the parts checked for the current merge
  std::string head_buf_;  // the first bytes of a part, read by copy_trusted
  flow::Positions positions_;
  flow::parts::DirLock lock_;
};

}  // namespace

FLOW_PLUGIN(MergeArchive)
