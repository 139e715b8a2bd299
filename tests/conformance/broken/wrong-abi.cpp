// broken.wrong-abi: a hand-written entry point stamped with another ABI version.
#include "flow/flow.hpp"

namespace {
class WrongAbi : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() { return {"broken.wrong-abi", "1.0.0", flow::StageKind::Transform, "Built for another ABI"}; }
  static void declare(flow::OptionTable<Options>&) {}
  explicit WrongAbi(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override { out.emit(std::move(b)); }
};
}  // namespace

namespace flow_plugin_entry {
const flow::AbiStamp* abi() {
  static const flow::AbiStamp stamp{flow::kAbiVersion + 41, flow::kToolchainTag, FLOW_COMPILER};
  return &stamp;
}
const flow::PluginDescriptor* descriptor() {
  static const flow::PluginDescriptor d = flow::detail::make_descriptor<WrongAbi>();
  return &d;
}
}  // namespace flow_plugin_entry
BOOST_DLL_ALIAS(flow_plugin_entry::abi, flow_plugin_abi)
BOOST_DLL_ALIAS(flow_plugin_entry::descriptor, flow_plugin_descriptor_v1)
