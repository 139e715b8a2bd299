// broken.bad-default: the default of `batch_size` lies outside its declared range.
#include "flow/flow.hpp"

namespace {
class BadDefault : public flow::Processor {
 public:
  struct Options {
    int64_t batch_size = 0;
  };
  static flow::PluginInfo info() {
    return {"broken.bad-default", "1.0.0", flow::StageKind::Transform, "An option's default is outside its range"};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("batch_size", &Options::batch_size, "Rows per output batch").range(1, 1000);
  }
  explicit BadDefault(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace
FLOW_PLUGIN(BadDefault)
