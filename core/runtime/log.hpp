// Logs for people and grep: one line per event on stderr,
// "2026-11-25T06:21:15.123Z INFO  [stage] message", or for tools (--log-format json) one object
// per line: {"time":"...","level":"info","stage":"validate","message":"..."}.
// On a terminal the live status line is drawn through here too, so a log line never lands in
// the middle of it: clear the status line, print the log line, redraw the status line.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "flow/stage.hpp"

namespace flow::runtime {

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn", "error"; false when unknown.
bool parse_log_level(std::string_view text, LogLevel& out);
void write_log(LogLevel level, std::string_view scope, std::string_view message);

enum class LogFormat { Text, Json };
void set_log_format(LogFormat format);
bool parse_log_format(std::string_view text, LogFormat& out);  // "text" or "json"
// One log line as written, without its newline (the clock passed in, for tests).
std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point when, LogLevel level,
                            std::string_view scope, std::string_view message);

// The status line at the bottom of the terminal: drawn (replacing the last one), and redrawn
// under each log line until cleared.
void draw_status_line(std::string_view line);
void clear_status_line();

class ScopedLogger : public Logger {
 public:
  explicit ScopedLogger(std::string scope) : scope_(std::move(scope)) {}
  void log(LogLevel level, std::string_view message) override { write_log(level, scope_, message); }

 private:
  std::string scope_;
};

}  // namespace flow::runtime
