// kafka-sink against an in-test mock cluster.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "flow/testing/harness.hpp"
#include "flow_kafka/common.hpp"
#include "retention_guard.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {
const flow::PluginDescriptor& desc() { return *flow_plugin_entry::descriptor(); }

TEST(KafkaSinkConfig, RejectsUnknownCompression) {
  flow::testing::StageHarness h(desc(), "{brokers: embedded, topic: t, compression: brotli}");
  auto errors = h.check();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("compression"), std::string::npos);
}

TEST(KafkaSink, AcknowledgesAfterDeliveryAndMessagesArrive) {
  flow::kafka::EmbeddedBroker broker(3);
  broker.ensure_topic("out", 3);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() + "', topic: out}");
  h.open();
  flow::testing::AckLog acks;
  h.push(flow::testing::raw_batch({"a", "b", "c"}, acks.track(0, 3)));
  h.push(flow::testing::raw_batch({"d"}, acks.track(3, 4)));
  h.finish();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("delivered"), 4u);
  h.close();

  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", broker.bootstrap()).set("group.id", "check").set("auto.offset.reset", "earliest");
  rd_kafka_t* c = conf.create(RD_KAFKA_CONSUMER);
  rd_kafka_poll_set_consumer(c);
  flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(3));
  for (int p = 0; p < 3; ++p) rd_kafka_topic_partition_list_add(list.get(), "out", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, list.get());
  std::multiset<std::string> seen;
  for (int i = 0; i < 100 && seen.size() < 4; ++i)
    if (auto* m = rd_kafka_consumer_poll(c, 100)) {
      if (!m->err) seen.insert(std::string(static_cast<char*>(m->payload), m->len));
      rd_kafka_message_destroy(m);
    }
  EXPECT_EQ(seen, (std::multiset<std::string>{"a", "b", "c", "d"}));
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
}

TEST(KafkaSink, MissingColumnNamesIt) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() + "', topic: t, value_column: payload}");
  h.open();
  try {
    h.push(flow::testing::raw_batch({"x"}));
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("payload"), std::string::npos) << e.what();
  }
  h.close();
}

TEST(KafkaSink, MissingTopicFailsOpen) {
  flow::kafka::EmbeddedBroker broker(1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() + "', topic: nope}");
  try {
    h.open();
    FAIL() << "open succeeded";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

// ---- the retention guard ----------------------------------------------------------------------

TEST(PartitionLedger, CountsWhatIsPastTheCommittedOffset) {
  flow::kafka::PartitionLedger l;
  for (int64_t o = 10; o < 20; ++o) l.add(o, 100);
  EXPECT_EQ(l.unconsumed(10).bytes, 1000);
  EXPECT_EQ(l.unconsumed(15).bytes, 500);
  EXPECT_EQ(l.unconsumed(15).records, 5);
  EXPECT_EQ(l.unconsumed(20).bytes, 0);
  // Below the first offset it saw (an earlier run's records): at this producer's average size.
  EXPECT_EQ(l.unconsumed(4).records, 16);
  EXPECT_EQ(l.unconsumed(4).bytes, 1600);
  l.consumed_to(20);
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.unconsumed(0).bytes, 0);
}

TEST(PartitionLedger, KeepsNoMoreThanTheLogCanHold) {
  flow::kafka::PartitionLedger l;
  const int64_t n = 4 * flow::kafka::kMockMaxBytes / 1000;  // twice what the mock keeps, in 1000-byte records
  for (int64_t o = 0; o < n; ++o) l.add(o, 1000);
  const auto u = l.unconsumed(n / 2);
  EXPECT_NEAR(static_cast<double>(u.bytes), n / 2 * 1000.0, 64 * 1024);
  EXPECT_EQ(u.records, n - n / 2);
}

// A consumer group's offset, committed from outside (as a slow consumer would).
void commit(const std::string& bootstrap, const std::string& group, const std::string& topic, int64_t offset) {
  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", bootstrap).set("group.id", group).unlisted();
  rd_kafka_t* c = conf.create(RD_KAFKA_CONSUMER);
  flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0)->offset = offset;
  EXPECT_EQ(rd_kafka_commit(c, list.get(), 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(c);
}

int64_t end_offset(const std::string& bootstrap, const std::string& topic) {
  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", bootstrap);
  rd_kafka_t* c = conf.create(RD_KAFKA_PRODUCER);
  int64_t lo = -1, hi = -1;
  rd_kafka_query_watermark_offsets(c, topic.c_str(), 0, &lo, &hi, 5000);
  rd_kafka_destroy(c);
  return hi;
}

bool eventually(const std::function<bool()>& f, std::chrono::seconds within = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

std::vector<std::string> values(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  return v;
}

// Pushes a batch of n records from its own thread, since process() may wait; done() once it returned.
class BackgroundPush {
 public:
  BackgroundPush(flow::testing::StageHarness& h, flow::testing::AckLog& acks, int n)
      : thread_([&h, &acks, n, this] {
          h.push(flow::testing::raw_batch(values(n), acks.track(0, n)));
          done_ = true;
        }) {}
  ~BackgroundPush() { join(); }
  bool done() const { return done_.load(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: starts after done_
};

// 200 records of ~130 bytes past a limit of 2 KiB: process() waits until group 'g' commits.
TEST(KafkaSinkRetentionGuard, WaitsForTheWatchedGroupThenProducesEverything) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topic: t, watch_groups: g, max_unconsumed_bytes: 2KiB}");
  h.open();
  flow::testing::AckLog acks;
  BackgroundPush push(h, acks, 200);
  ASSERT_TRUE(eventually([&] { return h.counter("retention_waits") >= 1; }));
  EXPECT_FALSE(push.done());
  const int64_t held = end_offset(broker.bootstrap(), "t");
  EXPECT_GT(held, 0);
  EXPECT_LT(held, 20);  // 2 KiB of ~130-byte records
  // The consumer catches up, again and again, until all 200 are in.
  EXPECT_TRUE(eventually([&] {
    commit(broker.bootstrap(), "g", "t", end_offset(broker.bootstrap(), "t"));
    return push.done();
  }));
  push.join();
  h.finish();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("delivered"), 200u);
  EXPECT_EQ(end_offset(broker.bootstrap(), "t"), 200);
  h.close();
  bool said = false, resumed = false;
  for (const auto& l : h.logs()) {
    said = said || l.find("t[0] holds") != std::string::npos;
    resumed = resumed || l.find("consumer group 'g' keeps up again") != std::string::npos;
  }
  EXPECT_TRUE(said);
  EXPECT_TRUE(resumed);
}

// A stop that tells the stage to give up (an abort) wakes the wait: nothing more is produced,
// and the batch is not acknowledged.
TEST(KafkaSinkRetentionGuard, AbortWakesTheWait) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topic: t, watch_groups: g, max_unconsumed_bytes: 2KiB, "
                                            "retention_stall_timeout: 0}");
  h.open();
  flow::testing::AckLog acks;
  BackgroundPush push(h, acks, 200);
  ASSERT_TRUE(eventually([&] { return h.counter("retention_waits") >= 1; }));
  h.request_stop();
  EXPECT_TRUE(eventually([&] { return push.done(); }));
  push.join();
  EXPECT_FALSE(acks.all_acked());
  EXPECT_LT(end_offset(broker.bootstrap(), "t"), 200);
  h.close();
}

// Without a named group and no consumer in the process, nothing is watched: no wait.
TEST(KafkaSinkRetentionGuard, NoGroupNoWait) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() + "', topic: t, max_unconsumed_bytes: 2KiB}");
  h.open();
  flow::testing::AckLog acks;
  h.push(flow::testing::raw_batch(values(200), acks.track(0, 200)));
  h.finish();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("retention_waits"), 0u);
  h.close();
}

// A named group that commits nothing further fails the stage after retention_stall_timeout,
// naming the group; nothing past the limit was produced and the batch is not acknowledged.
TEST(KafkaSinkRetentionGuard, StalledNamedGroupFailsNamingIt) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topic: t, watch_groups: gone, max_unconsumed_bytes: 2KiB, "
                                            "retention_stall_timeout: 500ms}");
  h.open();
  flow::testing::AckLog acks;
  try {
    h.push(flow::testing::raw_batch(values(200), acks.track(0, 200)));
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("consumer group 'gone' committed nothing further"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(acks.all_acked());
  EXPECT_LT(end_offset(broker.bootstrap(), "t"), 20);
  h.close();
}

// A group of a consumer in this process (found, not named) that never commits on the topic is a
// consumer of something else: after retention_stall_timeout it is no longer waited for.
TEST(KafkaSinkRetentionGuard, FoundGroupThatNeverCommitsIsDroppedAfterTheStallTimeout) {
  flow::kafka::EmbeddedBroker broker(1);
  broker.ensure_topic("t", 1);
  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", broker.bootstrap()).set("group.id", "elsewhere");
  rd_kafka_t* other = conf.create(RD_KAFKA_CONSUMER);  // listed: as a kafka-source's would be
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topic: t, max_unconsumed_bytes: 2KiB, retention_stall_timeout: 500ms}");
  h.open();
  flow::testing::AckLog acks;
  h.push(flow::testing::raw_batch(values(200), acks.track(0, 200)));
  h.finish();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("retention_waits"), 1u);
  bool watched = false, dropped = false;
  for (const auto& l : h.logs()) {
    watched = watched || l.find("watching consumer group 'elsewhere'") != std::string::npos;
    dropped = dropped || l.find("consumer group 'elsewhere' committed nothing further") != std::string::npos;
  }
  EXPECT_TRUE(watched);
  EXPECT_TRUE(dropped);
  h.close();
  rd_kafka_destroy(other);
}

TEST(KafkaSinkConfig, RetentionGuardOnNeedsOffsets) {
  flow::testing::StageHarness h(desc(), "{brokers: embedded, topic: t, retention_guard: on, acks: 0}");
  auto errors = h.check();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("retention_guard"), std::string::npos) << errors[0].message;
}
}  // namespace
