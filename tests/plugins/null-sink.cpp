// test.null-sink: acknowledges and discards (for scheduler benchmarks).
#include "flow/flow.hpp"

namespace {
class NullSink : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {.name = "test.null-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Acknowledges and discards every batch",
            .main_output = false};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit NullSink(Options) {}
  void process(flow::Batch b, flow::Emitter&) override { b.positions().ack(); }
};
}  // namespace
FLOW_PLUGIN(NullSink)
