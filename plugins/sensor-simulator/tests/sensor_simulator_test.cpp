#include <gtest/gtest.h>

#include <charconv>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"
#include "reading_generator.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

using flow::testing::StageHarness;

struct Record {
  std::string key, value;
  int64_t offset = 0, time = 0;
  bool operator==(const Record&) const = default;
};

std::vector<Record> records(StageHarness& h) {
  std::vector<Record> out;
  for (const auto& b : h.output()) {
    EXPECT_TRUE(b.consistent());
    EXPECT_EQ(*b.schema(), *flow::raw_message_schema());
    for (std::size_t i = 0; i < b.num_rows(); ++i)
      out.push_back({std::string(b.column("key").string_at(i)), std::string(b.column("value").string_at(i)),
                     b.column("offset").int64_at(i), b.column("timestamp").timestamp_at(i)});
  }
  return out;
}

std::vector<Record> run(const std::string& config, int cycle = 0) {
  StageHarness h(*flow_plugin_entry::descriptor(), config);
  EXPECT_TRUE(h.check().empty());
  h.set_cycle(cycle);
  h.open();
  h.run_source();
  h.close();
  return records(h);
}

const std::string kStart = "{sensors: 5, rate: 0, start_time: '2025-06-15 09:12:01', ";
const std::string kBase = kStart + "batch_size: 100, ";

int64_t micros(int y, unsigned m, unsigned d, int hh, int mm, int ss) {
  return (flow_sim::days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss) * 1'000'000;
}

double number_after(const std::string& json, const std::string& key) {
  const auto p = json.find("\"" + key + "\":");
  EXPECT_NE(p, std::string::npos) << json;
  const char* b = json.data() + p + key.size() + 3;
  double v = 0;
  std::from_chars(b, json.data() + json.size(), v);
  return v;
}

TEST(SensorSimulator, SameSeedGivesSameStreamAndDifferentSeedADifferentOne) {
  const auto a = run(kBase + "max_records: 500, seed: 7}");
  const auto b = run(kBase + "max_records: 500, seed: 7}");
  const auto c = run(kBase + "max_records: 500, seed: 8}");
  ASSERT_EQ(a.size(), 500u);
  EXPECT_EQ(a, b);
  ASSERT_EQ(c.size(), 500u);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i].value == c[i].value;
  EXPECT_LT(same, 50u);
}

TEST(SensorSimulator, PluginStreamEqualsTheGeneratorClass) {
  const auto got = run(kBase + "max_records: 321, seed: 99, invalid_ratio: 0.2}");
  flow_sim::GeneratorSettings s;
  s.sensors = 5;
  s.seed = 99;
  s.start_micros = micros(2025, 6, 15, 9, 12, 1);
  s.invalid_ratio = 0.2;
  flow_sim::ReadingGenerator gen(s);
  ASSERT_EQ(got.size(), 321u);
  for (const auto& rec : got) {
    flow_sim::Reading r;
    const std::string v(gen.next(r));
    ASSERT_EQ(rec.value, v);
    EXPECT_EQ(rec.key, std::to_string(r.sensor_id));
    EXPECT_EQ(rec.offset, r.seq);
    EXPECT_EQ(rec.time, r.time_micros);
  }
}

TEST(SensorSimulator, JsonShapeIsExact) {
  const auto got = run(kBase + "max_records: 5000}");
  ASSERT_EQ(got.size(), 5000u);
  const std::regex shape(
      R"re(\{"sensor_id":([1-5]),"temperature":(-?\d{1,2}\.\d),"humidity":(\d{1,3}\.\d),"timestamp":"(2025-06-15 \d\d:\d\d:\d\d)"\})re");
  for (std::size_t i = 0; i < got.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(got[i].value, m, shape)) << got[i].value;
    EXPECT_EQ(m[1].str(), got[i].key);
    EXPECT_EQ(std::stoul(m[1].str()), i % 5 + 1);
    EXPECT_EQ(got[i].offset, static_cast<int64_t>(i));
    const double t = number_after(got[i].value, "temperature"), hum = number_after(got[i].value, "humidity");
    EXPECT_GE(t, -20.0);
    EXPECT_LE(t, 50.0);
    EXPECT_GE(hum, 0.0);
    EXPECT_LE(hum, 100.0);
  }
  // Round r has reading time start + r seconds (rate 0 advances the clock 1 s per round).
  EXPECT_EQ(got[0].time, micros(2025, 6, 15, 9, 12, 1));
  EXPECT_NE(got[0].value.find("\"timestamp\":\"2025-06-15 09:12:01\""), std::string::npos);
  EXPECT_EQ(got[5].time, micros(2025, 6, 15, 9, 12, 2));
  EXPECT_NE(got[5].value.find("\"timestamp\":\"2025-06-15 09:12:02\""), std::string::npos);
  EXPECT_EQ(got[4999].time, micros(2025, 6, 15, 9, 12, 1) + 999'000'000);
  // A random walk: consecutive readings of a sensor stay close.
  for (std::size_t i = 5; i < got.size(); ++i)
    EXPECT_LE(std::abs(number_after(got[i].value, "temperature") - number_after(got[i - 5].value, "temperature")), 2.0);
}

TEST(SensorSimulator, RateSetsTheSimulatedIntervalAndFormatIsHonoured) {
  flow_sim::GeneratorSettings s;
  s.sensors = 2;
  s.interval_micros = 250'000;
  s.start_micros = micros(2025, 6, 15, 9, 12, 1);
  s.timestamp_format = "%FT%T.%fZ";
  flow_sim::ReadingGenerator gen(s);
  flow_sim::Reading r;
  for (int i = 0; i < 4; ++i) gen.next(r);
  const std::string third_round(gen.next(r));
  EXPECT_EQ(r.time_micros, s.start_micros + 500'000);
  EXPECT_NE(third_round.find("\"timestamp\":\"2025-06-15T09:12:01.500000Z\""), std::string::npos) << third_round;
}

TEST(SensorSimulator, MaxRecordsIsHonouredInBatches) {
  StageHarness h(*flow_plugin_entry::descriptor(), kStart + "max_records: 2500, batch_size: 1000}");
  h.open();
  h.run_source();
  auto& out = h.output();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].num_rows(), 1000u);
  EXPECT_EQ(out[1].num_rows(), 1000u);
  EXPECT_EQ(out[2].num_rows(), 500u);
  EXPECT_EQ(h.output_rows(), 2500u);
}

TEST(SensorSimulator, PositionsCoverTheBatchAndAcknowledgementsAreCounted) {
  StageHarness h(*flow_plugin_entry::descriptor(), kBase + "max_records: 250}");
  h.open();
  h.run_source();
  auto& out = h.output();
  ASSERT_EQ(out.size(), 3u);
  int64_t next = 0;
  for (auto& b : out) {
    const auto ranges = b.positions().ranges();
    ASSERT_EQ(ranges.size(), 1u);
    EXPECT_EQ(ranges[0].source, "stage-under-test");
    EXPECT_EQ(ranges[0].begin, next);
    EXPECT_EQ(ranges[0].end, next + static_cast<int64_t>(b.num_rows()));
    next = ranges[0].end;
  }
  EXPECT_EQ(h.counter("acked_records"), 0u);
  out[0].positions().ack();
  out[2].positions().ack();
  EXPECT_EQ(h.counter("acked_records"), 150u);
  out[1].positions().ack();
  EXPECT_EQ(h.counter("acked_records"), 250u);
}

TEST(SensorSimulator, InvalidRatioProducesEveryKindReproducibly) {
  const std::string config = kBase + "max_records: 6000, seed: 3, invalid_ratio: 0.3}";
  StageHarness h(*flow_plugin_entry::descriptor(), config);
  h.open();
  h.run_source();
  const auto got = records(h);
  uint64_t total = 0;
  for (auto kind : flow_sim::kInvalidKindNames) {
    const auto n = h.counter("invalid_generated", {{"kind", std::string(kind)}});
    EXPECT_GT(n, 100u) << kind;
    total += n;
  }
  EXPECT_GT(total, 1500u);  // 0.3 * 6000 = 1800, sd about 35
  EXPECT_LT(total, 2100u);
  EXPECT_EQ(got, run(config));

  // Each kind looks like what it claims, and the valid records are those of invalid_ratio 0.
  const auto clean = run(kBase + "max_records: 6000, seed: 3}");
  flow_sim::GeneratorSettings s;
  s.sensors = 5;
  s.seed = 3;
  s.start_micros = micros(2025, 6, 15, 9, 12, 1);
  s.invalid_ratio = 0.3;
  flow_sim::ReadingGenerator gen(s);
  for (std::size_t i = 0; i < got.size(); ++i) {
    flow_sim::Reading r;
    gen.next(r);
    const std::string& v = got[i].value;
    switch (r.invalid) {
      case flow_sim::InvalidKind::None: EXPECT_EQ(v, clean[i].value); break;
      case flow_sim::InvalidKind::Truncated:
        EXPECT_LT(v.size(), clean[i].value.size());
        EXPECT_EQ(clean[i].value.substr(0, v.size()), v);
        break;
      case flow_sim::InvalidKind::MissingField: {
        int keys = 0;
        for (const char* k : {"\"sensor_id\":", "\"temperature\":", "\"humidity\":", "\"timestamp\":"})
          keys += v.find(k) != std::string::npos;
        EXPECT_EQ(keys, 3) << v;
        break;
      }
      case flow_sim::InvalidKind::WrongType: EXPECT_NE(v, clean[i].value); break;
      case flow_sim::InvalidKind::OutOfRange: {
        const double t = number_after(v, "temperature"), hum = number_after(v, "humidity");
        EXPECT_TRUE(t < -20 || t > 50 || hum > 100) << v;
        break;
      }
      case flow_sim::InvalidKind::NaN: EXPECT_NE(v.find(":NaN"), std::string::npos) << v; break;
      case flow_sim::InvalidKind::Garbage:
        EXPECT_TRUE(v.find('\xff') != std::string::npos || v.find('\xfe') != std::string::npos);
        break;
    }
  }
}

TEST(SensorSimulator, StopsPromptlyWhenPacedOrUnlimited) {
  {
    // Paced at one round a second: the first partial batch leaves after 20ms, then stop.
    StageHarness h(*flow_plugin_entry::descriptor(), "{sensors: 3, rate: 1}");
    h.open();
    h.run_source(1, std::chrono::seconds(10));
    ASSERT_GE(h.output().size(), 1u);
    EXPECT_EQ(h.output()[0].num_rows(), 3u);
  }
  {
    // As fast as possible, never ending, blocked by a full output: stop still ends it.
    StageHarness h(*flow_plugin_entry::descriptor(), "{rate: 0, batch_size: 10}");
    h.set_capacity(2);
    h.open();
    h.run_source(2, std::chrono::seconds(10));
    // The stop lets the pipeline drain, so the batch it was blocked on still arrives; then it ends.
    EXPECT_GE(h.output().size(), 2u);
    EXPECT_LE(h.output().size(), 3u);
  }
}

TEST(SensorSimulator, CyclesNeverRepeatARecord) {
  // Separate processes-worth of harnesses: cycle 1 continues where a full cycle 0 ended.
  const std::string config = kBase + "max_records: 500}";
  const auto c0 = run(config, 0), c1 = run(config, 1);
  ASSERT_EQ(c1.size(), 500u);
  EXPECT_EQ(c1.front().offset, 500);
  EXPECT_EQ(c1.front().time, c0.back().time + 1'000'000);
  std::set<std::string> values;
  for (const auto& r : c0) values.insert(r.value);
  for (const auto& r : c1) EXPECT_EQ(values.count(r.value), 0u) << r.value;

  // One run (shared state across cycles), cycle 0 stopped early: cycle 1 continues from there.
  // The harness cannot restart a stopped stage, so cycle 1 runs in a second harness that is
  // handed the same shared object, as the runtime does for every cycle of a run.
  StageHarness h0(*flow_plugin_entry::descriptor(), kStart + "batch_size: 7}");
  h0.open();
  h0.run_source(3);
  h0.close();
  const auto first = records(h0);
  ASSERT_FALSE(first.empty());
  const auto key = flow_sim::stream_state_key("stage-under-test");
  auto state = h0.context().shared<flow_sim::StreamState>(key, [] { return std::make_shared<flow_sim::StreamState>(); });
  EXPECT_TRUE(state->valid);
  EXPECT_EQ(state->next_seq, first.back().offset + 1);

  StageHarness h1(*flow_plugin_entry::descriptor(), kStart + "batch_size: 7}");
  h1.context().shared<flow_sim::StreamState>(key, [&] { return state; });
  h1.set_cycle(1);
  h1.open();
  h1.run_source(3);
  h1.close();
  auto all = first;
  const auto second = records(h1);
  ASSERT_FALSE(second.empty());
  all.insert(all.end(), second.begin(), second.end());
  std::set<std::pair<std::string, int64_t>> seen;  // (sensor, time) identifies a reading
  std::set<int64_t> offsets;
  for (const auto& r : all) {
    EXPECT_TRUE(seen.insert({r.key, r.time}).second) << r.key << "@" << r.time;
    EXPECT_TRUE(offsets.insert(r.offset).second) << r.offset;
  }
  EXPECT_EQ(second.front().offset, first.back().offset + 1);
  EXPECT_GT(second.front().time, first.back().time);
}

TEST(SensorSimulator, ConfigErrorsNameTheirPosition) {
  StageHarness h(*flow_plugin_entry::descriptor(),
                 "sensors: 0\nstart_time: 'yesterday'\ntimestamp_format: '%Y %Q'\n");
  const auto errors = h.check();
  ASSERT_EQ(errors.size(), 1u);  // range errors first; cross-option checks run on a valid table
  EXPECT_EQ(errors[0].where.line, 1);
  EXPECT_NE(errors[0].message.find("sensors"), std::string::npos);

  StageHarness h2(*flow_plugin_entry::descriptor(), "sensors: 2\nstart_time: 'yesterday'\ntimestamp_format: '%Y %Q'\n");
  const auto e2 = h2.check();
  ASSERT_EQ(e2.size(), 2u);
  EXPECT_EQ(e2[0].where.line, 2);
  EXPECT_EQ(e2[0].where.column, 13);
  EXPECT_NE(e2[0].message.find("yesterday"), std::string::npos);
  EXPECT_EQ(e2[1].where.line, 3);
  EXPECT_NE(e2[1].message.find("'%Q'"), std::string::npos);
}

TEST(SensorSimulator, StartTimeParsing) {
  EXPECT_EQ(flow_sim::parse_start_time("2025-06-15 09:12:01"), micros(2025, 6, 15, 9, 12, 1));
  EXPECT_EQ(flow_sim::parse_start_time("2025-06-15T09:12:01.5Z"), micros(2025, 6, 15, 9, 12, 1) + 500'000);
  EXPECT_FALSE(flow_sim::parse_start_time("2025-02-29 00:00:00"));
  EXPECT_FALSE(flow_sim::parse_start_time("2025-06-15 24:00:00"));
  EXPECT_FALSE(flow_sim::parse_start_time("2025-06-15"));
  std::string s;
  flow_sim::format_time(s, "%F %T", micros(1969, 12, 31, 23, 59, 59));
  EXPECT_EQ(s, "1969-12-31 23:59:59");
}

}  // namespace
