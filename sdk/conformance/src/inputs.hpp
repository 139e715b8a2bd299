// Inputs the conformance suite feeds to transforms and sinks. A plugin supplies its own sample
// input (`sample_input` in its descriptor); the suite derives random and malformed batches from
// it. For a plugin that gives none, the suite tries generic shapes (raw messages, sensor rows)
// and uses the first one the stage accepts for the checks that need data it can work with;
// random and malformed data go in every shape regardless.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "flow/flow.hpp"

namespace flow::conformance {

struct Shape {
  std::string name;
  // `rows` well-formed records numbered from `first`, event times from `now_us` on.
  std::function<Batch(std::size_t rows, int64_t first, int64_t now_us)> valid;
  // Random bytes in every string column, random bit patterns in numeric ones.
  std::function<Batch(std::size_t rows, std::mt19937_64& rng)> random;
  // Hand-picked malformed records: broken text, extremes, nulls, very long values.
  std::function<Batch()> malformed;
};

// The plugin's own shape first (when it supplies a sample), then the generic ones. `dir` is the
// check's own directory: every path a derived batch names stays inside it.
std::vector<Shape> shapes_for(const PluginDescriptor& d, const Value& config, const std::string& dir);

// Validated sensor rows, as json-validator emits them.
SchemaPtr sensor_schema();

}  // namespace flow::conformance
