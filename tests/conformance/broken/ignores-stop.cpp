// broken.ignores-stop: a source whose run() never looks at the stop token.
#include <thread>

#include "flow/flow.hpp"

namespace {
class IgnoresStop : public flow::Source {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"broken.ignores-stop", "1.0.0", flow::StageKind::Source, "A source that never returns from run()"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit IgnoresStop(Options) {}
  void run(flow::Context&, flow::Emitter&) override {
    for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
};
}  // namespace
FLOW_PLUGIN(IgnoresStop)
