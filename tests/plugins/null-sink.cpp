// test.null-sink: acknowledges and discards (for scheduler benchmarks).
#include "flow/flow.hpp"

namespace {
class NullSink : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    flow::PluginInfo i{"test.null-sink", "1.0.0", flow::StageKind::Sink, "Acknowledges and discards every batch"};
    i.main_output = false;
    return i;
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit NullSink(Options) {}
  void process(flow::Batch b, flow::Emitter&) override { b.positions().ack(); }
};
}  // namespace
FLOW_PLUGIN(NullSink)
