// broken.never-acks: a sink that drops every batch, positions and all, never acknowledging.
#include "flow/flow.hpp"

namespace {
class NeverAcks : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {.name = "broken.never-acks", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "A sink that never acknowledges",
            .main_output = false};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit NeverAcks(Options) {}
  void process(flow::Batch b, flow::Emitter&) override { rows_ += b.num_rows(); }

 private:
  std::size_t rows_ = 0;
};
}  // namespace
FLOW_PLUGIN(NeverAcks)
