// Helpers for the Kafka plugins that need the SDK (kept apart from common.hpp, which flowctl
// includes without a Context).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flow/stage.hpp"
#include "flow_kafka/common.hpp"

namespace flow::kafka {

// Resolves `brokers`: "embedded" starts (or joins) the process's one mock cluster and creates
// the topics on it; anything else is returned as is. `broker` keeps the cluster alive.
inline std::string resolve_brokers(Context& ctx, const std::string& brokers, const std::vector<std::string>& topics,
                                   int partitions, std::shared_ptr<EmbeddedBroker>& broker) {
  if (brokers != kEmbedded) return brokers;
  broker = ctx.shared<EmbeddedBroker>(kEmbeddedKey, [&] { return std::make_shared<EmbeddedBroker>(partitions); });
  for (const auto& t : topics) broker->ensure_topic(t, partitions);
  return broker->bootstrap();
}

// librdkafka's log lines onto the stage's logger (so they carry the stage id), syslog levels
// mapped: 0-3 error, 4 warn, 5-6 info, 7 debug.
inline LogSink log_sink(Logger& log) {
  return [&log](int level, const std::string& line) {
    const auto l = level <= 3 ? LogLevel::Error : level == 4 ? LogLevel::Warn : level <= 6 ? LogLevel::Info : LogLevel::Debug;
    log.log(l, "librdkafka " + line);
  };
}

}  // namespace flow::kafka
