// acme.threshold-flagger: adds a bool column (default `hot`) to validated sensor rows, true when
// the reading (default `temperature`) is above `threshold`. Every input column and the batch's
// positions are handed on unchanged, so the sink downstream acknowledges the records.
#include <memory>
#include <stdexcept>
#include <string>

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

  void open(flow::Context& ctx) override { stage_ = ctx.stage_id(); }

  void process(flow::Batch in, flow::Emitter& out) override {
    const flow::SchemaPtr& schema = in.schema();
    if (!schema) throw std::invalid_argument(where() + "received a batch without a schema");
    const auto index = schema->index_of(o_.field);
    if (!index) throw std::invalid_argument(where() + "input has no column '" + o_.field + "'");
    const flow::Type type = schema->field(*index).type;
    if (type != flow::Type::Float64 && type != flow::Type::Int64)
      throw std::invalid_argument(where() + "column '" + o_.field + "' is " + flow::type_name(type) +
                                  ", not float64 or int64");
    if (schema->index_of(o_.column))
      throw std::invalid_argument(where() + "input already has a column '" + o_.column + "'");

    flow::Batch result(output_schema(schema));
    const flow::Column& values = in.column(*index);
    flow::Column& flags = result.column(schema->size());
    flags.reserve(in.num_rows());
    for (std::size_t i = 0; i < in.num_rows(); ++i) {
      if (values.is_null(i)) {
        flags.append_null();
        continue;
      }
      const double v = type == flow::Type::Float64 ? values.double_at(i) : static_cast<double>(values.int64_at(i));
      flags.append_bool(v > o_.threshold);  // NaN compares false: not flagged
    }
    for (std::size_t c = 0; c < schema->size(); ++c) result.column(c) = std::move(in.column(c));
    result.positions() = std::move(in.positions());
    out.emit(std::move(result));
  }

 private:
  std::string where() const { return "stage '" + stage_ + "' (acme.threshold-flagger): "; }

  // The input's fields plus the flag column; built once per distinct input schema.
  const flow::SchemaPtr& output_schema(const flow::SchemaPtr& input) {
    if (input != cached_input_) {
      auto fields = input->fields();
      fields.push_back({o_.column, flow::Type::Bool});
      cached_output_ = flow::make_schema(std::move(fields));
      cached_input_ = input;
    }
    return cached_output_;
  }

  Options o_;
  std::string stage_ = "?";
  flow::SchemaPtr cached_input_, cached_output_;
};

}  // namespace acme

FLOW_PLUGIN(acme::ThresholdFlagger)
