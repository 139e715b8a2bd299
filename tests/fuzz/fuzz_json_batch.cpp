// A whole batch through the json-validator stage (the input split at '\n' into records): never a
// crash, and every record ends in exactly one place, valid output or a dead letter.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> records;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') records.push_back(std::move(cur)), cur.clear();
    else cur.push_back(static_cast<char>(data[i]));
  }
  records.push_back(std::move(cur));
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), R"(
schema:
  sensor_id: {type: int, min: 1}
  temperature: {type: float, min: -20, max: 50}
  timestamp: timestamp
  status: {type: string, required: false, allowed: [ok, degraded]}
max_message_bytes: 256
)");
  h.open();
  flow::testing::AckLog acks;
  h.push(flow::testing::raw_batch(records, acks.track(0, static_cast<int64_t>(records.size()))));
  h.finish();
  std::size_t out = h.output_rows() + h.output_rows("invalid");
  if (out != records.size()) std::abort();
  for (auto& b : h.output()) b.positions().ack();
  for (auto& b : h.output("invalid")) b.positions().ack();
  if (!acks.all_acked()) std::abort();
  h.close();
  return 0;
}
