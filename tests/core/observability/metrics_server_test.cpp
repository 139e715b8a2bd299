#include "observability/metrics_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

namespace {

flow::runtime::Snapshot sample() {
  flow::runtime::Snapshot s;
  s.pipeline = "iot";
  s.cycle = 1;
  flow::runtime::StageReport v;
  v.id = "validate";
  v.plugin = "json-validator";
  v.records_in = 100;
  v.records_out = 97;
  v.counters = {{"invalid_records{reason=\"nan\"}", 3}};
  s.stages.push_back(v);
  flow::runtime::ChannelStats c;
  c.depth = 2;
  c.max_batches = 8;
  c.bytes = 4096;
  c.blocked_ns = 1'500'000'000;
  s.channels.emplace_back("->validate", c);
  return s;
}

TEST(Metrics, PrometheusTextHasStageChannelAndPluginCounters) {
  const auto text = flow::observability::prometheus_text(sample());
  EXPECT_THAT(text, ::testing::HasSubstr("flow_stage_records_in_total{pipeline=\"iot\",stage=\"validate\"} 100\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("flow_stage_records_out_total{pipeline=\"iot\",stage=\"validate\"} 97\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "flow_plugin_invalid_records_total{pipeline=\"iot\",stage=\"validate\",reason=\"nan\"} 3\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("flow_channel_depth_batches{pipeline=\"iot\",channel=\"->validate\"} 2\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("flow_channel_writer_blocked_seconds_total{pipeline=\"iot\",channel=\"->validate\"} 1.500000\n"));
}

// Plugin gauges (kafka-source's lag): a gauge family in Prometheus, "gauges" in the JSON; and
// the run's cycles and durations, from which `flowctl top` shows the time left.
TEST(Metrics, GaugesAndCycleTimesAreExported) {
  auto s = sample();
  s.stages[0].gauges = {{"kafka_partition_lag{topic=\"t\",partition=\"3\"}", 42}};
  s.cycles = 3;
  s.duration_seconds = 10;
  s.cycle_seconds = 4;
  const auto text = flow::observability::prometheus_text(s);
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE flow_plugin_kafka_partition_lag gauge\n"
                                         "flow_plugin_kafka_partition_lag{pipeline=\"iot\",stage=\"validate\",topic=\"t\","
                                         "partition=\"3\"} 42\n"));
  const auto json = flow::observability::snapshot_json(s);
  EXPECT_THAT(json, ::testing::HasSubstr("\"gauges\":{\"kafka_partition_lag{topic=\\\"t\\\",partition=\\\"3\\\"}\":42}"));
  EXPECT_THAT(json, ::testing::HasSubstr("\"cycles\":3,\"duration_seconds\":10.000,\"cycle_seconds\":4.000"));
  s.duration_seconds.reset();
  EXPECT_THAT(flow::observability::snapshot_json(s), ::testing::HasSubstr("\"duration_seconds\":null"));
}

TEST(Metrics, ServerAnswersOverHttp) {
  flow::observability::MetricsServer server("127.0.0.1", 0, [] { return sample(); });
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  auto m = client.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_THAT(m->body, ::testing::HasSubstr("flow_stage_records_in_total"));
  auto j = client.Get("/metrics.json");
  ASSERT_TRUE(j);
  EXPECT_THAT(j->body, ::testing::HasSubstr("\"counters\":{\"invalid_records{reason=\\\"nan\\\"}\":3}"));
  auto d = client.Get("/");
  ASSERT_TRUE(d);
  EXPECT_THAT(d->body, ::testing::HasSubstr("<title>Flow</title>"));
}

TEST(Metrics, PostReloadAnswersWithTheReloadersStatusAndText) {
  flow::observability::DashboardInfo info;
  int calls = 0;
  info.reload = [&calls] {
    ++calls;
    return std::pair{422, std::string("p.yaml:3:5: error: stage 'csv': option 'window': bad\n")};
  };
  flow::observability::MetricsServer server("127.0.0.1", 0, [] { return sample(); }, info);
  httplib::Client client("127.0.0.1", server.port());
  auto r = client.Post("/reload");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  EXPECT_THAT(r->body, ::testing::HasSubstr("p.yaml:3:5: error"));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(client.Get("/reload")->status, 404);  // only POST reloads: a browser's GET does not
  flow::observability::MetricsServer without("127.0.0.1", 0, [] { return sample(); });
  httplib::Client other("127.0.0.1", without.port());
  auto n = other.Post("/reload");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->status, 404);
}

}  // namespace
