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
#include "flow/flow.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFlushBytes = 8u << 20;  // write the part in chunks of about this size

int64_t to_micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<std::size_t>(width) - s.size(), '0');
  return s;
}

std::string iso_utc(int64_t micros) {
  std::string out;
  flow_csv::TimestampFormatter f("%Y-%m-%dT%H:%M:%SZ");
  f.append(out, micros);
  return out;
}

// Sorted, with touching or overlapping ranges of one partition joined; gaps stay visible.
std::vector<flow::PositionRange> coalesce(std::vector<flow::PositionRange> r) {
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) {
    if (a.source != b.source) return a.source < b.source;
    if (a.partition != b.partition) return a.partition < b.partition;
    return a.begin < b.begin;
  });
  std::vector<flow::PositionRange> out;
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
  };

  static flow::PluginInfo info() {
    return {"csv-window-sink", "1.0.0", flow::StageKind::Sink,
            "Writes records in time windows to durable CSV part files and emits a file event per part",
            {}, true};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "path: ${TMPDIR}/parts\nwindow: 10s\n"; }

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
    if (o_.path.empty()) throw std::runtime_error("option 'path' is empty");
    dir_ = fs::absolute(o_.path).lexically_normal();
    if (dir_.filename().empty()) dir_ = dir_.parent_path();
    const fs::path ckpt = o_.checkpoint_dir.empty() ? dir_ / "_checkpoint" : fs::absolute(o_.checkpoint_dir);
    commits_dir_ = ckpt.lexically_normal() / "commits";
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create directory '" + dir_.string() + "': " + ec.message());
    fs::create_directories(commits_dir_, ec);
    if (ec) throw std::runtime_error("cannot create directory '" + commits_dir_.string() + "': " + ec.message());

    rows_written_ = &ctx.counter("rows_written");
    parts_written_ = &ctx.counter("parts_written");
    bytes_written_ = &ctx.counter("bytes_written");

    remove_leftover_tmp(dir_);
    remove_leftover_tmp(commits_dir_);

    // Continue the window numbering of this run and cycle, so a restarted stage never reuses
    // a committed part's name; and report parts whose manifest entry is missing.
    const std::string own = o_.prefix + "-" + ctx.run_id() + "-c" + pad(ctx.cycle(), 4) + "-";
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.empty() || name.front() == '.' || !name.ends_with(".csv")) continue;
      if (name.starts_with(own)) {
        int64_t seq = 0;
        const char* b = name.data() + own.size();
        auto [p, perr] = std::from_chars(b, name.data() + name.size(), seq);
        if (perr == std::errc() && p != b) window_seq_ = std::max(window_seq_, seq + 1);
      }
      if (name.starts_with(o_.prefix + "-") && !fs::exists(commits_dir_ / manifest_name(name)))
        ctx.log().warn("part '" + name +
                       "' has no checkpoint manifest entry (a crash came between its rename and its entry); "
                       "its positions were never acknowledged, so a replaying source may deliver its records again");
    }
  }

  std::chrono::milliseconds timer_interval() const override {
    return std::min<std::chrono::milliseconds>(o_.window, std::chrono::milliseconds(200));
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
    if (!window_open_) open_window(now);
    if (part_open_ && *schema_ != *batch.schema()) {
      ctx_->log().warn("input schema changed within a window; starting a new part file");
      commit_part(out);
    }
    const auto ranges = batch.positions().ranges();
    const std::size_t n = batch.num_rows();
    const std::size_t max_rows = static_cast<std::size_t>(o_.max_rows);
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
      for (; row < end; ++row) {
        flow_csv::append_row(buffer_, batch, row, ts_, cells_);
        if (buffer_.size() >= kFlushBytes) flush_buffer();
      }
      rows_ += take;
    }
    positions_.append(std::move(batch.positions()));
  }

  void on_timer(flow::Emitter& out) override {
    if (window_open_ && to_micros(ctx_->now()) >= window_end_) close_window(out);
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
  }

 private:
  static std::string manifest_name(const std::string& part) {
    return part.substr(0, part.size() - 4) + ".json";  // without ".csv"
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
    name_ = o_.prefix + "-" + ctx_->run_id() + "-c" + pad(ctx_->cycle(), 4) + "-" + pad(window_seq_, 6) + "-" +
            pad(file_seq_, 4) + ".csv";
    tmp_path_ = dir_ / ("." + name_ + ".tmp");
    buffer_.clear();
    buffer_.reserve(kFlushBytes + (64u << 10));
    buffer_ += header_;
    buffer_.push_back('\n');
    rows_ = 0;
    flushed_ = 0;
    ranges_.clear();
    part_open_ = true;
  }

  void append_ranges(const std::vector<flow::PositionRange>& r) { ranges_.insert(ranges_.end(), r.begin(), r.end()); }

  void flush_buffer() {
    if (fd_ < 0) {
      fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd_ < 0) flow::io::throw_errno("cannot create", tmp_path_);
    }
    flow::io::write_all(fd_, buffer_, tmp_path_);
    flushed_ += buffer_.size();
    buffer_.clear();
  }

  void commit_part(flow::Emitter& out) {
    if (!part_open_) return;
    part_open_ = false;
    flush_buffer();
    if (o_.fsync) flow::io::fsync_fd(fd_, tmp_path_);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) flow::io::throw_errno("cannot close", tmp_path_);
    const fs::path final_path = dir_ / name_;
    flow::io::rename_file(tmp_path_, final_path);
    if (o_.fsync) flow::io::fsync_dir(dir_);

    write_manifest();
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
    std::string j;
    j.reserve(512);
    j += "{\"version\":1,\"part\":";
    flow::io::append_json_string(j, name_);
    j += ",\"rows\":" + std::to_string(rows_) + ",\"bytes\":" + std::to_string(flushed_);
    j += ",\"window_start_us\":" + std::to_string(window_start_) + ",\"window_end_us\":" + std::to_string(window_end_);
    j += ",\"window_start\":\"" + iso_utc(window_start_) + "\",\"window_end\":\"" + iso_utc(window_end_) + "\"";
    j += ",\"run_id\":";
    flow::io::append_json_string(j, ctx_->run_id());
    j += ",\"cycle\":" + std::to_string(ctx_->cycle()) + ",\"window_seq\":" + std::to_string(window_seq_) +
         ",\"file_seq\":" + std::to_string(file_seq_) + ",\"header\":";
    flow::io::append_json_string(j, header_);
    j += ",\"ranges\":[";
    bool first = true;
    for (const auto& r : coalesce(std::move(ranges_))) {
      if (!first) j += ",";
      first = false;
      j += "{\"source\":";
      flow::io::append_json_string(j, r.source);
      j += ",\"partition\":" + std::to_string(r.partition) + ",\"begin\":" + std::to_string(r.begin) +
           ",\"end\":" + std::to_string(r.end) + "}";
    }
    j += "]}\n";
    ranges_.clear();
    flow::io::atomic_write_file(commits_dir_, manifest_name(name_), j, o_.fsync);
  }

  Options o_;
  flow_csv::TimestampFormatter ts_;
  flow_csv::CellOptions cells_;
  flow::Context* ctx_ = nullptr;
  fs::path dir_, commits_dir_;
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
  std::string buffer_;
  int fd_ = -1;
  std::size_t rows_ = 0, flushed_ = 0;
  std::vector<flow::PositionRange> ranges_;
  flow::Positions positions_;
};

}  // namespace

FLOW_PLUGIN(CsvWindowSink)
