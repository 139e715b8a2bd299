// csv-window-sink: collects records into time windows and writes each window as CSV part files,
// durably (temporary name, fsync, rename, directory fsync), then records the part and the input
// positions it covers in a checkpoint manifest, acknowledges those positions and emits a file
// event. A part is visible under its final name only once it is complete.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "csv_format.hpp"
#include "flow/durable_io.hpp"
#include "flow/delivery.hpp"
#include "flow/flow.hpp"
#include "flow_parts/checkpoint.hpp"
#include "flow_parts/disk_retry.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFlushBytes = 8u << 20;  // write the part in chunks of about this size

int64_t to_micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

using flow::parts::manifest_name;

class CsvWindowSink : public flow::Processor {
 public:
  struct Options {
    std::string path;
    std::string checkpoint_dir;
    flow::Duration window{5000};
    int64_t max_rows = 0;
    std::string prefix = "part";
    std::string timestamp_format = "%Y-%m-%d %H:%M:%S";
    bool escape_formulas = false;
    bool fsync = true;
    int64_t float_precision = -1;
    int64_t disk_full_retries = 10;
    flow::Duration disk_full_retry_interval{1000};
  };

  static flow::PluginInfo info() {
    return {.name = "csv-window-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Writes records in time windows to durable CSV part files and emits a file event per part",
            .main_output = true,
            .durable_positions = true};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "path: ${TMPDIR}/parts\nwindow: 10s\n"; }
  // Its conformance input: it takes rows of any schema, so rows of every column type.
  static flow::Batch sample_input(const Options&, const flow::SampleRequest& r) { return flow::sample_rows_of_every_type(r); }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("path", &Options::path, "Directory of the part files (created if missing)").required();
    t.add("checkpoint_dir", &Options::checkpoint_dir,
          "Directory of the commit manifest; empty = _checkpoint inside path");
    t.add("window", &Options::window, "Length of a window; each window's records go to its own part files")
        .min(0.001);
    t.add("max_rows", &Options::max_rows, "Most rows per part file; 0 = no limit").min(0);
    t.add("prefix", &Options::prefix, "First part of every part file name");
    t.add("timestamp_format", &Options::timestamp_format, "strftime format of timestamp cells (UTC)");
    t.add("escape_formulas", &Options::escape_formulas,
          "Prefix string cells starting with = + - @ tab or CR with a single quote (CSV injection)");
    t.add("fsync", &Options::fsync, "fsync part files and directories (turn off only for benchmarks)");
    t.add("float_precision", &Options::float_precision,
          "Decimals of float cells, rounded (2: 20.32); -1 = shortest text that reads back exactly")
        .range(-1, 17);
    t.add("disk_full_retries", &Options::disk_full_retries, flow::parts::kDiskFullRetriesDoc).min(0);
    t.add("disk_full_retry_interval", &Options::disk_full_retry_interval, flow::parts::kDiskFullRetryIntervalDoc)
        .min(0.001);
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    auto where = [&](const char* key) {
      const flow::Value* v = config.find(key);
      return v ? v->location() : config.location();
    };
    if (o.path.empty()) errors.push_back({where("path"), "option 'path': must not be empty"});
    if (o.prefix.empty() || o.prefix.find('/') != std::string::npos || o.prefix.front() == '.')
      errors.push_back({where("prefix"), "option 'prefix': '" + o.prefix +
                                             "' must be non-empty, without '/', and not start with '.'"});
    if (o.timestamp_format.empty())
      errors.push_back({where("timestamp_format"), "option 'timestamp_format': must not be empty"});
  }

  explicit CsvWindowSink(Options o) : o_(std::move(o)), ts_(o_.timestamp_format) {
    cells_.escape_formulas = o_.escape_formulas;
    cells_.float_precision = static_cast<int>(o_.float_precision);
  }

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    retry_ = flow::parts::DiskFullRetry(ctx.log(), ctx.stop_token(), ctx.stage_id(), o_.disk_full_retries,
                                        o_.disk_full_retry_interval);
    if (o_.path.empty()) throw std::runtime_error("option 'path' is empty");
    dir_ = fs::absolute(o_.path).lexically_normal();
    if (dir_.filename().empty()) dir_ = dir_.parent_path();
    const fs::path ckpt = o_.checkpoint_dir.empty() ? dir_ / "_checkpoint" : fs::absolute(o_.checkpoint_dir);
    ckpt_dir_ = ckpt.lexically_normal();
    commits_dir_ = flow::parts::commits_dir(ckpt_dir_);
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create directory '" + dir_.string() + "': " + ec.message());
    fs::create_directories(commits_dir_, ec);
    if (ec) throw std::runtime_error("cannot create directory '" + commits_dir_.string() + "': " + ec.message());
    for (const auto& [d, what] : {std::pair{dir_, "output"}, std::pair{commits_dir_, "checkpoint"}}) flow::io::check_writable_dir(d, what);

    // One writer per directory: a second run would take over this one's parts.
    const std::string holder = flow::parts::holder_text(ctx.run_id(), ctx.stage_id());
    locks_.emplace_back(dir_, holder);
    if (!flow::parts::DirLock::same_dir(ckpt_dir_, dir_)) locks_.emplace_back(ckpt_dir_, holder);

    rows_written_ = &ctx.counter("rows_written");
    skipped_ = &ctx.counter("replayed_records_skipped");
    rewritten_ = &ctx.counter("replayed_records_rewritten");
    parts_written_ = &ctx.counter("parts_written");
    bytes_written_ = &ctx.counter("bytes_written");

    remove_leftover_tmp(dir_);
    remove_leftover_tmp(commits_dir_);

    // Continue the window numbering of this run and cycle, so a restarted stage never reuses a
    // committed part's name. A part without its manifest entry is not committed (a crash came
    // between its rename and its entry; its positions were never acknowledged): remove it, its
    // records are delivered again.
    const std::string own = flow::parts::part_stem(o_.prefix, ctx.run_id(), ctx.cycle());
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || !name.starts_with(o_.prefix + "-") || !flow::parts::parse_part_name(name)) continue;
      if (!fs::exists(commits_dir_ / manifest_name(name))) {
        std::error_code ec;
        fs::remove(e.path(), ec);
        if (ec) throw std::runtime_error("cannot remove uncommitted part '" + e.path().string() + "': " + ec.message());
        ctx.log().warn("removed part '" + name +
                       "': it has no manifest entry (a crash came between its rename and its entry), so it was never "
                       "committed; its records are delivered again");
        continue;
      }
      if (name.starts_with(own)) {
        int64_t seq = 0;
        const char* b = name.data() + own.size();
        auto [p, perr] = std::from_chars(b, name.data() + name.size(), seq);
        if (perr == std::errc() && p != b) window_seq_ = std::max(window_seq_, seq + 1);
      }
    }
    if (o_.fsync) flow::io::fsync_dir(dir_);

    // What is committed, from the durable checkpoint only: a replaying source resumes from it
    // and this stage skips the batches it already holds (flow/delivery.hpp).
    registry_ = ctx.shared<flow::DeliveryRegistry>(flow::kDeliveryKey, [] { return std::make_shared<flow::DeliveryRegistry>(); });
    for (const auto& [src, sinks] : registry_->all_sinks())
      for (const auto& s : sinks) exactly_once_ = exactly_once_ || s.id == ctx.stage_id();
    committed_ = flow::parts::committed_ends(ckpt_dir_);
    registry_->publish(ctx.stage_id(), committed_);
  }

  // A window is committed at most about a hundredth of its length after its end (10 ms for 1 s
  // windows): the rows that came first wait the window plus this, never a batch's arrival.
  std::chrono::milliseconds timer_interval() const override {
    using ms = std::chrono::milliseconds;
    return std::min<ms>(o_.window, std::clamp<ms>(std::chrono::duration_cast<ms>(o_.window) / 100, ms(5), ms(200)));
  }

  void process(flow::Batch batch, flow::Emitter& out) override {
    const int64_t now = to_micros(ctx_->now());
    if (window_open_ && now >= window_end_) close_window(out);
    if (batch.empty()) {
      // Nothing to write: the positions ride with the open part (and its manifest), or are done.
      if (part_open_) {
        append_ranges(batch.positions().ranges());
        positions_.append(std::move(batch.positions()));
      } else {
        batch.positions().ack();
      }
      return;
    }
    if (already_committed(batch)) {
      skipped_->add(batch.num_rows());
      batch.positions().ack();
      return;
    }
    if (!window_open_) open_window(now);
    // Exactly-once: a part holds whole batches, so its manifest entry's ranges say exactly which
    // records it holds; max_rows is then honoured at the next batch boundary.
    if (exactly_once_ && part_open_ && o_.max_rows > 0 && rows_ >= static_cast<std::size_t>(o_.max_rows))
      commit_part(out);
    if (part_open_ && *schema_ != *batch.schema()) {
      ctx_->log().warn("input schema changed within a window; starting a new part file");
      commit_part(out);
    }
    const auto ranges = batch.positions().ranges();
    const std::size_t n = batch.num_rows();
    const std::size_t max_rows = exactly_once_ ? 0 : static_cast<std::size_t>(o_.max_rows);
    std::size_t row = 0;
    while (row < n) {
      if (part_open_ && max_rows > 0 && rows_ >= max_rows) commit_part(out);
      if (!part_open_) begin_part(batch.schema());
      std::size_t take = n - row;
      if (max_rows > 0) take = std::min(take, max_rows - rows_);
      // A batch split over several parts is listed in each part's manifest entry; its positions
      // are acknowledged with the last of them.
      append_ranges(ranges);
      const std::size_t end = row + take;
      flow_csv::append_rows(buffer_, batch, row, end, ts_, cells_);
      row = end;
      if (buffer_.size() >= kFlushBytes) flush_buffer();
      rows_ += take;
    }
    positions_.append(std::move(batch.positions()));
    if (registry_->flush_active()) commit_part(out);
  }

  void on_timer(flow::Emitter& out) override {
    if (window_open_ && to_micros(ctx_->now()) >= window_end_) close_window(out);
    else if (registry_->flush_active()) commit_part(out);  // a source gives partitions away
  }

  void finish(flow::Emitter& out) override {
    if (window_open_) close_window(out);
  }

  void close() override {
    // A part that was not committed (the pipeline failed): its positions are forgotten and its
    // temporary file removed; the next open() would remove it too.
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_path_.c_str());
    }
    locks_.clear();
  }

 private:
  // A replayed batch this sink already committed: every range ends at or below the committed
  // end of its partition. The source cuts replayed batches at each sink's end, so a batch is
  // either all committed or all new; one straddling an end (a sink the source did not know
  // about) is written, and counted as possibly duplicated.
  bool already_committed(const flow::Batch& batch) {
    const auto ranges = batch.positions().ranges();
    if (ranges.empty() || committed_.empty()) return false;
    std::size_t old = 0;
    for (const auto& r : ranges) {
      if (!registry_->replayable(r.source)) return false;  // not a source that resumes from here
      auto it = committed_.find({r.source, r.partition});
      if (it != committed_.end() && r.end <= it->second) ++old;
      else if (it != committed_.end() && r.begin < it->second) {
        rewritten_->add(batch.num_rows());
        registry_->add_rewritten(batch.num_rows());
        ctx_->log().warn("a replayed batch straddles the committed end of " + r.source + "[" +
                         std::to_string(r.partition) + "] (" + std::to_string(it->second) +
                         "): written again, possibly duplicated");
        return false;
      }
    }
    if (old == ranges.size()) return true;
    if (old > 0) {
      rewritten_->add(batch.num_rows());
      registry_->add_rewritten(batch.num_rows());
      ctx_->log().warn("a replayed batch mixes committed and new partitions: written again, possibly duplicated");
    }
    return false;
  }

  void remove_leftover_tmp(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name.starts_with(".") && name.ends_with(".tmp")) {
        std::error_code ec;
        fs::remove(e.path(), ec);
        ctx_->log().info("removed uncommitted temporary file '" + e.path().string() + "'" +
                         (ec ? " (failed: " + ec.message() + ")" : std::string()));
      }
    }
  }

  void open_window(int64_t now) {
    const int64_t w = std::chrono::duration_cast<std::chrono::microseconds>(o_.window).count();
    int64_t start = now / w * w;
    if (start > now) start -= w;  // floor for times before 1970
    window_start_ = start;
    window_end_ = start + w;
    window_open_ = true;
    file_seq_ = 0;
  }

  void close_window(flow::Emitter& out) {
    if (part_open_) commit_part(out);
    if (file_seq_ > 0) ++window_seq_;
    window_open_ = false;
  }

  void begin_part(const flow::SchemaPtr& schema) {
    schema_ = schema;
    header_ = flow_csv::header_line(*schema_);
    name_ = flow::parts::part_name(o_.prefix, ctx_->run_id(), ctx_->cycle(), window_seq_, file_seq_);
    tmp_path_ = dir_ / flow::parts::tmp_name(name_);
    buffer_.clear();
    buffer_.reserve(kFlushBytes + (64u << 10));
    buffer_.insert(buffer_.end(), header_.begin(), header_.end());
    buffer_.push_back('\n');
    rows_ = 0;
    flushed_ = 0;
    ranges_.clear();
    part_open_ = true;
  }

  void append_ranges(const std::vector<flow::PositionRange>& r) { ranges_.insert(ranges_.end(), r.begin(), r.end()); }

  // On a full disk the buffer is kept and written again after what the failed write left is cut
  // off, so the part holds each byte once.
  void flush_buffer() {
    retry_.run(
        [&] {
          if (fd_ < 0) {
            fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd_ < 0) flow::io::throw_errno("cannot create", tmp_path_);
          }
          flow::io::write_all(fd_, std::string_view(buffer_.data(), buffer_.size()), tmp_path_);
          // The disk starts on these bytes now, so the fsync at commit waits only for the last
          // chunk (a 320 MB part's fsync took 0.17 s). Only a hint: a failure shows in that fsync.
          if (o_.fsync)
            (void)::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(buffer_.size()),
                                    SYNC_FILE_RANGE_WRITE);
        },
        [&] {
          const auto at = static_cast<off_t>(flushed_);
          if (fd_ >= 0 && (::ftruncate(fd_, at) != 0 || ::lseek(fd_, at, SEEK_SET) != at))
            flow::io::throw_errno("cannot truncate", tmp_path_);
        });
    flushed_ += buffer_.size();
    buffer_.clear();
  }

  void commit_part(flow::Emitter& out) {
    if (!part_open_) return;
    part_open_ = false;
    flush_buffer();
    // Not retried: after a failed fsync the written pages may be lost, and they are no longer
    // in memory (the run fails; a restart writes the part again).
    if (o_.fsync) flow::io::fsync_fd(fd_, tmp_path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) flow::io::throw_errno("cannot close", tmp_path_);
    const fs::path final_path = dir_ / name_;
    retry_.run([&] { flow::io::rename_file(tmp_path_, final_path); });
    if (o_.fsync) retry_.run([&] { flow::io::fsync_dir(dir_); });
    flow::parts::crash_point("FLOW_CSV_WINDOW_SINK_CRASH_AT", "part-renamed");

    write_manifest();
    flow::parts::crash_point("FLOW_CSV_WINDOW_SINK_CRASH_AT", "manifest-written");
    ++file_seq_;
    rows_written_->add(rows_);
    parts_written_->add();
    bytes_written_->add(flushed_);

    // Durable and recorded: only now may the sources consider these records delivered.
    positions_.ack();

    flow::Batch ev(flow::file_event_schema());
    ev.column(0).append_string(final_path.string());
    ev.column(1).append_int64(static_cast<int64_t>(rows_));
    ev.column(2).append_int64(static_cast<int64_t>(flushed_));
    ev.column(3).append_timestamp(window_start_);
    ev.column(4).append_timestamp(window_end_);
    ev.column(5).append_string(header_);
    out.emit(std::move(ev));
  }

  void write_manifest() {
    flow::parts::Manifest m;
    m.part = name_;
    m.rows = rows_;
    m.bytes = flushed_;
    m.window_start_us = window_start_;
    m.window_end_us = window_end_;
    m.run_id = ctx_->run_id();
    m.cycle = ctx_->cycle();
    m.window_seq = window_seq_;
    m.file_seq = file_seq_;
    m.header = header_;
    m.ranges = flow::parts::coalesce(std::move(ranges_));
    ranges_.clear();
    retry_.run([&] { flow::parts::write_manifest(commits_dir_, m, o_.fsync); });
    // Committed: from now on a replay of these positions is skipped.
    for (const auto& r : m.ranges) {
      auto [it, inserted] = committed_.emplace(flow::DeliveryRegistry::Key{r.source, r.partition}, r.end);
      if (!inserted) it->second = std::max(it->second, r.end);
    }
    registry_->advance(ctx_->stage_id(), m.ranges);
  }

  Options o_;
  flow_csv::TimestampFormatter ts_;
  flow_csv::CellOptions cells_;
  flow::Context* ctx_ = nullptr;
  flow::parts::DiskFullRetry retry_;
  fs::path dir_, ckpt_dir_, commits_dir_;
  std::vector<flow::parts::DirLock> locks_;
  std::shared_ptr<flow::DeliveryRegistry> registry_;
  bool exactly_once_ = false;  // a replaying source feeds this stage (parts hold whole batches)
  flow::DeliveryRegistry::Ends committed_;
  flow::Counter* skipped_ = nullptr;
  flow::Counter* rewritten_ = nullptr;
  flow::Counter* rows_written_ = nullptr;
  flow::Counter* parts_written_ = nullptr;
  flow::Counter* bytes_written_ = nullptr;

  // The window being filled.
  bool window_open_ = false;
  int64_t window_start_ = 0, window_end_ = 0;  // microseconds
  int64_t window_seq_ = 0, file_seq_ = 0;

  // The part being filled.
  bool part_open_ = false;
  flow::SchemaPtr schema_;
  std::string header_, name_;
  fs::path tmp_path_;
  flow_csv::TextBuffer buffer_;
  int fd_ = -1;
  std::size_t rows_ = 0, flushed_ = 0;
  std::vector<flow::PositionRange> ranges_;
  flow::Positions positions_;
};

}  // namespace

FLOW_PLUGIN(CsvWindowSink)
