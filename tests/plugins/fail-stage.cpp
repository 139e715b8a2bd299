// test.fail-stage: forwards batches and throws once it has seen `after` rows: a failing stage.
#include <stdexcept>

#include "flow/flow.hpp"

namespace {
class FailStage : public flow::Processor {
 public:
  struct Options {
    int64_t after = 0;
    std::string message = "injected failure";
  };
  static flow::PluginInfo info() {
    return {"test.fail-stage", "1.0.0", flow::StageKind::Transform, "Fails after a number of rows"};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("after", &Options::after, "Rows to forward before failing").min(0);
    t.add("message", &Options::message, "The failure's message");
  }
  explicit FailStage(Options o) : o_(std::move(o)) {}
  void process(flow::Batch b, flow::Emitter& out) override {
    seen_ += static_cast<int64_t>(b.num_rows());
    if (seen_ > o_.after) throw std::runtime_error(o_.message);
    out.emit(std::move(b));
  }

 private:
  Options o_;
  int64_t seen_ = 0;
};
}  // namespace
FLOW_PLUGIN(FailStage)
