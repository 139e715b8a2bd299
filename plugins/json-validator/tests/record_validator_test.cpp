#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>

#include "flow/testing/harness.hpp"
#include "reading_generator.hpp"  // the simulator's stream (plugins/sensor-simulator/src)
#include "record_validator.hpp"

namespace {

using json_validator::Reason;
using json_validator::RecordValidator;
using json_validator::TimestampFormat;

RecordValidator make(const std::string& yaml_schema, bool reject_extra = false, std::size_t max_bytes = 1 << 20) {
  std::vector<flow::ConfigError> errors;
  auto fields = json_validator::parse_schema(flow::testing::yaml(yaml_schema), errors);
  EXPECT_TRUE(errors.empty()) << errors.front().str();
  return RecordValidator(std::move(fields), reject_extra, max_bytes);
}

const char* kSensorSchema = R"(
sensor_id: {type: int, min: 1}
temperature: {type: float, min: -20, max: 50}
humidity: {type: float, min: 0, max: 100}
timestamp: timestamp
)";

TEST(TimestampFormat, ParsesAndRejects) {
  TimestampFormat f;
  ASSERT_FALSE(TimestampFormat::compile("%Y-%m-%d %H:%M:%S", f));
  int64_t us = 0;
  ASSERT_TRUE(f.parse("2025-06-15 09:12:01", us));
  EXPECT_EQ(us, 1'749'978'721'000'000);
  ASSERT_TRUE(f.parse("1969-12-31 23:59:59", us));
  EXPECT_EQ(us, -1'000'000);
  EXPECT_TRUE(f.parse("2024-02-29 00:00:00", us));
  EXPECT_FALSE(f.parse("2023-02-29 00:00:00", us));
  EXPECT_FALSE(f.parse("2025-04-31 00:00:00", us));
  EXPECT_FALSE(f.parse("2025-06-15 24:00:00", us));
  EXPECT_FALSE(f.parse("2025-06-15 09:12:01 ", us));
  EXPECT_FALSE(f.parse("2025-06-15", us));
  EXPECT_FALSE(f.parse("", us));

  ASSERT_FALSE(TimestampFormat::compile("%FT%T.%f%z", f));
  ASSERT_TRUE(f.parse("2025-06-15T09:12:01.5Z", us));
  EXPECT_EQ(us, 1'749'978'721'500'000);
  ASSERT_TRUE(f.parse("2025-06-15T11:12:01.123456789+02:00", us));
  EXPECT_EQ(us, 1'749'978'721'123'456);
  ASSERT_TRUE(f.parse("2025-06-15T08:12:01.000001-0100", us));
  EXPECT_EQ(us, 1'749'978'721'000'001);

  EXPECT_TRUE(TimestampFormat::compile("%Y-%m", f));     // no day
  EXPECT_TRUE(TimestampFormat::compile("%Y-%m-%d %q", f));  // unknown directive
  EXPECT_TRUE(TimestampFormat::compile("%s %Y", f));     // mixed
  EXPECT_TRUE(TimestampFormat::compile("%F %", f));      // lone %
}

TEST(RecordValidator, ManyUnknownKeysAndLateDuplicates) {
  auto v = make(kSensorSchema);
  std::string msg = R"({"sensor_id":1,"temperature":2,"humidity":3,"timestamp":"2025-06-15 09:12:01")";
  for (int i = 0; i < 2000; ++i) msg += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  EXPECT_TRUE(v.validate(msg + "}")) << v.message();
  EXPECT_FALSE(v.validate(msg + ",\"k1999\":0}"));
  EXPECT_EQ(v.reason(), Reason::DuplicateKey);
  EXPECT_FALSE(v.validate(msg + ",\"k3\":0}"));
  EXPECT_EQ(v.reason(), Reason::DuplicateKey);
  // The set is reset between records.
  EXPECT_TRUE(v.validate(msg + "}")) << v.message();
}

TEST(RecordValidator, KeysWithEscapesAndNulBytes) {
  auto v = make("name: string\n");
  ASSERT_TRUE(v.validate(R"({"n\u0061me":"a\u0000b"})")) << v.message();
  EXPECT_EQ(v.slots()[0].s, std::string_view("a\0b", 3));
  EXPECT_FALSE(v.validate(R"({"name":"x","n\u0061me":"y"})"));
  EXPECT_EQ(v.reason(), Reason::DuplicateKey);
}

TEST(RecordValidator, DeepNestingIsMalformedNotACrash) {
  auto v = make("a: int\n");
  std::string deep(5000, '[');
  EXPECT_FALSE(v.validate("{\"a\":" + deep));
  EXPECT_EQ(v.reason(), Reason::MalformedJson);
  EXPECT_FALSE(v.validate("{\"x\":" + deep + std::string(5000, ']') + ",\"a\":1}"));
  EXPECT_EQ(v.reason(), Reason::MalformedJson);
}

// Every invalid message the simulator makes is rejected, every valid one accepted: the demo
// pipeline's two halves agree.
TEST(RecordValidator, SimulatorStreamIsClassifiedAsGenerated) {
  auto v = make(kSensorSchema);
  flow_sim::GeneratorSettings s;
  s.sensors = 20;
  s.seed = 11;
  s.start_micros = 1'749'978'721'000'000;
  s.invalid_ratio = 0.25;
  flow_sim::ReadingGenerator gen(s);
  std::map<std::string, std::map<std::string, int>> seen;  // generated kind -> reason -> count
  for (int i = 0; i < 20000; ++i) {
    flow_sim::Reading r;
    const std::string_view msg = gen.next(r);
    const bool ok = v.validate(msg);
    const std::string kind(flow_sim::invalid_kind_name(r.invalid));
    ASSERT_EQ(ok, r.invalid == flow_sim::InvalidKind::None) << kind << ": " << msg << " -> " << v.message();
    if (ok) {
      EXPECT_EQ(v.slots()[0].i, r.sensor_id);
      EXPECT_EQ(v.slots()[3].i, r.time_micros);
    } else {
      seen[kind][std::string(json_validator::reason_name(v.reason()))] += 1;
    }
  }
  EXPECT_EQ(seen.size(), 6u);
  // Each kind has its one matching reason.
  EXPECT_EQ(seen["truncated"], (std::map<std::string, int>{{"malformed_json", seen["truncated"]["malformed_json"]}}));
  EXPECT_EQ(seen["missing_field"], (std::map<std::string, int>{{"missing_field", seen["missing_field"]["missing_field"]}}));
  EXPECT_EQ(seen["wrong_type"], (std::map<std::string, int>{{"wrong_type", seen["wrong_type"]["wrong_type"]}}));
  EXPECT_EQ(seen["out_of_range"], (std::map<std::string, int>{{"out_of_range", seen["out_of_range"]["out_of_range"]}}));
  EXPECT_EQ(seen["nan"], (std::map<std::string, int>{{"not_finite", seen["nan"]["not_finite"]}}));
  EXPECT_EQ(seen["garbage"], (std::map<std::string, int>{{"invalid_utf8", seen["garbage"]["invalid_utf8"]}}));
}


// Timestamps are cached by text (a few per field): interleaved seconds, including texts that
// share a cache slot, each read as their own time.
TEST(RecordValidator, InterleavedTimestampsEachReadTheirOwnTime) {
  auto v = make(kSensorSchema);
  const int64_t base = 1'749'978'721;  // 2025-06-15 09:12:01 UTC
  for (int i = 0; i < 400; ++i) {
    const int64_t secs = base + (i * 37) % 120;
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    const std::string msg = std::string(R"({"sensor_id":1,"temperature":2,"humidity":3,"timestamp":")") + text + "\"}";
    ASSERT_TRUE(v.validate(msg)) << v.message();
    ASSERT_EQ(v.slots()[3].i, secs * 1'000'000) << text;
  }
}

}  // namespace
