// Unit tests with the stage harness, plus the whole conformance suite against the built library.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "flow/conformance/gtest.hpp"
#include "flow/flow.hpp"
#include "flow/testing/harness.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

struct Reading {
  std::optional<double> temperature, humidity;  // nullopt: a null cell
};

// A batch of validated sensor rows (flow::sensor_row_schema()), one row per reading.
flow::Batch readings(const std::vector<Reading>& rows, flow::Positions positions = {}) {
  flow::Batch b(flow::sensor_row_schema());
  int64_t id = 0;
  for (const auto& r : rows) {
    b.column("sensor_id").append_int64(++id);
    if (r.temperature) b.column("temperature").append_double(*r.temperature);
    else b.column("temperature").append_null();
    if (r.humidity) b.column("humidity").append_double(*r.humidity);
    else b.column("humidity").append_null();
    b.column("timestamp").append_timestamp(1'750'000'000'000'000 + id);
  }
  b.positions() = std::move(positions);
  return b;
}

const flow::PluginDescriptor& plugin() { return *flow_plugin_entry::descriptor(); }

TEST(HeatIndex, AddsTheColumnFromTheNwsFormula) {
  flow::testing::StageHarness h(plugin(), "units: fahrenheit\n");
  ASSERT_TRUE(h.check().empty());
  h.open();
  h.push(readings({{90, 70}, {70, 50}, {std::nullopt, 50}}));
  ASSERT_EQ(h.output().size(), 1u);
  const flow::Batch& out = h.output()[0];
  EXPECT_EQ(*out.schema(), *flow::sensor_row_schema()->with({"heat_index", flow::Type::Float64}));
  const auto hi = out.column<double>("heat_index");
  EXPECT_NEAR(hi[0], 105.92, 0.01);  // NWS table: 90 F at 70 % feels like 106 F
  EXPECT_NEAR(hi[1], 69.05, 0.01);   // below 80 F: Steadman's simple formula
  EXPECT_TRUE(hi.is_null(2));        // a null reading gives a null heat index
  EXPECT_EQ(out.column<int64_t>("sensor_id")[2], 3);  // other columns unchanged
}

TEST(HeatIndex, CelsiusIsTheDefault) {
  flow::testing::StageHarness h(plugin(), "");
  h.open();
  h.push(readings({{32.2222222, 70}}));  // 90 F
  EXPECT_NEAR(h.output()[0].column<double>("heat_index")[0], 41.07, 0.01);
}

TEST(HeatIndex, HandsPositionsOnWithTheRows) {
  flow::testing::AckLog log;
  flow::testing::StageHarness h(plugin(), "");
  h.open();
  h.push(readings({{20, 40}, {21, 41}}, log.track(0, 2)));
  EXPECT_EQ(log.acked_groups(), 0u);  // not before the sink acknowledged
  h.output()[0].positions().ack();
  EXPECT_TRUE(log.all_acked());
}

TEST(HeatIndex, WrongColumnTypeIsAnErrorNamingColumnAndTypes) {
  flow::testing::StageHarness h(plugin(), "");
  h.open();
  flow::Batch b(flow::make_schema({{"temperature", flow::Type::String}, {"humidity", flow::Type::Float64}}));
  try {
    h.push(std::move(b));
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "column 'temperature' is string, not a number (int64 or float64)");
  }
}

TEST(HeatIndex, UnitsIsAnEnum) {
  const auto errors = flow::testing::StageHarness(plugin(), "units: kelvin\n").check();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("'kelvin' is not one of {celsius, fahrenheit}"), std::string::npos);
}

}  // namespace

// Every conformance check as its own test, run against the built library.
FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "units: celsius\n");
