// test.kafka-record-sink: writes each raw message as "topic<TAB>partition<TAB>offset<TAB>key<TAB>value"
// (one line, flushed per batch) and acknowledges after the flush; optionally slow (delay per
// batch) to hold the pipeline under backpressure, or stopped until a gate file exists (a
// consumer held still, for the lag test). For the Kafka end-to-end tests.
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "flow/flow.hpp"

namespace {
class RecordSink : public flow::Processor {
 public:
  struct Options {
    std::string path;
    flow::Duration delay{0};
    std::string gate;
  };
  static flow::PluginInfo info() {
    return {.name = "test.kafka-record-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Writes raw messages to a file, one line each",
            .main_output = false};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("path", &Options::path, "Output file (appended to)").required();
    t.add("delay", &Options::delay, "Sleep per batch (a slow sink)");
    t.add("gate", &Options::gate, "Take no batch until this file exists (a stopped sink)");
  }
  explicit RecordSink(Options o) : o_(std::move(o)) {}
  void open(flow::Context&) override {
    f_ = std::fopen(o_.path.c_str(), "a");
    if (!f_) throw std::runtime_error("cannot open " + o_.path);
  }
  void process(flow::Batch b, flow::Emitter&) override {
    // A test fixture's wait for the test's go-ahead, not synchronisation inside the product.
    while (!o_.gate.empty() && !std::filesystem::exists(o_.gate))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (o_.delay.count() > 0) std::this_thread::sleep_for(o_.delay);
    for (std::size_t i = 0; i < b.num_rows(); ++i) {
      const auto topic = b.column("topic").string_at(i);
      const auto key = b.column("key").string_at(i);
      const auto value = b.column("value").string_at(i);
      std::fprintf(f_, "%.*s\t%lld\t%lld\t%.*s\t%.*s\n", static_cast<int>(topic.size()), topic.data(),
                   static_cast<long long>(b.column("partition").int64_at(i)),
                   static_cast<long long>(b.column("offset").int64_at(i)), static_cast<int>(key.size()), key.data(),
                   static_cast<int>(value.size()), value.data());
    }
    // In the kernel once flushed: survives kill -9 of this process, which is what the tests do.
    std::fflush(f_);
    b.positions().ack();
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
FLOW_PLUGIN(RecordSink)
