// test.counter-source: emits rows 0..count-1 (column `n`, int64) in batches, optionally paced;
// each batch tracks its positions and the acknowledged count is the counter "acked".
#include <thread>

#include "flow/flow.hpp"

namespace {
class CounterSource : public flow::Source {
 public:
  struct Options {
    int64_t count = 1000;
    int64_t batch_size = 100;
    flow::Duration pause{0};  // between batches
    int64_t row_bytes = 0;    // pad each row with a string of this size (memory tests)
  };
  static flow::PluginInfo info() {
    return {"test.counter-source", "1.0.0", flow::StageKind::Source, "Emits 0..count-1 for tests and benchmarks"};
  }
  static void declare(flow::OptionTable<Options>& t) {
    t.add("count", &Options::count, "Rows to emit (0 = until stopped)").min(0);
    t.add("batch_size", &Options::batch_size, "Rows per batch").range(1, 1'000'000);
    t.add("pause", &Options::pause, "Pause between batches");
    t.add("row_bytes", &Options::row_bytes, "Bytes of padding per row").min(0);
  }
  static std::optional<flow::Schema> output_schema(const Options& o) {
    if (o.row_bytes > 0) return flow::Schema({{"n", flow::Type::Int64}, {"pad", flow::Type::String}});
    return flow::Schema({{"n", flow::Type::Int64}});
  }
  explicit CounterSource(Options o) : o_(o) {}

  void run(flow::Context& ctx, flow::Emitter& out) override {
    auto& acked = ctx.counter("acked");
    const auto schema = o_.row_bytes > 0 ? flow::make_schema({{"n", flow::Type::Int64}, {"pad", flow::Type::String}})
                                         : flow::make_schema({{"n", flow::Type::Int64}});
    const std::string pad(static_cast<std::size_t>(o_.row_bytes), 'x');
    int64_t n = 0;
    while (!ctx.stop_requested() && (o_.count == 0 || n < o_.count)) {
      flow::Batch b(schema);
      const int64_t end = o_.count == 0 ? n + o_.batch_size : std::min(o_.count, n + o_.batch_size);
      b.column(0).reserve(static_cast<std::size_t>(end - n));
      for (int64_t i = n; i < end; ++i) {
        b.column(0).append_int64(i);
        if (o_.row_bytes > 0) b.column(1).append_string(pad);
      }
      b.positions() = flow::Positions::track({{ctx.stage_id(), 0, n, end}}, [&acked](const auto& ranges) {
        for (const auto& r : ranges) acked.add(static_cast<uint64_t>(r.end - r.begin));
      });
      n = end;
      if (!out.emit(std::move(b))) return;
      if (o_.pause.count() > 0) std::this_thread::sleep_for(o_.pause);
    }
  }

 private:
  Options o_;
};
}  // namespace
FLOW_PLUGIN(CounterSource)
