// What a finished run prints: per stage records in and out with the plugin's counters, per
// channel peak fill and writer-blocked time, then the cycles and the outcome.
#pragma once

#include <string>

#include "runtime/runtime.hpp"

namespace flow::observability {

std::string format_summary(const runtime::RunReport& report);

}  // namespace flow::observability
