// broken.crash-on-bad-bytes: trusts its input. A control byte in `value` makes it write through
// a pointer made from that byte (a real SIGSEGV); a value starting with '[' makes it throw an int.
#include <cstdint>

#include "flow/flow.hpp"

namespace {
class CrashOnBadBytes : public flow::Processor {
 public:
  struct Options {};
  static flow::PluginInfo info() {
    return {"broken.crash-on-bad-bytes", "1.0.0", flow::StageKind::Transform, "Crashes on control bytes"};
  }
  static void declare(flow::OptionTable<Options>&) {}
  explicit CrashOnBadBytes(Options) {}
  void process(flow::Batch b, flow::Emitter& out) override {
    if (b.schema() && b.schema()->index_of("value")) {
      const auto& values = b.column("value");
      for (std::size_t i = 0; i < values.size(); ++i) {
        const auto v = values.string_at(i);
        for (unsigned char c : v)
          if (c < 0x09) *reinterpret_cast<volatile int*>(static_cast<uintptr_t>(c) * 8) = 1;
        if (!v.empty() && v.front() == '[') throw 42;
      }
    }
    out.emit(std::move(b));
  }
};
}  // namespace
FLOW_PLUGIN(CrashOnBadBytes)
