// stdin-source: lines of standard input as raw messages, so `kcat -C ... | flowctl run pipe.yaml`
// works. End of input ends the source, and with it the pipeline, cleanly (every stage drains).
// A pipe cannot be replayed, so positions (byte offsets of stdin) only feed the acked_lines
// counter; nothing is checkpointed.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "flow/flow.hpp"

namespace {

using Clock = std::chrono::steady_clock;

class StdinSource : public flow::Source {
 public:
  struct Options {
    std::string format = "lines";
    flow::ByteSize max_line_size{1u << 20};
    int64_t batch_size = 4096;
    flow::Duration batch_timeout{100};
  };

  static flow::PluginInfo info() {
    return {"stdin-source", "1.0.0", flow::StageKind::Source,
            "Reads lines of standard input as raw messages; end of input ends the pipeline"};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "format: lines\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("format", &Options::format,
          "lines: every line; json: JSON lines (blank lines skipped). value = the line without its newline and a "
          "trailing CR")
        .one_of({"lines", "json"});
    t.add("max_line_size", &Options::max_line_size,
          "Longer lines are skipped with a warning naming their byte offset (counted as oversize_lines)")
        .range(16, 1u << 30);
    t.add("batch_size", &Options::batch_size, "Most lines per emitted batch").range(1, 10'000'000);
    t.add("batch_timeout", &Options::batch_timeout,
          "A partial batch leaves after this long without input, so slow pipes still flow");
  }

  explicit StdinSource(Options o) : o_(std::move(o)) {}

  void open(flow::Context& ctx) override {
    lines_ = &ctx.counter("lines");
    acked_ = &ctx.counter("acked_lines");
    oversize_ = &ctx.counter("oversize_lines");
    invalid_ = &ctx.counter("invalid_utf8_lines");
    buf_.resize(1u << 20);
  }

  void run(flow::Context& ctx, flow::Emitter& out) override {
    ctx_ = &ctx;
    batch_ = flow::Batch(flow::raw_message_schema());
    batch_begin_ = 0;
    auto deadline = Clock::now() + o_.batch_timeout;
    while (!ctx.stop_requested()) {
      pollfd p{0, POLLIN, 0};
      const int ready = ::poll(&p, 1, 100);
      if (ready < 0 && errno != EINTR) throw std::runtime_error(std::string("cannot poll stdin: ") + std::strerror(errno));
      if (ready > 0) {
        const ssize_t n = ::read(0, buf_.data(), buf_.size());
        if (n < 0 && errno != EINTR && errno != EAGAIN)
          throw std::runtime_error(std::string("cannot read stdin: ") + std::strerror(errno));
        if (n == 0) {  // end of input
          if (partial_len_ > 0) line(partial_, offset_ + partial_len_, partial_len_);
          flush(out);
          ctx.log().info("end of standard input after " + std::to_string(lines_->value()) + " line(s)");
          return;
        }
        if (n > 0) {
          take(std::string_view(buf_.data(), static_cast<std::size_t>(n)));
          if (batch_.num_rows() >= static_cast<std::size_t>(o_.batch_size) && !flush(out)) return;
        }
      }
      if (Clock::now() >= deadline) {
        if (!flush(out)) return;
        deadline = Clock::now() + o_.batch_timeout;
      }
    }
    flush(out);
  }

 private:
  void take(std::string_view s) {
    const int64_t base = read_pos_;
    read_pos_ += static_cast<int64_t>(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
      const std::size_t nl = s.find('\n', i);
      if (nl == std::string_view::npos) {
        append_partial(s.substr(i));
        return;
      }
      const int64_t end = base + static_cast<int64_t>(nl) + 1;
      if (partial_len_ == 0) {
        line(s.substr(i, nl - i), end, static_cast<int64_t>(nl - i));
      } else {
        append_partial(s.substr(i, nl - i));
        line(partial_, end, partial_len_);
      }
      i = nl + 1;
    }
  }

  void append_partial(std::string_view s) {
    const auto cap = static_cast<std::size_t>(o_.max_line_size.bytes) + 1;
    if (partial_.size() < cap) partial_.append(s.substr(0, cap - partial_.size()));
    partial_len_ += static_cast<int64_t>(s.size());
  }

  void line(std::string_view text, int64_t end, int64_t len) {
    const int64_t begin = offset_;
    offset_ = end;
    if (len > static_cast<int64_t>(o_.max_line_size.bytes)) {
      oversize_->add();
      ctx_->log().warn("stdin byte " + std::to_string(begin) + ": line of " + std::to_string(len) +
                       " bytes is longer than max_line_size: skipped");
    } else {
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (!(o_.format == "json" && text.find_first_not_of(" \t") == std::string_view::npos)) {
        if (!simdjson::validate_utf8(text.data(), text.size())) {
          invalid_->add();
          ctx_->log().warn("stdin byte " + std::to_string(begin) + ": invalid UTF-8: skipped");
        } else {
          batch_.column(0).append_null();
          batch_.column(1).append_string(text);
          batch_.column(2).append_string("stdin");
          batch_.column(3).append_int64(0);
          batch_.column(4).append_int64(begin);
          batch_.column(5).append_null();
          lines_->add();
        }
      }
    }
    partial_.clear();
    partial_len_ = 0;
  }

  bool flush(flow::Emitter& out) {
    if (offset_ == batch_begin_) return true;
    const int64_t n = static_cast<int64_t>(batch_.num_rows());
    auto* acked = acked_;
    batch_.positions() = flow::Positions::track({{ctx_->stage_id(), 0, batch_begin_, offset_}},
                                                [acked, n](const std::vector<flow::PositionRange>&) { acked->add(n); });
    batch_begin_ = offset_;
    const bool ok = batch_.empty() ? (batch_.positions().ack(), true) : out.emit(std::move(batch_));
    batch_ = flow::Batch(flow::raw_message_schema());
    return ok;
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  std::vector<char> buf_;
  flow::Batch batch_;
  std::string partial_;
  int64_t partial_len_ = 0;
  int64_t read_pos_ = 0;     // bytes read
  int64_t offset_ = 0;       // start of the next line
  int64_t batch_begin_ = 0;  // offset of the batch's first line
  flow::Counter* lines_ = nullptr;
  flow::Counter* acked_ = nullptr;
  flow::Counter* oversize_ = nullptr;
  flow::Counter* invalid_ = nullptr;
};

}  // namespace

FLOW_PLUGIN(StdinSource)
