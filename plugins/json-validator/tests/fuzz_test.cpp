// Fuzz-ish: random bytes and mutated valid messages through the stage. Nothing crashes, and every
// input record ends in exactly one place: the valid output or a dead letter with a known reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"
#include "record_validator.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

const std::vector<std::string> kSeeds = {
    R"({"sensor_id":7,"temperature":-3.5,"humidity":66.2,"timestamp":"2025-06-15 09:12:01","status":"ok","active":true})",
    R"({"sensor_id":1,"temperature":29.5,"humidity":66.2,"timestamp":"2025-06-15 09:12:01"})",
    R"({"timestamp":"2025-01-01 00:00:00","humidity":0,"temperature":50,"sensor_id":12,"extra":[1,{"a":null}]})",
    R"({"sensor_id":3,"temperature":1e1,"humidity":1E-1,"timestamp":"2024-02-29 23:59:59","status":"d\u0065graded"})",
};

std::string mutate(std::string s, std::mt19937_64& rng) {
  static const std::string kJsonish = "{}[]\":,.-+eE0123456789 \\tfnul\x80\xc3\xff";
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const std::size_t at = rng() % s.size();
    switch (rng() % 6) {
      case 0: s[at] = kJsonish[rng() % kJsonish.size()]; break;                           // replace
      case 1: s.erase(at, 1 + rng() % 4); break;                                            // delete
      case 2: s.insert(at, 1, kJsonish[rng() % kJsonish.size()]); break;                   // insert
      case 3: s.resize(at); break;                                                          // truncate
      case 4: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 12)); break;             // duplicate a piece
      default: s[at] = static_cast<char>(rng() & 0xff); break;                             // any byte
    }
  }
  return s;
}

TEST(JsonValidatorFuzz, EveryRecordEndsValidOrRejectedWithAReason) {
  std::mt19937_64 rng(20250615);
  std::vector<std::string> inputs;
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 200, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    if (i % 3 == 0 && !s.empty()) s[0] = '{';
    inputs.push_back(std::move(s));
  }
  for (int i = 0; i < 5000; ++i) inputs.push_back(mutate(kSeeds[rng() % kSeeds.size()], rng));
  for (const auto& s : kSeeds) inputs.push_back(s);

  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), R"(
schema:
  sensor_id: {type: int, min: 1}
  temperature: {type: float, min: -20, max: 50}
  humidity: {type: float, min: 0, max: 100}
  timestamp: timestamp
  status: {type: string, required: false, allowed: [ok, degraded]}
  active: {type: bool, required: false}
max_message_bytes: 150
)");
  h.open();
  flow::testing::AckLog acks;
  constexpr std::size_t kBatch = 500;
  for (std::size_t b = 0; b < inputs.size(); b += kBatch) {
    const auto end = std::min(inputs.size(), b + kBatch);
    h.push(flow::testing::raw_batch({inputs.begin() + static_cast<long>(b), inputs.begin() + static_cast<long>(end)},
                                    acks.track(static_cast<int64_t>(b), static_cast<int64_t>(end))));
  }
  const std::set<std::string_view> reasons(json_validator::kReasonNames.begin(), json_validator::kReasonNames.end());
  std::size_t invalid = 0;
  for (const auto& d : h.output("invalid")) {
    ASSERT_TRUE(d.consistent());
    const auto base = static_cast<std::size_t>(d.positions().ranges().at(0).begin);
    for (std::size_t i = 0; i < d.num_rows(); ++i) {
      EXPECT_EQ(reasons.count(d.column("reason").string_at(i)), 1u) << d.column("reason").string_at(i);
      EXPECT_FALSE(d.column("message").string_at(i).empty());
      const auto index = base + static_cast<std::size_t>(d.column("offset").int64_at(i));
      ASSERT_LT(index, inputs.size());
      EXPECT_EQ(d.column("raw").string_at(i), inputs[index]);
    }
    invalid += d.num_rows();
  }
  for (const auto& v : h.output()) ASSERT_TRUE(v.consistent());
  const std::size_t valid = h.output_rows();
  EXPECT_EQ(valid + invalid, inputs.size());
  EXPECT_GE(valid, kSeeds.size());  // at least the untouched seeds
  uint64_t counted = 0;
  for (auto r : json_validator::kReasonNames) counted += h.counter("invalid_records", {{"reason", std::string(r)}});
  EXPECT_EQ(counted, invalid);

  // Every batch's group completes once both outputs are acknowledged.
  for (auto& b : h.output()) b.positions().ack();
  for (auto& b : h.output("invalid")) b.positions().ack();
  EXPECT_TRUE(acks.all_acked());
}

}  // namespace
