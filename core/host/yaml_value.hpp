// YAML text -> flow::Value, with 1-based positions. Built on yaml-cpp's event parser rather than
// its node graph so that aliases (cyclic graphs, "billion laughs") are refused before they exist,
// duplicate keys are reported rather than silently resolved, and nesting depth is bounded.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "flow/value.hpp"

namespace flow::config {

inline constexpr int kMaxYamlDepth = 64;

// Parses one YAML document. On any error returns nullopt and appends the errors.
std::optional<Value> parse_yaml(const std::string& text, const std::string& file_name,
                                std::vector<ConfigError>& errors);
std::optional<Value> parse_yaml_file(const std::filesystem::path& path,
                                     std::vector<ConfigError>& errors);

}  // namespace flow::config
