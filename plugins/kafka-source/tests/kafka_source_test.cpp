// kafka-source against an in-test mock cluster (librdkafka's, no Kafka mock of our own).
#include <gtest/gtest.h>

#include <set>

#include "flow/testing/harness.hpp"
#include "flow_kafka/common.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {
const flow::PluginDescriptor& desc() { return *flow_plugin_entry::descriptor(); }

TEST(KafkaSourceConfig, RequiresBrokersAndTopics) {
  flow::testing::StageHarness h(desc(), "{}");
  auto errors = h.check();
  ASSERT_EQ(errors.size(), 2u);
}

TEST(KafkaSourceConfig, RejectsBadPartitionsAndStart) {
  flow::testing::StageHarness h(desc(), "{brokers: embedded, topics: [a], partitions: ['b:1', x], start: first}");
  auto errors = h.check();
  ASSERT_FALSE(errors.empty());
  std::string all;
  for (auto& e : errors) all += e.str() + "\n";
  EXPECT_NE(all.find("start"), std::string::npos) << all;
}

TEST(KafkaSourceConfig, AcceptsExplicitPartitions) {
  flow::testing::StageHarness h(desc(), "{brokers: embedded, topics: [a, b], partitions: ['0', 'b:3']}");
  EXPECT_TRUE(h.check().empty());
}

// Produce with a plain librdkafka producer, read with the source, acknowledge, and check that
// the committed offset equals the end only after the acknowledgement.
TEST(KafkaSource, ReadsEverythingAndCommitsOnlyAcknowledged) {
  flow::kafka::EmbeddedBroker broker(2);
  broker.ensure_topic("t", 2);
  {
    flow::kafka::Conf conf;
    conf.set("bootstrap.servers", broker.bootstrap());
    rd_kafka_t* p = conf.create(RD_KAFKA_PRODUCER);
    for (int i = 0; i < 50; ++i) {
      const std::string v = "v" + std::to_string(i);
      ASSERT_EQ(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_PARTITION(i % 2),
                                  RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_EQ(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
  }
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topics: [t], partitions: ['0', '1'], exit_at_end: true, group: g1}");
  h.open();
  h.run_source(SIZE_MAX, std::chrono::seconds(60));
  ASSERT_EQ(h.output_rows(), 50u);
  auto batches = h.drain();
  for (auto& b : batches) b.positions().ack();
  h.close();  // final commit

  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", broker.bootstrap()).set("group.id", "g1");
  rd_kafka_t* c = conf.create(RD_KAFKA_CONSUMER);
  flow::kafka::TopicPartitionList list(rd_kafka_topic_partition_list_new(2));
  rd_kafka_topic_partition_list_add(list.get(), "t", 0);
  rd_kafka_topic_partition_list_add(list.get(), "t", 1);
  ASSERT_EQ(rd_kafka_committed(c, list.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(list->elems[0].offset, 25);
  EXPECT_EQ(list->elems[1].offset, 25);
  rd_kafka_destroy(c);
}

void produce(const std::string& bootstrap, const std::string& topic, int n, int partitions) {
  flow::kafka::Conf conf;
  conf.set("bootstrap.servers", bootstrap);
  rd_kafka_t* p = conf.create(RD_KAFKA_PRODUCER);
  for (int i = 0; i < n; ++i) {
    const std::string v = "v" + std::to_string(i);
    ASSERT_EQ(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(i % partitions),
                                RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(p);
}

// Stop requested before run(): 'immediate' returns at once, 'drain' first emits everything
// below the high watermarks of that moment, each offset once.
TEST(KafkaSource, DrainOnStopEmitsEverythingProducedBeforeTheStop) {
  flow::kafka::EmbeddedBroker broker(3);
  broker.ensure_topic("t", 3);
  produce(broker.bootstrap(), "t", 3000, 3);
  const std::string base = "{brokers: '" + broker.bootstrap() + "', topics: [t], batch_size: 100, ";
  {
    flow::testing::StageHarness h(desc(), base + "partitions: ['0', '1', '2'], group: gi}");
    h.open();
    h.request_stop();
    h.run_source(SIZE_MAX, std::chrono::seconds(60));
    EXPECT_EQ(h.output_rows(), 0u);
    h.close();
  }
  for (const std::string assignment : {"partitions: ['0', '1', '2'], group: gd", "group: gs"}) {
    SCOPED_TRACE(assignment);
    // The group member ("group: gs") is stopped before it joined: it waits for its assignment.
    flow::testing::StageHarness h(desc(), base + assignment + ", on_stop: drain, drain_timeout: 50s}");
    h.open();
    h.request_stop();
    h.run_source(SIZE_MAX, std::chrono::seconds(60));
    std::set<std::pair<int64_t, int64_t>> seen;
    for (auto& b : h.drain()) {
      for (std::size_t i = 0; i < b.num_rows(); ++i)
        EXPECT_TRUE(seen.emplace(b.column("partition").int64_at(i), b.column("offset").int64_at(i)).second);
      b.positions().ack();
    }
    EXPECT_EQ(seen.size(), 3000u);
    h.close();
  }
}

// A prefetch far smaller than the topic: librdkafka 2.0.2 stops fetching at each full queue, and
// the source wakes its fetcher as the queue drains (fetch_wakeups); every offset arrives once.
TEST(KafkaSource, SmallPrefetchWakesTheFetcherAndReadsEverythingOnce) {
  flow::kafka::EmbeddedBroker broker(4);
  broker.ensure_topic("t", 4);
  produce(broker.bootstrap(), "t", 20000, 4);
  flow::testing::StageHarness h(desc(), "{brokers: '" + broker.bootstrap() +
                                            "', topics: [t], partitions: ['0', '1', '2', '3'], exit_at_end: true, "
                                            "group: gw, librdkafka: {queued.min.messages: '500'}}");
  h.open();
  h.run_source(SIZE_MAX, std::chrono::seconds(120));
  std::set<std::pair<int64_t, int64_t>> seen;
  for (auto& b : h.drain()) {
    for (std::size_t i = 0; i < b.num_rows(); ++i)
      EXPECT_TRUE(seen.emplace(b.column("partition").int64_at(i), b.column("offset").int64_at(i)).second);
    b.positions().ack();
  }
  EXPECT_EQ(seen.size(), 20000u);
  EXPECT_GT(h.counter("fetch_wakeups"), 0u);
  h.close();
}

TEST(KafkaSource, UnreachableBrokerFailsOpenWithItsAddress) {
  flow::testing::StageHarness h(desc(), "{brokers: '127.0.0.1:1', topics: [t]}");
  try {
    h.open();
    FAIL() << "open succeeded";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}
}  // namespace
