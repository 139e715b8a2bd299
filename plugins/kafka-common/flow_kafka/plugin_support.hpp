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

}  // namespace flow::kafka
