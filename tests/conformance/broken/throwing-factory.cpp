// broken.throwing-factory: its constructor throws, so every create() fails.
#include <stdexcept>

#include "flow/flow.hpp"

namespace {
class ThrowingFactory : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"broken.throwing-factory", "1.0.0", flow::StageKind::Transform, "Its constructor always throws"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit ThrowingFactory(Options) { throw std::runtime_error("broken on purpose: cannot reach the device"); }
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace
FLOW_PLUGIN(ThrowingFactory)
