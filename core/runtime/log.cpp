#include "runtime/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <mutex>

#include "flow/text.hpp"

namespace flow::runtime {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::atomic<int> g_format{static_cast<int>(LogFormat::Text)};
std::mutex g_mu;
std::string g_status;  // the status line on screen, under g_mu; empty when none
const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO ";
    case LogLevel::Warn: return "WARN ";
    case LogLevel::Error: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

bool parse_log_level(std::string_view t, LogLevel& out) {
  if (t == "debug") out = LogLevel::Debug;
  else if (t == "info") out = LogLevel::Info;
  else if (t == "warn" || t == "warning") out = LogLevel::Warn;
  else if (t == "error") out = LogLevel::Error;
  else return false;
  return true;
}

void set_log_format(LogFormat format) { g_format = static_cast<int>(format); }

bool parse_log_format(std::string_view t, LogFormat& out) {
  if (t == "text") out = LogFormat::Text;
  else if (t == "json") out = LogFormat::Json;
  else return false;
  return true;
}

std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point when, LogLevel level,
                            std::string_view scope, std::string_view message) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  const auto secs = std::chrono::floor<std::chrono::seconds>(when);
  if (format == LogFormat::Text)
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z {} [{}] {}", secs, ms, level_name(level), scope, message);
  std::string lvl(level_name(level));
  while (!lvl.empty() && lvl.back() == ' ') lvl.pop_back();
  for (auto& c : lvl) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string out = fmt::format("{{\"time\":\"{:%Y-%m-%dT%H:%M:%S}.{:03d}Z\",\"level\":\"{}\",\"stage\":", secs, ms, lvl);
  append_json_string(out, scope);
  out += ",\"message\":";
  append_json_string(out, message);
  return out + "}";
}

void write_log(LogLevel level, std::string_view scope, std::string_view message) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line = format_log_line(static_cast<LogFormat>(g_format.load()), std::chrono::system_clock::now(), level,
                                     scope, message) + "\n";
  std::lock_guard lock(g_mu);
  if (!g_status.empty()) line = "\r\033[K" + line + g_status;
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void draw_status_line(std::string_view status) {
  std::lock_guard lock(g_mu);
  g_status = status;
  const std::string out = "\r\033[K" + g_status;
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

void clear_status_line() {
  std::lock_guard lock(g_mu);
  if (g_status.empty()) return;
  g_status.clear();
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

}  // namespace flow::runtime
