// `--set key=value` (apply_overrides): the input is one override per line, applied to a valid
// pipeline, which is then parsed again. Never a crash; a refused override has a message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "host/yaml_value.hpp"
#include "spec/pipeline_spec.hpp"

namespace {
const char* kPipeline = R"(name: fuzz
run: {duration: 30s, cycles: 1}
stages:
  - id: sim
    plugin: sensor-simulator
    config: {sensors: 10, rate: 5, seed: 42}
  - id: validate
    plugin: json-validator
    input: sim
    config:
      schema: {sensor_id: {type: int, min: 0}, temperature: float}
  - id: csv
    plugin: csv-window-sink
    input: validate
    buffer: {batches: 8, bytes: 64MiB}
    config: {path: out/parts, window: 5s}
)";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> sets(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') sets.emplace_back();
    else sets.back().push_back(static_cast<char>(data[i]));
  }
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(kPipeline, "fuzz.yaml", errors);
  if (!root || !errors.empty()) std::abort();
  flow::spec::apply_overrides(*root, sets, errors);
  (void)flow::spec::parse_pipeline(*root, "fuzz.yaml", errors);
  for (const auto& e : errors)
    if (e.message.empty()) std::abort();
  return 0;
}
