// acme.threshold-flagger: adds a bool column (default `hot`) to validated sensor rows, true when
// the reading (default `temperature`, int64 or float64) is above `threshold`. Every input column
// and the batch's positions are handed on unchanged, so the sink downstream acknowledges the
// records.
#include <string>
#include <utility>
#include <vector>

#include "flow/flow.hpp"

namespace acme {

class ThresholdFlagger : public flow::Processor {
 public:
  struct Options {
    double threshold = 30.0;
    std::string field = "temperature";
    std::string column = "hot";
  };

  static flow::PluginInfo info() {
    return {"acme.threshold-flagger", "1.0.0", flow::StageKind::Transform,
            "Adds a bool column that is true when a reading is above a threshold"};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "threshold: 30\nfield: temperature\ncolumn: hot\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("threshold", &Options::threshold, "A reading above this value is flagged").range(-1e9, 1e9);
    t.add("field", &Options::field, "The numeric column to compare (float64 or int64)");
    t.add("column", &Options::column, "Name of the bool column added to every row");
  }

  // Checks across options, run by `flowctl validate` before anything starts.
  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    if (o.field.empty()) errors.push_back({config.location(), "option 'field' must not be empty"});
    if (o.column.empty()) errors.push_back({config.location(), "option 'column' must not be empty"});
    if (!o.field.empty() && o.field == o.column)
      errors.push_back({config.location(), "options 'field' and 'column' must differ"});
  }

  explicit ThresholdFlagger(Options o) : o_(std::move(o)) {}

  void process(flow::Batch in, flow::Emitter& out) override {
    // Missing or non-numeric `field`: an error naming the column (and its type).
    const auto values = in.column<flow::Number>(o_.field);
    flow::Column flags(flow::Type::Bool);
    flags.reserve(in.num_rows());
    for (std::size_t i = 0; i < in.num_rows(); ++i) {
      if (values.is_null(i)) flags.append_null();
      else flags.append_bool(values[i] > o_.threshold);  // NaN compares false: not flagged
    }
    in.add_column(o_.column, std::move(flags));  // refused if the input already has it
    out.emit(std::move(in));
  }

 private:
  Options o_;
};

}  // namespace acme

FLOW_PLUGIN(acme::ThresholdFlagger)
