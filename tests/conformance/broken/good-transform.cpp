// broken.good-transform: the well-behaved reference the broken plugins differ from; it must pass
// every conformance check (it forwards batches, positions and all).
#include "flow/flow.hpp"

namespace {
class GoodTransform : public flow::Processor {
 public:
  struct Options {
    int64_t batch_limit = 100;
  };
  static flow::PluginInfo info() {
    return {"broken.good-transform", "1.0.0", flow::StageKind::Transform, "Forwards batches unchanged (conformance reference)"};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("batch_limit", &Options::batch_limit, "An option with a range, for the config checks").range(1, 1000);
  }
  explicit GoodTransform(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace
FLOW_PLUGIN(GoodTransform)
