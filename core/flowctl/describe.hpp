// A plugin's descriptor as text (for people), JSON (for tools; versioned) and Markdown (the
// options table generated into each plugin's README).
#pragma once

#include <string>

#include "flow/plugin.hpp"

namespace flow::cli {

inline constexpr int kDescribeSchemaVersion = 1;

std::string describe_text(const PluginDescriptor& d);
std::string describe_json(const PluginDescriptor& d);
std::string describe_markdown(const PluginDescriptor& d);  // the options table only

}  // namespace flow::cli
