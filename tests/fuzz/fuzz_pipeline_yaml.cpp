// The whole `flowctl validate` path on arbitrary text: YAML events -> Value (aliases, depth,
// duplicate keys), parse_pipeline, check_pipeline against the test plugins and the built-in
// json-validator and sensor-simulator, format_errors. Never a crash; every error has a message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "host/plugin_loader.hpp"
#include "host/yaml_value.hpp"
#include "spec/pipeline_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static flow::loader::Registry registry({FLOW_TEST_PLUGIN_DIR, FLOW_PLUGIN_DIR});
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<flow::ConfigError> errors;
  auto root = flow::config::parse_yaml(text, "fuzz.yaml", errors);
  if (!root) {
    if (errors.empty()) std::abort();
    return 0;
  }
  auto spec = flow::spec::parse_pipeline(*root, "fuzz.yaml", errors);
  if (spec) flow::spec::check_pipeline(*spec, registry, errors);
  for (const auto& e : errors)
    if (e.message.empty()) std::abort();
  (void)flow::spec::format_errors(errors);
  return 0;
}
