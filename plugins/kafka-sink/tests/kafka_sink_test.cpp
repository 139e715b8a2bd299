// kafka-sink against an in-test mock cluster.
#include <gtest/gtest.h>

#include "flow/testing/harness.hpp"
#include "flow_kafka/common.hpp"

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
}  // namespace
