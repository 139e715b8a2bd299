// broken.forwards-and-acks: acknowledges its input and forwards the rows anyway, so the source
// would commit records that no sink has made durable.
#include "flow/flow.hpp"

namespace {
class ForwardsAndAcks : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"broken.forwards-and-acks", "1.0.0", flow::StageKind::Transform, "Acknowledges what it forwards"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit ForwardsAndAcks(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override {
    flow::Batch copy = b.clone();
    copy.positions().ack();
    b.positions().ack();
    out.emit(std::move(copy));
  }
};
}  // namespace
FLOW_PLUGIN(ForwardsAndAcks)
