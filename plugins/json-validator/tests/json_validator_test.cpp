#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "flow/testing/harness.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

using flow::testing::AckLog;
using flow::testing::StageHarness;
using flow::testing::raw_batch;

const std::string kSchema = R"(
schema:
  sensor_id: {type: int, min: 1}
  temperature: {type: float, min: -20, max: 50}
  humidity: {type: float, min: 0, max: 100}
  timestamp: timestamp
  status: {type: string, required: false, allowed: [ok, degraded]}
  active: {type: bool, required: false}
max_message_bytes: 512
)";

const std::string kValid =
    R"({"sensor_id":7,"temperature":-3.5,"humidity":66.2,"timestamp":"2025-06-15 09:12:01","status":"ok","active":true})";

std::string with(std::string_view field_json) {
  // A valid message whose last fields are replaced: `field_json` is inserted after sensor_id.
  return std::string(R"({"sensor_id":1,)") + std::string(field_json) + "}";
}

struct BadCase {
  const char* name;
  std::string raw;
  const char* reason;
};

std::vector<BadCase> catalogue() {
  const std::string rest = R"("humidity":50,"timestamp":"2025-06-15 09:12:01")";
  return {
      {"truncated", R"({"sensor_id":1,"temperature":29.5,"hum)", "malformed_json"},
      {"truncated after value", R"({"sensor_id":1,"temperature":29.5)", "malformed_json"},
      {"truncated in string", R"({"sensor_id":1,"timestamp":"2025-06)", "malformed_json"},
      {"garbage text", "hello world", "malformed_json"},
      {"trailing garbage", kValid + "xyz", "malformed_json"},
      {"garbage bytes", std::string("\xff\xfe\x00\x01garbage", 11), "invalid_utf8"},
      {"invalid utf-8 in a string", with(R"("temperature":1,"status":")" "\xc3\x28" R"(",)" + rest), "invalid_utf8"},
      {"overlong utf-8", with(R"("temperature":1,"status":")" "\xc0\xaf" R"(",)" + rest), "invalid_utf8"},
      {"empty", "", "empty"},
      {"whitespace only", " \t\n ", "empty"},
      {"oversize", with(R"("temperature":1,"status":")" + std::string(600, 'x') + R"(",)" + rest), "oversize"},
      {"array", "[1,2,3]", "not_an_object"},
      {"number", "42", "not_an_object"},
      {"string", R"("hello")", "not_an_object"},
      {"duplicate key", R"({"sensor_id":1,"sensor_id":2,"temperature":1,)" + rest + "}", "duplicate_key"},
      {"duplicate extra key", with(R"("x":1,"x":2,"temperature":1,)" + rest), "duplicate_key"},
      {"nested object", with(R"("temperature":{"v":1},)" + rest), "nested_value"},
      {"nested array", with(R"("temperature":[1],)" + rest), "nested_value"},
      {"float as string", with(R"("temperature":"29.5",)" + rest), "wrong_type"},
      {"int with fraction", R"({"sensor_id":1.5,"temperature":1,)" + rest + "}", "wrong_type"},
      {"int as bool", R"({"sensor_id":true,"temperature":1,)" + rest + "}", "wrong_type"},
      {"timestamp as number", with(R"("temperature":1,"humidity":5,"timestamp":1750000000)"), "wrong_type"},
      {"bool as string", with(R"("temperature":1,"active":"yes",)" + rest), "wrong_type"},
      {"int overflow (uint64)", R"({"sensor_id":9223372036854775808,"temperature":1,)" + rest + "}", "out_of_range"},
      {"int overflow (huge)", R"({"sensor_id":123456789012345678901234567890,"temperature":1,)" + rest + "}",
       "out_of_range"},
      {"int overflow (exponent)", R"({"sensor_id":1e30,"temperature":1,)" + rest + "}", "out_of_range"},
      {"NaN", with(R"("temperature":NaN,)" + rest), "not_finite"},
      {"-Infinity", with(R"("temperature":-Infinity,)" + rest), "not_finite"},
      {"NaN as string", with(R"("temperature":"NaN",)" + rest), "not_finite"},
      {"Infinity as string", with(R"("temperature":"-Infinity",)" + rest), "not_finite"},
      {"double overflow", with(R"("temperature":1e400,)" + rest), "not_finite"},
      {"missing field", with(R"("temperature":1,"timestamp":"2025-06-15 09:12:01")"), "missing_field"},
      {"null required field", with(R"("temperature":null,)" + rest), "missing_field"},
      {"above max", with(R"("temperature":1,"humidity":150,"timestamp":"2025-06-15 09:12:01")"), "out_of_range"},
      {"below min", with(R"("temperature":-25.5,)" + rest), "out_of_range"},
      {"int below min", R"({"sensor_id":0,"temperature":1,)" + rest + "}", "out_of_range"},
      {"not allowed", with(R"("temperature":1,"status":"broken",)" + rest), "not_allowed"},
      {"bad month", with(R"("temperature":1,"humidity":5,"timestamp":"2025-13-01 00:00:00")"), "bad_timestamp"},
      {"impossible day", with(R"("temperature":1,"humidity":5,"timestamp":"2025-02-30 10:00:00")"), "bad_timestamp"},
      {"not a time", with(R"("temperature":1,"humidity":5,"timestamp":"yesterday")"), "bad_timestamp"},
      {"trailing text", with(R"("temperature":1,"humidity":5,"timestamp":"2025-06-15 09:12:01Z")"), "bad_timestamp"},
  };
}

TEST(JsonValidator, CatalogueOfBadMessagesIsRejectedWithItsReason) {
  const auto cases = catalogue();
  std::vector<std::string> raws;
  for (const auto& c : cases) raws.push_back(c.raw);
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  ASSERT_TRUE(h.check().empty());
  h.open();
  h.push(raw_batch(raws));
  EXPECT_EQ(h.output_rows(), 0u);
  ASSERT_EQ(h.output("invalid").size(), 1u);
  const flow::Batch& dead = h.output("invalid")[0];
  ASSERT_TRUE(dead.consistent());
  ASSERT_EQ(dead.num_rows(), cases.size());
  std::map<std::string, uint64_t> per_reason;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(dead.column("reason").string_at(i), cases[i].reason) << dead.column("message").string_at(i);
    EXPECT_FALSE(dead.column("message").string_at(i).empty());
    EXPECT_EQ(dead.column("raw").string_at(i), cases[i].raw);
    EXPECT_EQ(dead.column("source").string_at(i), "test");
    EXPECT_EQ(dead.column("partition").int64_at(i), 0);
    EXPECT_EQ(dead.column("offset").int64_at(i), static_cast<int64_t>(i));
    per_reason[cases[i].reason] += 1;
  }
  for (const auto& [reason, n] : per_reason) EXPECT_EQ(h.counter("invalid_records", {{"reason", reason}}), n) << reason;
}

// A null message (a Kafka tombstone) between valid ones is rejected as empty; the rows around
// it are read at their own offsets.
TEST(JsonValidator, NullMessageIsEmptyAndTheOthersStayInPlace) {
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  flow::Batch in = raw_batch({kValid, "", with(R"("temperature":2,"humidity":3,"timestamp":"2025-06-15 09:12:02")")});
  flow::Column values(flow::Type::String);
  values.append_string(kValid);
  values.append_null();
  values.append_string(with(R"("temperature":2,"humidity":3,"timestamp":"2025-06-15 09:12:02")"));
  in.replace_column("value", std::move(values));
  h.push(std::move(in));
  ASSERT_EQ(h.output().size(), 1u);
  const flow::Batch& b = h.output()[0];
  ASSERT_EQ(b.num_rows(), 2u);
  EXPECT_EQ(b.column("sensor_id").int64_at(0), 7);
  EXPECT_EQ(b.column("sensor_id").int64_at(1), 1);
  EXPECT_EQ(b.column("temperature").double_at(1), 2.0);
  ASSERT_EQ(h.output_rows("invalid"), 1u);
  const flow::Batch& dead = h.output("invalid")[0];
  EXPECT_EQ(dead.column("reason").string_at(0), "empty");
  EXPECT_EQ(dead.column("message").string_at(0), "empty message");
  EXPECT_EQ(dead.column("offset").int64_at(0), 1);
}

TEST(JsonValidator, MessagesNameTheProblem) {
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  h.push(raw_batch({with(R"("temperature":1,"humidity":150,"timestamp":"2025-06-15 09:12:01")"),
                    R"({"sensor_id":1,"temperature":29.5,"hum)", with(R"("temperature":NaN)"),
                    R"({"sensor_id":1,"sensor_id":2})", std::string("{\"a\":\"\xff\"}")}));
  const flow::Batch& dead = h.output("invalid").at(0);
  EXPECT_EQ(dead.column("message").string_at(0), "field 'humidity': 150 is above the maximum 100");
  EXPECT_NE(dead.column("message").string_at(1).find("truncated"), std::string::npos);
  EXPECT_NE(dead.column("message").string_at(2).find("'NaN' at byte 29"), std::string::npos)
      << dead.column("message").string_at(2);
  EXPECT_EQ(dead.column("message").string_at(3), "duplicate key 'sensor_id'");
  EXPECT_EQ(dead.column("message").string_at(4), "invalid UTF-8 at byte 6");
}

TEST(JsonValidator, UnknownFieldsAreIgnoredOrRejected) {
  const std::string msg = R"({"sensor_id":1,"temperature":2,"humidity":3,"timestamp":"2025-06-15 09:12:01","extra":{"a":[1]}})";
  StageHarness ignore(*flow_plugin_entry::descriptor(), kSchema);
  ignore.open();
  ignore.push(raw_batch({msg}));
  EXPECT_EQ(ignore.output_rows(), 1u);

  StageHarness reject(*flow_plugin_entry::descriptor(), kSchema + "extra_fields: reject\n");
  reject.open();
  reject.push(raw_batch({msg}));
  EXPECT_EQ(reject.output_rows(), 0u);
  ASSERT_EQ(reject.output_rows("invalid"), 1u);
  EXPECT_EQ(reject.output("invalid")[0].column("reason").string_at(0), "unknown_field");
  EXPECT_EQ(reject.output("invalid")[0].column("message").string_at(0), "unknown field 'extra' (extra_fields: reject)");
}

TEST(JsonValidator, ValidMessagesGiveExactTypedColumnsInSchemaOrder) {
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  h.push(raw_batch({kValid,
                    // other key order, integer for a float, optional fields absent, extra key
                    R"({"timestamp":"2025-01-01 00:00:00","humidity":0,"temperature":50,"sensor_id":9223372036854775807,"x":1})",
                    // optional fields null, escapes in strings, negative zero
                    R"({"sensor_id":3,"temperature":-0.0,"humidity":100.0,"timestamp":"2024-02-29 23:59:59","status":"d\u0065graded","active":null})"}));
  ASSERT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.output_rows("invalid"), 0u);
  const flow::Batch& b = h.output()[0];
  ASSERT_TRUE(b.consistent());
  ASSERT_EQ(b.num_rows(), 3u);
  const std::vector<flow::Field> expected = {{"sensor_id", flow::Type::Int64},  {"temperature", flow::Type::Float64},
                                             {"humidity", flow::Type::Float64}, {"timestamp", flow::Type::Timestamp},
                                             {"status", flow::Type::String},    {"active", flow::Type::Bool}};
  EXPECT_EQ(b.schema()->fields(), expected);

  EXPECT_EQ(b.column("sensor_id").int64_at(0), 7);
  EXPECT_EQ(b.column("temperature").double_at(0), -3.5);
  EXPECT_EQ(b.column("humidity").double_at(0), 66.2);
  EXPECT_EQ(b.column("timestamp").timestamp_at(0), 1'749'978'721'000'000);  // 2025-06-15 09:12:01 UTC
  EXPECT_EQ(b.column("status").string_at(0), "ok");
  EXPECT_TRUE(b.column("active").bool_at(0));
  EXPECT_FALSE(b.column("status").is_null(0));

  EXPECT_EQ(b.column("sensor_id").int64_at(1), INT64_MAX);
  EXPECT_EQ(b.column("temperature").double_at(1), 50.0);
  EXPECT_EQ(b.column("timestamp").timestamp_at(1), 1'735'689'600'000'000);
  EXPECT_TRUE(b.column("status").is_null(1));
  EXPECT_TRUE(b.column("active").is_null(1));

  EXPECT_TRUE(std::signbit(b.column("temperature").double_at(2)));
  EXPECT_EQ(b.column("timestamp").timestamp_at(2), 1'709'251'199'000'000);
  EXPECT_EQ(b.column("status").string_at(2), "degraded");
  EXPECT_TRUE(b.column("active").is_null(2));
  EXPECT_FALSE(b.column("sensor_id").is_null(2));
}

// Every type as an optional field, the types interleaved, each null or absent in some row:
// the columns are filled by type (int64 and timestamp, float64, string, bool), row by row.
TEST(JsonValidator, NullsOfEveryTypeKeepTheRowsInLine) {
  StageHarness h(*flow_plugin_entry::descriptor(), R"(
schema:
  b: {type: bool, required: false}
  t: {type: timestamp, required: false}
  s: {type: string, required: false}
  f: {type: float, required: false}
  i: {type: int, required: false}
  g: {type: float, required: false}
)");
  h.open();
  h.push(raw_batch({R"({"b":true,"t":"2025-06-15 09:12:01","s":"x","f":1.5,"i":7,"g":2})",
                    R"({"b":null,"t":null,"s":null,"f":null,"i":null,"g":null})",
                    R"({})",
                    R"({"i":-3,"s":"y\"z"})",
                    R"({"g":-0.25,"b":false,"t":"1970-01-01 00:00:00"})"}));
  ASSERT_EQ(h.output().size(), 1u);
  const flow::Batch& b = h.output()[0];
  ASSERT_TRUE(b.consistent());
  ASSERT_EQ(b.num_rows(), 5u);
  const auto nulls = [&](const char* column) {
    std::string out;
    for (std::size_t r = 0; r < b.num_rows(); ++r) out += b.column(column).is_null(r) ? 'n' : 'v';
    return out;
  };
  EXPECT_EQ(nulls("b"), "vnnnv");
  EXPECT_EQ(nulls("t"), "vnnnv");
  EXPECT_EQ(nulls("s"), "vnnvn");
  EXPECT_EQ(nulls("f"), "vnnnn");
  EXPECT_EQ(nulls("i"), "vnnvn");
  EXPECT_EQ(nulls("g"), "vnnnv");
  EXPECT_TRUE(b.column("b").bool_at(0));
  EXPECT_FALSE(b.column("b").bool_at(4));
  EXPECT_EQ(b.column("t").timestamp_at(0), 1'749'978'721'000'000);
  EXPECT_EQ(b.column("t").timestamp_at(4), 0);
  EXPECT_EQ(b.column("s").string_at(0), "x");
  EXPECT_EQ(b.column("s").string_at(3), "y\"z");
  EXPECT_EQ(b.column("f").double_at(0), 1.5);
  EXPECT_EQ(b.column("i").int64_at(0), 7);
  EXPECT_EQ(b.column("i").int64_at(3), -3);
  EXPECT_EQ(b.column("g").double_at(0), 2.0);
  EXPECT_EQ(b.column("g").double_at(4), -0.25);
}

TEST(JsonValidator, TimestampFormatOption) {
  StageHarness h(*flow_plugin_entry::descriptor(), R"(
schema:
  t: {type: timestamp, format: "%d/%m/%Y %H:%M:%S.%f%z"}
  e: {type: timestamp, format: "%s", required: false}
)");
  ASSERT_TRUE(h.check().empty());
  h.open();
  h.push(raw_batch({R"({"t":"15/06/2025 11:12:01.25+02:00","e":"1749978721"})", R"({"t":"2025-06-15 09:12:01"})"}));
  ASSERT_EQ(h.output_rows(), 1u);
  EXPECT_EQ(h.output()[0].column("t").timestamp_at(0), 1'749'978'721'250'000);
  EXPECT_EQ(h.output()[0].column("e").timestamp_at(0), 1'749'978'721'000'000);
  EXPECT_EQ(h.output("invalid").at(0).column("reason").string_at(0), "bad_timestamp");
}

// --- on_invalid modes and acknowledgements --------------------------------------------------

const std::string kBad = R"({"sensor_id":1,"temperature":NaN})";

TEST(JsonValidator, DeadLetterSharesPositionsBetweenBothOutputs) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  h.push(raw_batch({kValid, kBad, kValid}, acks.track(0, 3)));
  ASSERT_EQ(h.output_rows(), 2u);
  ASSERT_EQ(h.output_rows("invalid"), 1u);
  EXPECT_EQ(acks.acked_groups(), 0u);
  h.output()[0].positions().ack();
  EXPECT_EQ(acks.acked_groups(), 0u);  // the dead letter is not durable yet
  h.output("invalid")[0].positions().ack();
  EXPECT_TRUE(acks.all_acked());
  ASSERT_EQ(acks.acked().size(), 1u);
  EXPECT_EQ(acks.acked()[0], (flow::PositionRange{"test", 0, 0, 3}));
}

TEST(JsonValidator, DeadLetterOfAFullyInvalidBatchCarriesItsPositions) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  h.push(raw_batch({kBad, "", "[]"}, acks.track(10, 13)));
  EXPECT_TRUE(h.output().empty());
  ASSERT_EQ(h.output_rows("invalid"), 3u);
  EXPECT_EQ(acks.acked_groups(), 0u);
  h.output("invalid")[0].positions().ack();
  EXPECT_TRUE(acks.all_acked());
}

TEST(JsonValidator, DropAcknowledgesOnlyWithTheValidRecordsOrWhenNothingIsLeft) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema + "on_invalid: drop\n");
  h.open();
  h.push(raw_batch({kValid, kBad}, acks.track(0, 2)));
  ASSERT_EQ(h.output_rows(), 1u);
  EXPECT_EQ(h.output_rows("invalid"), 0u);
  EXPECT_EQ(acks.acked_groups(), 0u);  // the dropped record waits for the valid one's sink
  h.output()[0].positions().ack();
  EXPECT_EQ(acks.acked_groups(), 1u);

  h.push(raw_batch({kBad, kBad}, acks.track(2, 4)));  // nothing leaves: the validator acknowledges
  EXPECT_EQ(acks.acked_groups(), 2u);
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.output().size(), 1u);
  EXPECT_EQ(h.counter("invalid_records", {{"reason", "not_finite"}}), 3u);
}

TEST(JsonValidator, UnconnectedDeadLetterOutputDropsWithAWarning) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.set_outputs_connected(false);
  h.open();
  h.push(raw_batch({kBad}, acks.track(0, 1)));
  EXPECT_TRUE(acks.all_acked());
  EXPECT_TRUE(h.output("invalid").empty());
  ASSERT_EQ(h.logs().size(), 1u);
  EXPECT_NE(h.logs()[0].find("not connected"), std::string::npos);
}

TEST(JsonValidator, FailNamesTheReasonAndPositionAndAcknowledgesNothing) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema + "on_invalid: fail\n");
  h.open();
  try {
    h.push(raw_batch({kValid, kValid, kBad}, acks.track(0, 3)));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("not_finite"), std::string::npos) << what;
    EXPECT_NE(what.find("topic 'test' partition 0 offset 2"), std::string::npos) << what;
  }
  EXPECT_TRUE(h.output().empty());
  EXPECT_EQ(acks.acked_groups(), 0u);
}

TEST(JsonValidator, MissingInputColumnIsAClearError) {
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema + "field: payload\n");
  h.open();
  try {
    h.push(raw_batch({kValid}));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no string column 'payload'"), std::string::npos) << e.what();
  }
}

TEST(JsonValidator, EmptyBatchIsAcknowledged) {
  AckLog acks;
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema);
  h.open();
  h.push(raw_batch({}, acks.track(0, 0)));
  EXPECT_TRUE(acks.all_acked());
  EXPECT_TRUE(h.output().empty());
}

// --- configuration errors --------------------------------------------------------------------

// 1-based line and column of the first occurrence of `token` in `text`.
std::pair<int, int> pos(const std::string& text, const std::string& token) {
  const auto at = text.find(token);
  EXPECT_NE(at, std::string::npos) << token;
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < at; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return {line, static_cast<int>(at - line_start) + 1};
}

TEST(JsonValidator, SchemaErrorsAreReportedAtTheirLineAndColumn) {
  const std::string config = R"(schema:
  temperature: flaot
  humidity: {type: float, min: 100, max: 0}
  ts: {type: timestamp, format: "%Y-%q"}
  sensor_id: {type: int, minn: 3}
  status: {type: string, max: 3}
  count: {type: int, allowed: [1, two]}
  nothing: {required: false}
on_invalid: dead-leter
)";
  StageHarness h(*flow_plugin_entry::descriptor(), config);
  const auto errors = h.check();
  // Option-level problems come first and stop the schema walk: fix on_invalid, then walk again.
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("did you mean 'dead-letter'"), std::string::npos) << errors[0].message;

  std::string fixed = config;
  fixed.replace(fixed.find("dead-leter"), 10, "drop");
  StageHarness h2(*flow_plugin_entry::descriptor(), fixed);
  const auto e = h2.check();
  struct Expect {
    std::string token, text;
  };
  const std::vector<Expect> expected = {
      {"flaot", "unknown type 'flaot' (did you mean 'float'?)"},
      {"100", "min 100 is greater than max 0"},
      {"\"%Y-%q\"", "unsupported directive '%q'"},
      {"minn", "unknown key 'minn' (did you mean 'min'?)"},
      {"3}\n  count", "'max' applies only to int and float fields"},
      {"two", "allowed value must be an integer"},
      {"{required: false}", "missing 'type'"},
  };
  ASSERT_EQ(e.size(), expected.size());
  for (std::size_t i = 0; i < e.size(); ++i) {
    SCOPED_TRACE(expected[i].text);
    EXPECT_NE(e[i].message.find(expected[i].text), std::string::npos) << e[i].str();
    const auto [line, column] = pos(fixed, expected[i].token);
    EXPECT_EQ(e[i].where.line, line) << e[i].str();
    EXPECT_EQ(e[i].where.column, column) << e[i].str();
  }
}

TEST(JsonValidator, SchemaIsRequiredAndMustBeAMap) {
  StageHarness none(*flow_plugin_entry::descriptor(), "field: value\n");
  ASSERT_EQ(none.check().size(), 1u);
  EXPECT_NE(none.check()[0].message.find("missing required option 'schema'"), std::string::npos);

  StageHarness list(*flow_plugin_entry::descriptor(), "schema: [a, b]\n");
  ASSERT_EQ(list.check().size(), 1u);
  EXPECT_EQ(list.check()[0].where.line, 1);
  EXPECT_EQ(list.check()[0].where.column, 9);
  EXPECT_THROW(list.open(), std::runtime_error);

  StageHarness short_form(*flow_plugin_entry::descriptor(), "schema: {temperature: float, id: int}\n");
  EXPECT_TRUE(short_form.check().empty());
}

}  // namespace

// --- the conformance sample ---------------------------------------------------------------

TEST(JsonValidator, ConformanceSampleIsValidForTheConfiguredSchema) {
  const std::vector<std::string> configs = {
      kSchema,
      "schema:\n  t: {type: timestamp, format: \"%d/%m/%Y %H:%M:%S.%f%z\"}\n  e: {type: timestamp, format: \"%s\"}\n",
      "field: payload\nschema:\n  id: {type: int, min: 100, max: 200}\n  level: {type: string, allowed: [low, high]}\n"
      "  ok: {type: bool, allowed: [true]}\n  x: {type: float, min: -1, max: 1}\n  n: {type: int, allowed: [3, 5]}\n",
  };
  const auto& d = *flow_plugin_entry::descriptor();
  for (const auto& config : configs) {
    SCOPED_TRACE(config);
    auto sample = d.sample_input(flow::testing::yaml(config), flow::SampleRequest{50, 7, 1'750'000'000'000'000, "/tmp"});
    ASSERT_TRUE(sample.has_value());
    ASSERT_EQ(sample->num_rows(), 50u);
    StageHarness h(d, config);
    h.open();
    h.push(std::move(*sample));
    EXPECT_EQ(h.output_rows(), 50u);
    EXPECT_EQ(h.output_rows("invalid"), 0u) << h.output("invalid").at(0).column("message").string_at(0);
  }
}

// `threads` splits a batch's rows between threads: the outputs must be the batch one thread
// makes, row for row (valid rows, dead letters with their offsets, counters), and on_invalid:
// fail must name the first invalid row even when a helper's share holds it.
std::vector<std::string> mixed_messages(std::size_t n) {
  const auto bad = catalogue();
  std::vector<std::string> raws;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 7 == 3) raws.push_back(bad[(i / 7) % bad.size()].raw);
    else raws.push_back(R"({"sensor_id":)" + std::to_string(i + 1) + R"(,"temperature":)" + std::to_string(i % 50) +
                        R"(.5,"humidity":50,"timestamp":"2025-06-15 09:12:0)" + std::to_string(i % 10) + R"(",)" +
                        (i % 5 ? R"("status":"ok")" : R"("status":null)") + "}");
  }
  return raws;
}

void expect_same_batch(const flow::Batch& a, const flow::Batch& b) {
  ASSERT_TRUE(a.consistent());
  ASSERT_TRUE(b.consistent());
  ASSERT_EQ(*a.schema(), *b.schema());
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (std::size_t c = 0; c < a.num_columns(); ++c)
    for (std::size_t r = 0; r < a.num_rows(); ++r) {
      SCOPED_TRACE("column " + a.schema()->field(c).name + " row " + std::to_string(r));
      ASSERT_EQ(a.column(c).is_null(r), b.column(c).is_null(r));
      switch (a.column(c).type()) {
        case flow::Type::String: ASSERT_EQ(a.column(c).string_at(r), b.column(c).string_at(r)); break;
        case flow::Type::Float64: ASSERT_EQ(a.column(c).double_at(r), b.column(c).double_at(r)); break;
        case flow::Type::Bool: ASSERT_EQ(a.column(c).bool_at(r), b.column(c).bool_at(r)); break;
        default: ASSERT_EQ(a.column(c).int64_at(r), b.column(c).int64_at(r)); break;
      }
    }
}

TEST(JsonValidator, ThreadsSplitABatchAndJoinItInRowOrder) {
  const auto raws = mixed_messages(2000);
  StageHarness one(*flow_plugin_entry::descriptor(), kSchema + "threads: 1\n");
  StageHarness three(*flow_plugin_entry::descriptor(), kSchema + "threads: 3\n");
  ASSERT_TRUE(three.check().empty());
  one.open();
  three.open();
  AckLog acks;
  for (int round = 0; round < 3; ++round) {  // helpers are reused batch after batch
    one.push(raw_batch(raws));
    three.push(raw_batch(raws, acks.track(round * 2000, (round + 1) * 2000)));
  }
  ASSERT_EQ(one.output().size(), 3u);
  ASSERT_EQ(three.output().size(), 3u);
  ASSERT_EQ(three.output("invalid").size(), 3u);
  for (int round = 0; round < 3; ++round) {
    expect_same_batch(one.output()[round], three.output()[round]);
    expect_same_batch(one.output("invalid")[round], three.output("invalid")[round]);
  }
  EXPECT_EQ(three.output_rows(), 3 * (raws.size() - (raws.size() + 3) / 7));
  for (const auto& c : catalogue())
    EXPECT_EQ(three.counter("invalid_records", {{"reason", c.reason}}), one.counter("invalid_records", {{"reason", c.reason}}))
        << c.reason;
  EXPECT_GT(three.counter("invalid_records", {{"reason", "malformed_json"}}), 0u);
}

// Batch after batch of every size: chunks are taken by whichever thread comes first (a helper
// may wake after its batch is done), and the output is still the one thread's, row for row.
TEST(JsonValidator, ThreadsGiveTheSameBatchesWhoeverTakesTheChunks) {
  const auto raws = mixed_messages(1500);
  StageHarness one(*flow_plugin_entry::descriptor(), kSchema + "threads: 1\n");
  StageHarness two(*flow_plugin_entry::descriptor(), kSchema + "threads: 2\n");
  one.open();
  two.open();
  std::size_t batches = 0;
  for (std::size_t size : {1, 127, 128, 255, 256, 257, 1000, 1500, 3, 999, 513}) {
    for (int repeat = 0; repeat < 20; ++repeat, ++batches) {
      const std::vector<std::string> part(raws.begin(), raws.begin() + static_cast<std::ptrdiff_t>(size));
      one.push(raw_batch(part));
      two.push(raw_batch(part));
    }
  }
  ASSERT_EQ(two.output().size(), one.output().size());
  for (std::size_t b = 0; b < one.output().size(); ++b) expect_same_batch(one.output()[b], two.output()[b]);
  ASSERT_EQ(two.output("invalid").size(), one.output("invalid").size());
  for (std::size_t b = 0; b < one.output("invalid").size(); ++b)
    expect_same_batch(one.output("invalid")[b], two.output("invalid")[b]);
  for (const auto& c : catalogue())
    EXPECT_EQ(two.counter("invalid_records", {{"reason", c.reason}}), one.counter("invalid_records", {{"reason", c.reason}}))
        << c.reason;
  EXPECT_EQ(batches, 220u);
  EXPECT_GT(one.output_rows(), 0u);
}

std::size_t threads_of_this_process() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// By default the stage validates on its own thread; threads: 0 takes a helper thread where
// there is a second core.
TEST(JsonValidator, OneThreadByDefaultAndASecondCoreWithThreadsZero) {
  const std::size_t before = threads_of_this_process();
  StageHarness by_default(*flow_plugin_entry::descriptor(), kSchema);
  by_default.open();
  EXPECT_EQ(threads_of_this_process(), before);
  by_default.close();
  StageHarness automatic(*flow_plugin_entry::descriptor(), kSchema + "threads: 0\n");
  automatic.open();
  EXPECT_EQ(threads_of_this_process() - before, std::thread::hardware_concurrency() >= 2 ? 1u : 0u);
  automatic.close();
  EXPECT_EQ(threads_of_this_process(), before);
}

// Helper threads carry the stage id and their number (top -H, perf), the number kept whole when
// the id is cut to the 15 bytes Linux keeps.
TEST(JsonValidator, HelperThreadsAreNamedAfterTheStage) {
  auto names = [] {
    std::set<std::string> out;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      out.insert(name);
    }
    return out;
  };
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema + "threads: 3\n");
  h.open();
  const auto seen = names();
  EXPECT_TRUE(seen.count("stage-under-t+1")) << ::testing::PrintToString(seen);  // "stage-under-test" cut
  EXPECT_TRUE(seen.count("stage-under-t+2")) << ::testing::PrintToString(seen);
  EXPECT_FALSE(seen.count("stage-under-t+3"));
  h.close();
}

TEST(JsonValidator, ThreadsFailOnTheFirstInvalidRowWhicheverShareHoldsIt) {
  std::vector<std::string> raws(1000, kValid);
  raws[900] = kBad;  // in the last helper's share
  raws[950] = "[]";
  StageHarness h(*flow_plugin_entry::descriptor(), kSchema + "on_invalid: fail\nthreads: 4\n");
  h.open();
  try {
    h.push(raw_batch(raws));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("offset 900"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(h.output().empty());
}
