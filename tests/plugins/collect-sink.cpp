// test.collect-sink: appends column `n` of every row to a file (one number per line, fsynced at
// finish) and acknowledges; optionally slow, to exercise backpressure.
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <thread>

#include "flow/flow.hpp"

namespace {
class CollectSink : public flow::Processor {
 public:
  struct Options {
    std::string path;
    std::string column = "n";
    flow::Duration delay{0};  // per batch
    bool ack = true;
  };
  static flow::PluginInfo info() {
    return {.name = "test.collect-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Writes column n to a file, one per line",
            .main_output = false};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("path", &Options::path, "Output file").required();
    t.add("column", &Options::column, "The int64 column to write");
    t.add("delay", &Options::delay, "Sleep per batch (a slow sink)");
    t.add("ack", &Options::ack, "Acknowledge positions after writing");
  }
  static std::vector<flow::ColumnSpec> input_columns(const Options& o) { return {{o.column, flow::Type::Int64}}; }
  explicit CollectSink(Options o) : o_(std::move(o)) {}
  void open(flow::Context&) override {
    f_ = std::fopen(o_.path.c_str(), "a");
    if (!f_) throw std::runtime_error("cannot open " + o_.path);
  }
  void process(flow::Batch b, flow::Emitter&) override {
    if (o_.delay.count() > 0) std::this_thread::sleep_for(o_.delay);
    const auto& col = b.column(o_.column);
    for (std::size_t i = 0; i < b.num_rows(); ++i) std::fprintf(f_, "%lld\n", static_cast<long long>(col.int64_at(i)));
    // Flushed per batch so that a test killing the process sees everything acknowledged.
    std::fflush(f_);
    if (o_.ack) b.positions().ack();
  }
  void finish(flow::Emitter&) override {
    std::fflush(f_);
    fsync(fileno(f_));
  }
  void close() override {
    if (f_) std::fclose(f_);
    f_ = nullptr;
  }

 private:
  Options o_;
  std::FILE* f_ = nullptr;
};
}  // namespace
FLOW_PLUGIN(CollectSink)
