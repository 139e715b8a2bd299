// broken.no-descriptor: a stage class, but no FLOW_PLUGIN: the library exports no entry point.
#include "flow/flow.hpp"

namespace {
class NoDescriptor : public flow::Processor {
 public:
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace

extern "C" __attribute__((visibility("default"))) int flow_broken_no_descriptor_marker() {
  NoDescriptor stage;  // keeps the class in the library
  return static_cast<int>(sizeof stage);
}
