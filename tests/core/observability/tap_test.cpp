// Taps: bounded per-reader queues that lose samples (and count them), never block the emitter.
#include "runtime/tap.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/log.hpp"

namespace {

using flow::Batch;
using flow::Column;
using flow::Type;

Batch readings(int n, int first_id = 0) {
  Batch b;
  Column id(Type::Int64), temp(Type::Float64), name(Type::String);
  for (int i = 0; i < n; ++i) {
    id.append_int64(first_id + i);
    temp.append_double(20.5 + i);
    name.append_string(i % 2 ? "b\"q" : "a");
  }
  b.add_column("sensor_id", std::move(id)).add_column("temperature", std::move(temp)).add_column("name", std::move(name));
  return b;
}

TEST(Tap, RowJsonHasEveryColumnTyped) {
  auto b = readings(2);
  EXPECT_EQ(flow::runtime::row_json(b, 1), R"({"sensor_id":1,"temperature":21.5,"name":"b\"q"})");
}

// Latin-1 or binary bytes in a string column (a Kafka value, a CSV field) still make valid JSON:
// each invalid UTF-8 sequence becomes U+FFFD (flow/text.hpp), valid UTF-8 stays as it is.
TEST(Tap, RowJsonReplacesInvalidUtf8) {
  Batch b;
  Column name(Type::String);
  name.append_string("caf\xE9 \xC3\xA9 \xFF\xFE");
  b.add_column("name", std::move(name));
  EXPECT_EQ(flow::runtime::row_json(b, 0), "{\"name\":\"caf\xEF\xBF\xBD \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST(Tap, InactiveWithoutReadersAndActiveWhileSubscribed) {
  flow::runtime::TapHub hub;
  auto p = hub.point("validate");
  EXPECT_FALSE(p->active());
  {
    auto sub = hub.subscribe("validate");
    EXPECT_TRUE(p->active());
  }
  EXPECT_FALSE(p->active());
}

TEST(Tap, ASlowReaderLosesSamplesAndIsToldHowMany) {
  flow::runtime::TapHub hub;
  auto p = hub.point("validate");
  auto slow = hub.subscribe("validate", 4);
  auto fast = hub.subscribe("validate", 100);
  p->offer(readings(3, 0));
  p->offer(readings(3, 3));  // the slow reader has room for one more
  uint64_t dropped = 0;
  auto rows = slow->pop(std::chrono::milliseconds(0), dropped);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(dropped, 2u);
  EXPECT_THAT(rows[3], ::testing::HasSubstr("\"sensor_id\":3"));
  uint64_t fast_dropped = 0;
  EXPECT_EQ(fast->pop(std::chrono::milliseconds(0), fast_dropped).size(), 6u);
  EXPECT_EQ(fast_dropped, 0u);
  // Once read, the slow reader has room again and its loss count starts over.
  p->offer(readings(1, 9));
  dropped = 0;
  rows = slow->pop(std::chrono::milliseconds(0), dropped);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(dropped, 0u);
}

TEST(Log, JsonFormatIsOneObjectWithTimeLevelStageMessage) {
  using namespace std::chrono;
  const auto t = sys_days{year{2026} / 11 / 30} + hours{5} + milliseconds{1234};
  EXPECT_EQ(flow::runtime::format_log_line(flow::runtime::LogFormat::Json, t, flow::LogLevel::Warn, "consume",
                                           "librdkafka FAIL: \"down\"\n"),
            R"({"time":"2026-11-30T05:00:01.234Z","level":"warn","stage":"consume","message":"librdkafka FAIL: \"down\"\n"})");
  EXPECT_EQ(flow::runtime::format_log_line(flow::runtime::LogFormat::Text, t, flow::LogLevel::Info, "sim", "hi"),
            "2026-11-30T05:00:01.234Z INFO  [sim] hi");
}

}  // namespace
