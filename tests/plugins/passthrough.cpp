// test.passthrough: forwards every batch unchanged (a trivial transform for scheduler tests).
#include "flow/flow.hpp"

namespace {
class Passthrough : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"test.passthrough", "1.0.0", flow::StageKind::Transform, "Forwards batches unchanged"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit Passthrough(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace
FLOW_PLUGIN(Passthrough)
