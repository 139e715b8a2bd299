// broken.hangs-on-large: process() never returns for a batch of more than 10,000 rows.
#include <thread>

#include "flow/flow.hpp"

namespace {
class HangsOnLarge : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"broken.hangs-on-large", "1.0.0", flow::StageKind::Transform, "Hangs on large batches"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit HangsOnLarge(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override {
    while (b.num_rows() > 10'000) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    out.emit(std::move(b));
  }
};
}  // namespace
FLOW_PLUGIN(HangsOnLarge)
