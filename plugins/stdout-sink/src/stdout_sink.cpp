// stdout-sink: writes records to standard output as JSON lines or CSV, so `flowctl run ... | jq`
// works. Positions are acknowledged once their records were written to the pipe or file. When the
// reader goes away (EPIPE, `| head -1`), the stage fails with a message saying so: the run ends
// with exit code 1 and the records not written stay unacknowledged.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

#include "flow/durable_io.hpp"
#include "flow/flow.hpp"

namespace {

void append_int(std::string& out, int64_t v) {
  char b[24];
  auto [p, ec] = std::to_chars(b, b + sizeof b, v);
  (void)ec;
  out.append(b, p);
}

void append_double(std::string& out, double v, bool json) {
  if (!std::isfinite(v)) {  // JSON has no NaN or infinity
    out += json ? "null" : (std::isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"));
    return;
  }
  char b[32];
  auto [p, ec] = std::to_chars(b, b + sizeof b, v);
  (void)ec;
  out.append(b, p);
}

// "2025-06-15T09:12:01.123456Z" (RFC 3339, UTC, microseconds when not whole seconds).
void append_timestamp(std::string& out, int64_t micros) {
  int64_t secs = micros / 1'000'000, frac = micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[48];
  std::size_t n = std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac) n += static_cast<std::size_t>(std::snprintf(b + n, sizeof b - n, ".%06lld", static_cast<long long>(frac)));
  b[n++] = 'Z';
  out.append(b, n);
}

void append_csv_string(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (const char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

class StdoutSink : public flow::Processor {
 public:
  struct Options {
    std::string format = "json";
    bool header = true;
    flow::ByteSize buffer{64u << 10};
  };

  static flow::PluginInfo info() {
    return {.name = "stdout-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Writes records to standard output as JSON lines or CSV; a closed reader (EPIPE) ends the run",
            .main_output = false};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "format: json\n"; }
  // Its conformance input: it takes rows of any schema, so rows of every column type.
  static flow::Batch sample_input(const Options&, const flow::SampleRequest& r) { return flow::sample_rows_of_every_type(r); }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("format", &Options::format,
          "json: one object per line (timestamps RFC 3339 UTC, NaN/inf as null); csv: RFC 4180 with a header row")
        .one_of({"json", "csv"});
    t.add("header", &Options::header, "csv: write the header row (again whenever the input schema changes)");
    t.add("buffer", &Options::buffer, "Output is written in chunks of about this size, and after every batch")
        .range(1, 1u << 30);
  }

  explicit StdoutSink(Options o) : o_(std::move(o)) {}

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    records_ = &ctx.counter("records_written");
    out_.reserve(static_cast<std::size_t>(o_.buffer.bytes) + 4096);
  }

  void process(flow::Batch batch, flow::Emitter&) override {
    if (!batch.empty()) {
      const flow::Schema& schema = *batch.schema();
      if (!schema_ || *schema_ != schema) {
        schema_ = batch.schema();
        names_.clear();
        for (const auto& f : schema.fields()) {
          std::string n;
          flow::io::append_json_string(n, f.name);
          names_.push_back(n + ":");
        }
        if (o_.format == "csv" && o_.header) {
          for (std::size_t c = 0; c < schema.size(); ++c) {
            if (c) out_.push_back(',');
            append_csv_string(out_, schema.field(c).name);
          }
          out_.push_back('\n');
        }
      }
      for (std::size_t r = 0; r < batch.num_rows(); ++r) {
        if (o_.format == "json") json_row(batch, r);
        else csv_row(batch, r);
        if (out_.size() >= o_.buffer.bytes) write_out();
      }
      write_out();
      records_->add(batch.num_rows());
    }
    batch.positions().ack();  // written to the pipe: as far as this sink can deliver them
  }

 private:
  void json_row(const flow::Batch& b, std::size_t r) {
    out_.push_back('{');
    for (std::size_t c = 0; c < b.num_columns(); ++c) {
      if (c) out_.push_back(',');
      out_ += names_[c];
      const flow::Column& col = b.column(c);
      if (col.is_null(r)) {
        out_ += "null";
        continue;
      }
      switch (col.type()) {
        case flow::Type::Int64: append_int(out_, col.int64_at(r)); break;
        case flow::Type::Float64: append_double(out_, col.double_at(r), true); break;
        case flow::Type::Bool: out_ += col.bool_at(r) ? "true" : "false"; break;
        case flow::Type::String: flow::io::append_json_string(out_, col.string_at(r)); break;
        case flow::Type::Timestamp:
          out_.push_back('"');
          append_timestamp(out_, col.timestamp_at(r));
          out_.push_back('"');
          break;
      }
    }
    out_ += "}\n";
  }

  void csv_row(const flow::Batch& b, std::size_t r) {
    for (std::size_t c = 0; c < b.num_columns(); ++c) {
      if (c) out_.push_back(',');
      const flow::Column& col = b.column(c);
      if (col.is_null(r)) continue;
      switch (col.type()) {
        case flow::Type::Int64: append_int(out_, col.int64_at(r)); break;
        case flow::Type::Float64: append_double(out_, col.double_at(r), false); break;
        case flow::Type::Bool: out_ += col.bool_at(r) ? "true" : "false"; break;
        case flow::Type::String: append_csv_string(out_, col.string_at(r)); break;
        case flow::Type::Timestamp: append_timestamp(out_, col.timestamp_at(r)); break;
      }
    }
    out_.push_back('\n');
  }

  // Writes the buffer to fd 1. SIGPIPE is blocked on this thread meanwhile (a write to a closed
  // pipe raises it on the writing thread), so a vanished reader is an EPIPE error we can report,
  // not a silent death of the whole process.
  void write_out() {
    if (out_.empty()) return;
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    const char* p = out_.data();
    std::size_t left = out_.size();
    int err = 0;
    while (left > 0) {
      const ssize_t n = ::write(1, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {  // a non-blocking stdout inherited from the shell
          pollfd pf{1, POLLOUT, 0};
          ::poll(&pf, 1, 100);
          continue;
        }
        err = errno;
        break;
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    if (err == EPIPE) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
      }  // the pending SIGPIPE of this write, consumed before unblocking
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    out_.clear();
    if (err == EPIPE)
      throw std::runtime_error("stdout was closed by its reader (EPIPE) after " +
                               std::to_string(records_->value()) +
                               " record(s); records not written were not acknowledged");
    if (err) throw std::runtime_error(std::string("cannot write to stdout: ") + std::strerror(err));
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  flow::Counter* records_ = nullptr;
  flow::SchemaPtr schema_;
  std::vector<std::string> names_;
  std::string out_;
};

}  // namespace

FLOW_PLUGIN(StdoutSink)
