// broken.own-input-never-acks: a sink that reads only its own kind of batch (a `frame` column of
// int64), supplies that as its conformance sample, and never acknowledges. The suite can find the
// violation only through the plugin's sample: every generic shape is refused.
#include <stdexcept>

#include "flow/flow.hpp"

namespace {
class OwnInputNeverAcks : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {.name = "broken.own-input-never-acks", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "A sink of frames that never acknowledges",
            .main_output = false};
  }
  static void declare(flow::OptionTable<Options>&) {}
  static flow::Batch sample_input(const Options&, const flow::SampleRequest& r) {
    flow::Batch b(flow::make_schema({{"frame", flow::Type::Int64}}));
    for (std::size_t k = 0; k < r.rows; ++k) b.column(0).append_int64(r.first + static_cast<int64_t>(k));
    return b;
  }
  explicit OwnInputNeverAcks(Options) {}
  void process(flow::Batch b, flow::Emitter&) override {
    if (!b.schema() || !b.schema()->has("frame")) throw std::runtime_error("broken.own-input-never-acks reads only batches with a 'frame' column");
    rows_ += b.num_rows();
  }

 private:
  std::size_t rows_ = 0;
};
}  // namespace
FLOW_PLUGIN(OwnInputNeverAcks)
