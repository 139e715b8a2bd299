// acme.heat-index: adds a float64 column `heat_index` to sensor rows, computed from
// `temperature` and `humidity` (relative, in %) with the US National Weather Service's formula.
// Rows, the other columns and the batch's positions pass through unchanged.
#include <cmath>
#include <utility>

#include "flow/flow.hpp"

namespace acme {

enum class Units { Celsius, Fahrenheit };

// The NWS heat index in Fahrenheit: Steadman's simple formula, or the Rothfusz regression with
// its two adjustments once that reaches 80 F (https://www.wpc.ncep.noaa.gov/html/heatindex_equation.shtml).
inline double heat_index_f(double t, double rh) {
  const double simple = 0.5 * (t + 61.0 + (t - 68.0) * 1.2 + rh * 0.094);
  if ((simple + t) / 2 < 80) return simple;
  double hi = -42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh - 0.00683783 * t * t -
              0.05481717 * rh * rh + 0.00122874 * t * t * rh + 0.00085282 * t * rh * rh -
              0.00000199 * t * t * rh * rh;
  if (rh < 13 && t >= 80 && t <= 112) hi -= (13 - rh) / 4 * std::sqrt((17 - std::fabs(t - 95)) / 17);
  if (rh > 85 && t >= 80 && t <= 87) hi += (rh - 85) / 10 * (87 - t) / 5;
  return hi;
}

inline double heat_index(double temperature, double humidity, Units units) {
  if (units == Units::Fahrenheit) return heat_index_f(temperature, humidity);
  return (heat_index_f(temperature * 9 / 5 + 32, humidity) - 32) * 5 / 9;
}

class HeatIndex : public flow::Processor {
 public:
  struct Options {
    Units units = Units::Celsius;
  };

  static flow::PluginInfo info() {
    return {"acme.heat-index", "1.0.0", flow::StageKind::Transform,
            "Adds heat_index, computed from temperature and relative humidity (US NWS formula)"};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "units: celsius\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add_enum("units", &Options::units, {{"celsius", Units::Celsius}, {"fahrenheit", Units::Fahrenheit}},
               "Unit of the temperature column and of heat_index");
  }

  explicit HeatIndex(Options o) : o_(o) {}

  void process(flow::Batch in, flow::Emitter& out) override {
    // Views check each column's type once (int64 or float64 here), naming the column if wrong.
    const auto temperature = in.column<flow::Number>("temperature");
    const auto humidity = in.column<flow::Number>("humidity");
    flow::Column heat(flow::Type::Float64);
    heat.reserve(in.num_rows());
    for (std::size_t i = 0; i < in.num_rows(); ++i) {
      if (temperature.is_null(i) || humidity.is_null(i)) heat.append_null();
      else heat.append_double(heat_index(temperature[i], humidity[i], o_.units));
    }
    in.add_column("heat_index", std::move(heat));  // same rows, same positions
    out.emit(std::move(in));
  }

 private:
  Options o_;
};

}  // namespace acme

FLOW_PLUGIN(acme::HeatIndex)
