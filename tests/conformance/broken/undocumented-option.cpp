// broken.undocumented-option: declares an option with an empty doc.
#include "flow/flow.hpp"

namespace {
class Undocumented : public flow::Processor {
 public:
  struct Options {
    int64_t level = 1;
    bool verbose = false;
  };
  static flow::PluginInfo info() {
    return {"broken.undocumented-option", "1.0.0", flow::StageKind::Transform, "One of its options has no doc"};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("level", &Options::level, "A documented option").range(0, 9);
    t.add("verbose", &Options::verbose, "");
  }
  explicit Undocumented(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace
FLOW_PLUGIN(Undocumented)
