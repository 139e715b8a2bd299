// Unit tests with the stage harness, plus the whole conformance suite against the built library.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "flow/conformance/gtest.hpp"
#include "flow/flow.hpp"
#include "flow/testing/harness.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

flow::SchemaPtr sensor_rows() {
  static const auto s = flow::make_schema({{"sensor_id", flow::Type::Int64},
                                           {"temperature", flow::Type::Float64},
                                           {"timestamp", flow::Type::Timestamp}});
  return s;
}

flow::Batch readings(const std::vector<double>& temperatures, flow::Positions positions = {}) {
  flow::Batch b(sensor_rows());
  int64_t i = 0;
  for (double t : temperatures) {
    b.column(0).append_int64(++i);
    if (std::isnan(t)) b.column(1).append_null();
    else b.column(1).append_double(t);
    b.column(2).append_timestamp(1'750'000'000'000'000 + i);
  }
  b.positions() = std::move(positions);
  return b;
}

TEST(ThresholdFlagger, FlagsReadingsAboveTheThreshold) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "threshold: 30\n");
  ASSERT_TRUE(h.check().empty());
  h.open();
  h.push(readings({29.9, 30.0, 30.1, -5, 99}));
  ASSERT_EQ(h.output().size(), 1u);
  const flow::Batch& out = h.output()[0];
  ASSERT_EQ(out.num_columns(), 4u);
  EXPECT_EQ(out.schema()->field(3).name, "hot");
  EXPECT_EQ(out.schema()->field(3).type, flow::Type::Bool);
  const std::vector<bool> expected = {false, false, true, false, true};
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out.column("hot").bool_at(i), expected[i]) << "row " << i;
  EXPECT_EQ(out.column("sensor_id").int64_at(4), 5);  // other columns unchanged
  h.close();
}

TEST(ThresholdFlagger, NullReadingGivesNullFlag) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "");
  h.open();
  h.push(readings({std::numeric_limits<double>::quiet_NaN(), 31}));
  const flow::Batch& out = h.output()[0];
  EXPECT_TRUE(out.column("hot").is_null(0));
  EXPECT_TRUE(out.column("hot").bool_at(1));
}

TEST(ThresholdFlagger, HandsPositionsOnWithTheRows) {
  flow::testing::AckLog log;
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "threshold: 0\n");
  h.open();
  h.push(readings({1, 2, 3}, log.track(0, 3)));
  EXPECT_EQ(log.acked_groups(), 0u);  // not before the sink acknowledged
  h.output()[0].positions().ack();
  EXPECT_TRUE(log.all_acked());
}

TEST(ThresholdFlagger, RejectsInputWithoutTheFieldNamingIt) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "field: pressure\n");
  h.open();
  try {
    h.push(readings({1}));
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no column 'pressure'"), std::string::npos) << e.what();
  }
}

TEST(ThresholdFlagger, RejectsANonNumericFieldNamingItsType) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "field: timestamp\n");
  h.open();
  try {
    h.push(readings({1}));
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "column 'timestamp' is timestamp, not a number (int64 or float64)");
  }
}

TEST(ThresholdFlagger, IntegerReadingsAreComparedToo) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "field: sensor_id\nthreshold: 1\n");
  h.open();
  h.push(readings({10, 10, 10}));  // sensor_id 1, 2, 3
  const auto hot = h.output()[0].column<bool>("hot");
  EXPECT_FALSE(hot[0]);
  EXPECT_TRUE(hot[1]);
  EXPECT_TRUE(hot[2]);
}

TEST(ThresholdFlagger, ConfigErrors) {
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "threshold: warm\n").check().empty());
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "column: temperature\n").check().empty());
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "treshold: 3\n").check().empty());
}

}  // namespace

// Every conformance check as its own test, run against the built library.
FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "threshold: 30\n");
