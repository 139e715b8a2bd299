// Structured-enough logs for people and grep: one line per event on stderr,
// "2026-11-25T06:21:15.123Z INFO  [stage] message".
#pragma once

#include <string>
#include <string_view>

#include "flow/stage.hpp"

namespace flow::runtime {

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn", "error"; false when unknown.
bool parse_log_level(std::string_view text, LogLevel& out);
void write_log(LogLevel level, std::string_view scope, std::string_view message);

class ScopedLogger : public Logger {
 public:
  explicit ScopedLogger(std::string scope) : scope_(std::move(scope)) {}
  void log(LogLevel level, std::string_view message) override { write_log(level, scope_, message); }

 private:
  std::string scope_;
};

}  // namespace flow::runtime
