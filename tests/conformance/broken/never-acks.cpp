// broken.never-acks: a sink that drops every batch, positions and all, never acknowledging.
#include "flow/flow.hpp"

namespace {
class NeverAcks : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    flow::PluginInfo i{"broken.never-acks", "1.0.0", flow::StageKind::Sink, "A sink that never acknowledges"};
    i.main_output = false;
    return i;
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit NeverAcks(Options) {}
  void process(flow::Batch b, flow::Emitter&) override { rows_ += b.num_rows(); }

 private:
  std::size_t rows_ = 0;
};
}  // namespace
FLOW_PLUGIN(NeverAcks)
